package redisstore

import (
	"context"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/fhirgate/fhirgate/config"
	"github.com/fhirgate/fhirgate/gateway/ratelimit"
	"github.com/fhirgate/fhirgate/test/redisproc"
	"github.com/fhirgate/fhirgate/test/testpki"
)

// storeConfig is a store at url with a deadline of a second: tests of
// what the store decides must not see a call on a loaded machine (CI's
// two cores running every package at once) turn into a fallback. The
// deadline's own behaviour is tested with the default 5 ms
// (TestDeadlineHoldsWhenStalled).
func storeConfig(url, onFailure string) *config.LimitStore {
	return &config.LimitStore{URL: url, KeyPrefix: "test:", Timeout: config.Duration(time.Second), OnFailure: onFailure}
}

func newStore(t *testing.T, name string, c *config.LimitStore) (*Store, *observed) {
	t.Helper()
	s, err := New(name, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	o := &observed{}
	s.Observe(Observer{Changed: o.changed, Fallback: func() { o.fallbacks.Add(1) }})
	return s, o
}

type observed struct {
	mu        sync.Mutex
	states    []bool
	fallbacks atomic.Int64
}

func (o *observed) changed(up bool, _ string) {
	o.mu.Lock()
	o.states = append(o.states, up)
	o.mu.Unlock()
}

func (o *observed) last() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.states) > 0 && o.states[len(o.states)-1]
}

// Two stores on one server (two replicas): across both, exactly the
// burst is admitted, as one in-memory limiter admits it; Retry-After
// comes from the shared state; the key expires when its bucket is full
// again; subjects are not written in the clear.
func TestSharedBudget(t *testing.T) {
	srv := redisproc.Start(t)
	a, oa := newStore(t, "shared", storeConfig(srv.URL(), "local"))
	b, ob := newStore(t, "shared", storeConfig(srv.URL(), "local"))
	const burst = 7
	la, lb := a.Limiter("auth:erp", 1, time.Hour, burst), b.Limiter("auth:erp", 1, time.Hour, burst)
	local := ratelimit.New(1, time.Hour, burst)
	ctx := context.Background()
	admitted, localAdmitted := 0, 0
	var waits []time.Duration
	for i := range 30 {
		l := la
		if i%2 == 1 {
			l = lb
		}
		d := l.Take(ctx, "X110411675")
		if d.Unavailable {
			t.Fatal("store unavailable")
		}
		if d.Allowed {
			admitted++
		} else {
			waits = append(waits, d.Wait)
		}
		if d := local.Take(ctx, "X110411675"); d.Allowed {
			localAdmitted++
		}
	}
	if n := oa.fallbacks.Load() + ob.fallbacks.Load(); n != 0 {
		t.Fatalf("%d decisions made without the store (states %v, %v)", n, oa.states, ob.states)
	}
	if admitted != burst || localAdmitted != burst {
		t.Errorf("admitted %d across two replicas, one in-memory limiter %d; want %d", admitted, localAdmitted, burst)
	}
	if w := slices.Min(waits); w < 59*time.Minute || w > time.Hour {
		t.Errorf("Retry-After %v, want just under an hour (1 per hour, bucket empty)", w)
	}
	if d := la.Take(ctx, "another subject"); !d.Allowed {
		t.Error("another subject limited")
	}

	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	keys, err := rc.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("keys %v, want one per subject", keys)
	}
	for _, k := range keys {
		if len(k) != len("test:rl:auth:erp:")+32 || k[:len("test:rl:auth:erp:")] != "test:rl:auth:erp:" {
			t.Errorf("key %q: want prefix, limiter and a digest", k)
		}
		ttl, _ := rc.PTTL(ctx, k).Result()
		if ttl <= 0 || ttl > burst*time.Hour+time.Second {
			t.Errorf("key %s TTL %v: every key must expire when its bucket is full again", k, ttl)
		}
	}
}

// The rate refills: at 20 per second with a burst of 2, after the burst a
// request 60 ms later is admitted (one token back after 50 ms).
func TestSharedRefill(t *testing.T) {
	srv := redisproc.Start(t)
	s, _ := newStore(t, "shared", storeConfig(srv.URL(), "local"))
	l := s.Limiter("client:/erp", 20, time.Second, 2)
	ctx := context.Background()
	l.Take(ctx, "k")
	l.Take(ctx, "k")
	if d := l.Take(ctx, "k"); d.Allowed || d.Wait <= 0 || d.Wait > 50*time.Millisecond {
		t.Fatalf("third request: %+v, want refused with a wait up to 50 ms", d)
	}
	time.Sleep(60 * time.Millisecond)
	if d := l.Take(ctx, "k"); !d.Allowed {
		t.Fatalf("after 60 ms: %+v, want admitted", d)
	}
}

// Redis killed: decisions fall back to the local buckets at once, the
// observer hears it, fallbacks are counted; Redis back (empty): shared
// again within a few probe intervals. on_failure closed refuses instead.
func TestFallbackAndRecovery(t *testing.T) {
	srv := redisproc.Start(t)
	s, o := newStore(t, "shared", storeConfig(srv.URL(), "local"))
	l := s.Limiter("auth:twiin", 1, time.Hour, 3)
	ctx := context.Background()
	if !o.last() || !l.Take(ctx, "a").Allowed {
		t.Fatal("store not up at start")
	}
	srv.Kill()
	for i := range 3 { // the local bucket: a fresh burst of 3
		if d := l.Take(ctx, "a"); !d.Allowed || d.Unavailable {
			t.Fatalf("fallback request %d: %+v", i, d)
		}
	}
	if d := l.Take(ctx, "a"); d.Allowed {
		t.Fatal("the local bucket does not limit")
	}
	if o.last() || s.Up() || o.fallbacks.Load() < 3 {
		t.Fatalf("down not observed: up %v, states %v, fallbacks %d", s.Up(), o.states, o.fallbacks.Load())
	}
	srv.Restart(t)
	if !waitUp(s) || !o.last() {
		t.Fatalf("not shared again after the restart: states %v", o.states)
	}
	// The restarted server has no scripts; the store loaded its own
	// before it counted as up, so the next decision is one round trip.
	if !scriptLoaded(t, srv, "") {
		t.Fatal("limiter script not loaded into the restarted server")
	}
	before := o.fallbacks.Load()
	if d := l.Take(ctx, "a"); !d.Allowed || o.fallbacks.Load() != before {
		t.Fatalf("after recovery: %+v, fallbacks %d → %d (the restarted store is empty: admitted by it)", d, before, o.fallbacks.Load())
	}

	closed, _ := newStore(t, "strict", storeConfig(srv.URL(), "closed"))
	lc := closed.Limiter("auth:twiin", 1, time.Hour, 3)
	srv.Kill()
	if d := lc.Take(ctx, "b"); !d.Unavailable || d.Allowed {
		t.Fatalf("on_failure closed with the store down: %+v, want unavailable", d)
	}
}

// A stalled Redis (the process stopped): every call returns within its
// deadline plus scheduling, then the store is down and calls do not wait
// at all until it answers again.
func TestDeadlineHoldsWhenStalled(t *testing.T) {
	srv := redisproc.Start(t)
	c := storeConfig(srv.URL(), "local")
	c.Timeout = config.Duration(5 * time.Millisecond) // the default
	s, _ := newStore(t, "shared", c)
	l := s.Limiter("auth:erp", 1000, time.Second, 1000)
	ctx := context.Background()
	l.Take(ctx, "warm")
	srv.Pause()
	defer srv.Resume()
	var took []time.Duration
	for range 50 {
		start := time.Now()
		if d := l.Take(ctx, "k"); !d.Allowed {
			t.Fatalf("fallback refused within the local burst: %+v", d)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("with Redis stalled: first call %v, p50 %v, max %v (timeout 5ms)", took[len(took)-1], took[len(took)/2], took[len(took)-1])
	if took[len(took)-1] > 250*time.Millisecond {
		t.Errorf("a call took %v with a 5 ms deadline", took[len(took)-1])
	}
	if s.Up() {
		t.Error("a stalled store still counted as up")
	}
	srv.Resume()
	if !waitUp(s) {
		t.Error("store not up again after the stall ended")
	}
}

// A password from a file: a server that requires one is used with it and
// refused without it (down from the start, the gateway still starts).
func TestPasswordFile(t *testing.T) {
	srv := redisproc.Start(t, "--requirepass", "s3cret-pass")
	file := t.TempDir() + "/pw"
	if err := writeFile(file, "s3cret-pass\n"); err != nil {
		t.Fatal(err)
	}
	c := storeConfig(srv.URL(), "local")
	c.PasswordFile = file
	if scriptLoaded(t, srv, "s3cret-pass") {
		t.Fatal("a fresh server holds the limiter script")
	}
	s, _ := newStore(t, "shared", c)
	if !s.Up() {
		t.Fatal("store with the right password not up")
	}
	if !scriptLoaded(t, srv, "s3cret-pass") {
		t.Fatal("limiter script not loaded when the store was first reached")
	}
	without, _ := newStore(t, "shared", storeConfig(srv.URL(), "local"))
	if without.Up() {
		t.Fatal("store without the password up")
	}
}

// A server that refuses SCRIPT LOAD (the command renamed away) is up and
// decides all the same: EVALSHA finds no script, EVAL sends it.
func TestScriptLoadRefused(t *testing.T) {
	srv := redisproc.Start(t, "--rename-command", "SCRIPT", "")
	s, o := newStore(t, "shared", storeConfig(srv.URL(), "local"))
	if !s.Up() {
		t.Fatal("a store that answers but refuses SCRIPT LOAD is down")
	}
	l := s.Limiter("auth:erp", 1, time.Hour, 2)
	ctx := context.Background()
	for i, want := range []bool{true, true, false} {
		if d := l.Take(ctx, "k"); d.Allowed != want || d.Unavailable {
			t.Fatalf("request %d: %+v, want allowed %v", i, d, want)
		}
	}
	if n := o.fallbacks.Load(); n != 0 {
		t.Fatalf("%d decisions without the store", n)
	}
}

// rediss:// with the gateway's client certificate from files, against a
// real TLS-only redis-server that requires one; without the certificate
// the store is down (the handshake is refused).
func TestTLSClientCertificate(t *testing.T) {
	ca := testpki.NewCA(t, "redis")
	server, client := ca.Server("127.0.0.1"), ca.Client("fhirgate")
	srv := redisproc.StartTLS(t, server.CertFile, server.KeyFile, ca.File)
	url := "rediss://" + srv.Addr + "/0"
	c := storeConfig(url, "local")
	c.TLS = &config.ClientTLS{CAFile: ca.File, CertFile: client.CertFile, KeyFile: client.KeyFile}
	s, _ := newStore(t, "shared", c)
	if !s.Up() {
		t.Fatal("TLS store with a client certificate not up")
	}
	if d := s.Limiter("auth:erp", 1, time.Hour, 1).Take(context.Background(), "k"); !d.Allowed {
		t.Fatalf("first request over TLS: %+v", d)
	}
	anon := storeConfig(url, "local")
	anon.TLS = &config.ClientTLS{CAFile: ca.File}
	without, _ := newStore(t, "shared", anon)
	if without.Up() {
		t.Error("TLS store up without the client certificate the server requires")
	}
}

// scriptLoaded reports whether srv holds the limiter script.
// (password: the server's, if it requires one).
func scriptLoaded(t *testing.T, srv *redisproc.Server, password string) bool {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: password})
	defer rc.Close()
	ok, err := rc.ScriptExists(context.Background(), gcra.Hash()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ok[0]
}

func writeFile(name, content string) error { return os.WriteFile(name, []byte(content), 0o600) }

// waitUp waits up to 3 s (a dozen probe intervals) for s to be up.
func waitUp(s *Store) bool {
	for deadline := time.Now().Add(3 * time.Second); !s.Up() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	return s.Up()
}
