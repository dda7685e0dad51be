package fhirxml

import (
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// Resource types are built on first use, by whichever request comes
// first: concurrent first uses must all get the one built type, and a
// name that is no resource gets nil.
func TestResourceBuiltOnceUnderConcurrency(t *testing.T) {
	for _, v := range []Version{R4, STU3} {
		m := ModelFor(v)
		names := []string{"Task", "Patient", "Observation", "Bundle", "Parameters", "OperationOutcome"}
		got := make([][]*typeInfo, 8)
		var wg sync.WaitGroup
		for g := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, n := range names {
					got[g] = append(got[g], m.Resource(n))
				}
			}()
		}
		wg.Wait()
		for i, n := range names {
			first := got[0][i]
			if first == nil || first.name != n || !first.resource {
				t.Fatalf("%v %s: built %+v", v, n, first)
			}
			for g := range got {
				if got[g][i] != first {
					t.Errorf("%v %s: goroutine %d got another instance", v, n, g)
				}
			}
		}
		for _, n := range []string{"Identifier", "task", "", "Nope"} {
			if m.Resource(n) != nil {
				t.Errorf("%v: %q is not a resource type", v, n)
			}
		}
		if !m.isResourceName("Practitioner") || m.isResourceName("Coding") {
			t.Errorf("%v: resource names wrong", v)
		}
	}
}

// What the model remembers across requests must not point into a request
// body: a name taken from a body is a substring of it and would keep the
// whole body alive.
func TestRememberedNamesAreCopies(t *testing.T) {
	body := strings.Repeat(" ", 1<<10) + `{"resourceType":"Observation"}` // as a decoded body's strings are
	name := body[1<<10+17 : 1<<10+28]
	if name != "Observation" {
		t.Fatalf("bad slicing: %q", name)
	}
	inBody := func(s string) bool {
		p, b := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(body)))
		return p >= b && p < b+uintptr(len(body))
	}
	m := ModelFor(R4)
	m.Resource(name)
	for k := range *m.resources.Load() {
		if inBody(k) {
			t.Errorf("resource type %q remembered as a substring of the body", k)
		}
	}
	m.childPath(name, "code")
	m.pathMu.RLock()
	defer m.pathMu.RUnlock()
	for k := range m.paths {
		if inBody(k.parent) || inBody(k.name) {
			t.Errorf("path key %+v remembered as a substring of the body", k)
		}
	}
}
