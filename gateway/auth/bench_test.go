package auth

import (
	"context"
	"testing"

	"github.com/fhirgate/fhirgate/config"
	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerify: a token seen before comes from the cache (a SHA-256 of
// the token and a map lookup); a new one costs an RS256 verification.
func BenchmarkVerify(b *testing.B) {
	k := newKeys(b)
	for _, c := range []struct {
		name  string
		cache int
	}{{"cached", 100}, {"uncached", -1}} {
		b.Run(c.name, func(b *testing.B) {
			p := profile(config.Keys{PEMFile: pemFile(b, k)})
			p.CacheSize = c.cache
			v, err := New(context.Background(), p)
			if err != nil {
				b.Fatal(err)
			}
			tok := sign(b, jwt.SigningMethodRS256, k.rsa, "", nil)
			b.ReportAllocs()
			for b.Loop() {
				if _, f := v.Verify(tok); f != OK {
					b.Fatal(f)
				}
			}
		})
	}
}
