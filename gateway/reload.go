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
	s.Metrics.ConfigLoaded(true, float64(time.Now().Unix()))
	s.log.Info("configuration reloaded", "trigger", trigger, "config", s.cfg.File, "sha256", digest)
	time.AfterFunc(s.cfg.Server.WriteTimeout.D()+time.Second, old.retire)
	return nil
}

// watchConfig reloads when anything in the configuration file's directory
// changes: an editor's rename, a plain write, or Kubernetes swapping the
// ConfigMap's ..data symlink (the file itself is a symlink into it, so its
// own name sees no event then). Events are debounced: a burst of them
// (write, chmod, rename) makes one reload once the directory has been
// quiet for debounce. Files outside the directory (profiles elsewhere)
// are not watched; SIGHUP reloads them.
func (s *Server) watchConfig(ctx context.Context, debounce time.Duration) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.cfg.File)
	if err := w.Add(dir); err != nil {
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
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer = time.After(debounce)
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
