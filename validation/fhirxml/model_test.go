package fhirxml

import (
	"sync"
	"testing"
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
