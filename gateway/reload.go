package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/pipeline"
)

// liveTable is a built table with what retires it: the context of its
// background work (JWKS refreshes) and its backend clients' connections.
type liveTable struct {
	table  *pipeline.Table
	cancel context.CancelFunc
}

// retire stops the table's background work and closes its idle backend
// connections. Neither breaks a request still running on it: verification
// keys stay cached and only idle connections are closed.
func (l liveTable) retire() {
	l.cancel()
	l.table.Close()
}

// Reload loads the configuration file again. A valid file becomes the
// table of every request that starts from now on; requests in flight finish
// on the table they started with, which is retired once the longest request
// can have ended (the server's write timeout). An invalid file is logged
// and counted (fhirgate_config_reloads_total{result="failure"}) and the
// table in use keeps serving. trigger (signal, file, …) is logged.
//
// The server, audit and tracing sections belong to the process: a change
// to them is logged and takes effect at the next start.
func (s *Server) Reload(trigger string) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	data, _ := os.ReadFile(s.cfg.File)
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:6])
	cfg, err := config.Load(s.cfg.File)
	var live liveTable
	if err == nil {
		ctx, cancel := context.WithCancel(s.ctx)
		live.cancel = cancel
		if live.table, err = pipeline.Build(ctx, cfg); err != nil {
			cancel()
		}
	}
	if err != nil {
		s.Metrics.ConfigLoaded(false, 0)
		s.log.Error("configuration rejected; the previous one keeps serving", "trigger", trigger, "config", s.cfg.File, "sha256", digest, "error", err.Error())
		return err
	}
	for section, same := range map[string]bool{
		"server":  reflect.DeepEqual(cfg.Server, s.cfg.Server),
		"audit":   reflect.DeepEqual(cfg.Audit, s.cfg.Audit),
		"tracing": reflect.DeepEqual(cfg.Tracing, s.cfg.Tracing),
	} {
		if !same {
			s.log.Warn("configuration section changed; it takes effect at the next start", "section", section)
		}
	}
	if err := s.Gateway.Swap(live.table); err != nil {
		live.retire()
		s.Metrics.ConfigLoaded(false, 0)
		s.log.Error("configuration rejected; the previous one keeps serving", "trigger", trigger, "config", s.cfg.File, "sha256", digest, "error", err.Error())
		return err
	}
	old := s.live
	s.live = live
	s.liveConfig = cfg
	if s.watcher != nil {
		s.watching = newWatchSet(cfg)
		if err := s.addWatches(); err != nil {
			s.log.Warn("configuration watch", "error", err.Error())
		}
	}
	s.Metrics.ConfigLoaded(true, float64(time.Now().Unix()))
	s.log.Info("configuration reloaded", "trigger", trigger, "config", s.cfg.File, "sha256", digest)
	time.AfterFunc(s.cfg.Server.WriteTimeout.D()+time.Second, old.retire)
	return nil
}

// watchSet is what a reload follows: the configuration file and the files
// and directories it reads (config.Config.Files), as absolute paths, and
// the directories holding them, which are watched.
type watchSet struct {
	config string
	files  map[string]bool
	dirs   map[string]bool
}

func newWatchSet(cfg *config.Config) *watchSet {
	ws := &watchSet{config: absPath(cfg.File), files: map[string]bool{}, dirs: map[string]bool{}}
	ws.dirs[filepath.Dir(ws.config)] = true
	for _, f := range cfg.Files {
		f = absPath(f)
		ws.files[f] = true
		ws.dirs[filepath.Dir(f)] = true
		if st, err := os.Stat(f); err == nil && st.IsDir() {
			ws.dirs[f] = true // a profiles directory: a file inside it changes
		}
	}
	return ws
}

// relevant reports whether an event on name concerns the configuration:
// the file itself, a ConfigMap's ..data swap beside it (the file is then a
// symlink into ..data and sees no event of its own), a file it reads, or a
// file inside a directory it reads. A log, an editor's swap or backup
// file, anything else beside them is not.
func (ws *watchSet) relevant(name string) bool {
	name = absPath(name)
	if name == ws.config || ws.files[name] || ws.files[filepath.Dir(name)] {
		return true
	}
	return filepath.Base(name) == "..data" && filepath.Dir(name) == filepath.Dir(ws.config)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}

// watchConfig reloads when the configuration file or a file it reads
// changes (see watchSet.relevant): an editor's rename, a plain write, or
// Kubernetes swapping the ConfigMap's ..data symlink. It watches the
// directories that hold them — a file replaced by a rename keeps no watch
// of its own — and ignores every other name there. Events are debounced:
// a burst of them (write, chmod, rename) makes one reload once they have
// been quiet for debounce. After a reload the set follows the new file's
// references.
func (s *Server) watchConfig(ctx context.Context, debounce time.Duration) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	s.reloadMu.Lock()
	s.watching = newWatchSet(s.liveConfig)
	s.watcher = w
	err = s.addWatches()
	s.reloadMu.Unlock()
	if err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				s.reloadMu.Lock()
				relevant := s.watching.relevant(ev.Name)
				s.reloadMu.Unlock()
				if relevant {
					timer = time.After(debounce)
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				s.log.Warn("configuration watch", "error", err.Error())
			case <-timer:
				timer = nil
				s.Reload("file")
			}
		}
	}()
	return nil
}

// addWatches watches every directory of the watch set (reloadMu held).
// Directories already watched are not added twice by fsnotify.
func (s *Server) addWatches() error {
	if s.watcher == nil {
		return nil
	}
	for dir := range s.watching.dirs {
		if err := s.watcher.Add(dir); err != nil && dir == filepath.Dir(s.watching.config) {
			return err
		}
	}
	return nil
}
