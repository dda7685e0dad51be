package validation

import (
	"strings"
	"testing"
	"unsafe"
)

// The compiled-invariant cache outlives requests: its keys must not be
// substrings of a request body (the root's resource type is one), which
// would keep the body alive.
func TestCompiledInvariantKeysAreCopies(t *testing.T) {
	body := strings.Repeat(" ", 1<<10) + `{"resourceType":"Basic"}`
	path := body[1<<10+17 : 1<<10+22]
	if path != "Basic" {
		t.Fatalf("bad slicing: %q", path)
	}
	compiledInvariant(path, "code.exists()")
	b := uintptr(unsafe.Pointer(unsafe.StringData(body)))
	compiled.Range(func(k, _ any) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(k.(invariantKey).path)))
		if p >= b && p < b+uintptr(len(body)) {
			t.Errorf("key %+v is a substring of the body", k)
		}
		return true
	})
}
