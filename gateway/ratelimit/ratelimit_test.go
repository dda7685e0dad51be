package ratelimit

import (
	"testing"
	"time"
)

func TestKeyed(t *testing.T) {
	l := New(2, time.Second, 3)
	now := time.Now()
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("a", now); !ok {
			t.Fatalf("request %d refused within burst", i)
		}
	}
	ok, wait := l.Allow("a", now)
	if ok {
		t.Fatal("4th request allowed beyond burst")
	}
	if wait < 400*time.Millisecond || wait > 500*time.Millisecond {
		t.Errorf("retry after %v, want 0.5 s at 2/s", wait)
	}
	if ok, _ := l.Allow("b", now); !ok {
		t.Fatal("another key limited")
	}
	if ok, _ := l.Allow("a", now.Add(600*time.Millisecond)); !ok {
		t.Fatal("no refill after 0.6 s at 2/s")
	}
	l.Allow("c", now.Add(time.Hour)) // sweeps idle buckets
	if l.Len() != 1 {
		t.Errorf("idle buckets kept: %d", l.Len())
	}
}
