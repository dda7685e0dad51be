package audit

import (
	"fmt"
	"io"
	"sync"
	"testing"
)

// The remembered pseudonym is the computed one, for every actor, while the
// memory fills, is cleared and fills again, from concurrent requests.
func TestPseudonymsRemembered(t *testing.T) {
	l := New(io.Discard, false, []byte("0123456789abcdef"))
	fresh := New(io.Discard, false, []byte("0123456789abcdef"))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 * maxPseudonyms {
				iss, sub := fmt.Sprintf("iss-%d", g), fmt.Sprintf("sub-%d", i%(maxPseudonyms+7))
				if got, want := l.Pseudonym(iss, sub), fresh.pseudonym(iss, sub); got != want {
					t.Errorf("Pseudonym(%s, %s) = %s, computed %s", iss, sub, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(l.pseudonyms) > maxPseudonyms {
		t.Errorf("%d pseudonyms remembered, at most %d", len(l.pseudonyms), maxPseudonyms)
	}
	if l.Pseudonym("a", "") != "" || l.Pseudonym("a", "b") == l.Pseudonym("a", "c") || l.Pseudonym("a", "b") == l.Pseudonym("ab", "") {
		t.Error("pseudonyms must be empty without subject and differ between actors")
	}
}
