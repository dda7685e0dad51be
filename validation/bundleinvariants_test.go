package validation

import (
	"encoding/json"
	"testing"

	"github.com/fhirgate/fhirgate/validation/profile"
)

// TestNativeBundleInvariants holds each native Bundle invariant to the
// general FHIRPath engine's answer on Bundles made to make it hold and
// fail.
func TestNativeBundleInvariants(t *testing.T) {
	bundles := []string{
		`{"resourceType":"Bundle","type":"searchset"}`,
		`{"resourceType":"Bundle","type":"searchset","entry":[]}`,
		`{"resourceType":"Bundle","type":"searchset","entry":[{"fullUrl":"urn:a","resource":{"resourceType":"Task"}},{"fullUrl":"urn:b","resource":{"resourceType":"Task"}}]}`,
		`{"resourceType":"Bundle","type":"searchset","entry":[{"fullUrl":"urn:a","resource":{"resourceType":"Task"}},{"fullUrl":"urn:a","resource":{"resourceType":"Task"}}]}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:a","resource":{"resourceType":"Task","meta":{"versionId":"1"}}},{"fullUrl":"urn:a","resource":{"resourceType":"Task","meta":{"versionId":"2"}}}]}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:a","resource":{"resourceType":"Task","meta":{"versionId":"1"}}},{"fullUrl":"urn:a","resource":{"resourceType":"Task","meta":{"versionId":"1"}}}]}`,
		`{"resourceType":"Bundle","type":"history","entry":[{"fullUrl":"urn:a","request":{"method":"GET","url":"x"},"response":{"status":"200"}},{"fullUrl":"urn:a","request":{"method":"GET","url":"x"},"response":{"status":"200"}}]}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Task"}},{"resource":{"resourceType":"Task"}}]}`,
		`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Task"},"request":{"method":"POST","url":"Task"}}]}`,
		`{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{"resourceType":"Task"}}]}`,
		`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":"Task"}},{"resource":{"resourceType":"Task"}}]}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Task"},"request":{"method":"POST","url":"Task"}}]}`,
		`{"resourceType":"Bundle","type":"transaction-response","entry":[{"response":{"status":"201"}}]}`,
		`{"resourceType":"Bundle","type":"transaction-response","entry":[{"resource":{"resourceType":"Task"}}]}`,
		`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Task"},"response":{"status":"200"}}]}`,
		`{"resourceType":"Bundle","type":"document","entry":[{"fullUrl":"urn:c","resource":{"resourceType":"Composition"}},{"fullUrl":"urn:p","resource":{"resourceType":"Patient"}}]}`,
		`{"resourceType":"Bundle","type":"document","entry":[{"fullUrl":"urn:p","resource":{"resourceType":"Patient"}},{"fullUrl":"urn:c","resource":{"resourceType":"Composition"}}]}`,
		`{"resourceType":"Bundle","type":"document"}`,
		`{"resourceType":"Bundle","type":"document","entry":[{"fullUrl":"urn:x"}]}`,
		`{"resourceType":"Bundle","type":"message","entry":[{"resource":{"resourceType":"MessageHeader"}}]}`,
		`{"resourceType":"Bundle","type":"message","entry":[{"resource":{"resourceType":"Composition"}}]}`,
		`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Composition"}}]}`,
	}
	n := 0
	for expr, native := range nativeInvariants {
		c := compiledInvariant("Bundle", expr)
		if c.native == nil || c.expr == nil {
			t.Fatalf("%s: not compiled with its native form", expr)
		}
		for _, src := range bundles {
			res := decodeJSON([]byte(src))
			data, _ := json.Marshal(res)
			out, err := c.expr.EvaluateWithContext(profile.PrunedContext(res, c.names, func() []byte { return data }))
			if err != nil {
				t.Fatalf("%s on %s: %v", expr, src, err)
			}
			engine := !profile.Violated(out)
			if got := native(res); got != engine {
				t.Errorf("%s\n  on %s\n  native %v, engine %v", expr, src, got, engine)
			}
			n++
		}
	}
	if len(nativeInvariants) != 5 || n == 0 {
		t.Errorf("%d native invariants checked %d times", len(nativeInvariants), n)
	}
}
