package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fhirgate/fhirgate/config"
	"github.com/golang-jwt/jwt/v5"
)

type keys struct {
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

func newKeys(t testing.TB) keys {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keys{r, e}
}

func pemFile(t testing.TB, k keys) string {
	var out []byte
	for _, pub := range []any{&k.rsa.PublicKey, &k.ec.PublicKey} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	f := filepath.Join(t.TempDir(), "keys.pem")
	os.WriteFile(f, out, 0o644)
	return f
}

func jwksFile(t *testing.T, k keys) string {
	b64 := base64.RawURLEncoding.EncodeToString
	pad := func(b []byte) []byte { // P-256 coordinates are 32 bytes
		return append(make([]byte, 32-len(b)), b...)
	}
	set := map[string]any{"keys": []map[string]string{
		{"kty": "RSA", "kid": "r1", "use": "sig", "n": b64(k.rsa.N.Bytes()), "e": b64(big.NewInt(int64(k.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "e1", "use": "sig", "crv": "P-256", "x": b64(pad(k.ec.X.Bytes())), "y": b64(pad(k.ec.Y.Bytes()))},
	}}
	data, _ := json.Marshal(set)
	f := filepath.Join(t.TempDir(), "jwks.json")
	os.WriteFile(f, data, 0o644)
	return f
}

func profile(keysCfg config.Keys) *config.AuthProfile {
	return &config.AuthProfile{
		Issuer: "iss", Audience: []string{"aud"}, Algorithms: []string{"RS256", "PS256", "ES256"},
		Keys: keysCfg, ClockSkew: config.Duration(30 * time.Second), RequiredClaims: []string{"sub", "professionOID"},
		SubjectClaim: "sub", Roles: config.RoleMapping{Claim: "professionOID", Map: map[string]string{"1.2.276.0.76.4.50": "prescriber"}},
		CacheSize: 100,
	}
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	now := time.Now()
	base := jwt.MapClaims{"iss": "iss", "aud": "aud", "sub": "s1", "professionOID": "1.2.276.0.76.4.50", "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	for k, v := range claims {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	tok := jwt.NewWithClaims(m, base)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	k := newKeys(t)
	other := newKeys(t)
	pubPEM, _ := os.ReadFile(pemFile(t, k))
	for _, src := range []struct {
		name string
		keys config.Keys
	}{{"pem", config.Keys{PEMFile: pemFile(t, k)}}, {"jwks", config.Keys{JWKSFile: jwksFile(t, k)}}} {
		v, err := New(context.Background(), profile(src.keys))
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name  string
			token string
			want  Failure
		}{
			{"RS256", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", nil), OK},
			{"PS256", sign(t, jwt.SigningMethodPS256, k.rsa, "r1", nil), OK},
			{"ES256", sign(t, jwt.SigningMethodES256, k.ec, "e1", nil), OK},
			{"RS512 not allowed", sign(t, jwt.SigningMethodRS512, k.rsa, "r1", nil), InvalidSignature},
			{"other key", sign(t, jwt.SigningMethodRS256, other.rsa, "r1", nil), InvalidSignature},
			{"other EC key", sign(t, jwt.SigningMethodES256, other.ec, "e1", nil), InvalidSignature},
			{"ES256 token naming the RSA kid", sign(t, jwt.SigningMethodES256, k.ec, "r1", nil), map[string]Failure{"pem": OK, "jwks": InvalidSignature}[src.name]},
			{"HS256 with the public key PEM", sign(t, jwt.SigningMethodHS256, pubPEM, "r1", nil), InvalidSignature},
			{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "r1", nil), InvalidSignature},
			{"kid injection", sign(t, jwt.SigningMethodRS256, k.rsa, "../../etc/passwd", nil), map[string]Failure{"pem": OK, "jwks": InvalidSignature}[src.name]},
			{"expired", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", jwt.MapClaims{"exp": time.Now().Add(-time.Minute).Unix()}), Expired},
			{"expired within skew", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", jwt.MapClaims{"exp": time.Now().Add(-10 * time.Second).Unix()}), OK},
			{"nbf ahead", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", jwt.MapClaims{"nbf": time.Now().Add(time.Minute).Unix()}), NotYetValid},
			{"nbf within skew", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", jwt.MapClaims{"nbf": time.Now().Add(10 * time.Second).Unix()}), OK},
			{"wrong aud", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", jwt.MapClaims{"aud": "x"}), InvalidAudience},
			{"aud list containing ours", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", jwt.MapClaims{"aud": []string{"x", "aud"}}), OK},
			{"wrong iss", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", jwt.MapClaims{"iss": "x"}), InvalidIssuer},
			{"no exp", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", jwt.MapClaims{"exp": nil}), MissingClaims},
			{"empty required claim", sign(t, jwt.SigningMethodRS256, k.rsa, "r1", jwt.MapClaims{"professionOID": ""}), MissingClaims},
			{"garbage", "garbage", InvalidFormat},
			{"not base64", "a.b.c", InvalidFormat},
		}
		for _, c := range cases {
			t.Run(src.name+"/"+c.name, func(t *testing.T) {
				p, got := v.Verify(c.token)
				if got != c.want {
					t.Fatalf("got %v, want %v", got, c.want)
				}
				if got == OK && (p.Role != "prescriber" || p.Subject != "s1") {
					t.Errorf("principal %+v", p)
				}
			})
		}
	}
}

func TestCacheKeepsTokensUntilExpiry(t *testing.T) {
	k := newKeys(t)
	v, err := New(context.Background(), profile(config.Keys{PEMFile: pemFile(t, k)}))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	v.now = func() time.Time { return now }
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, "", jwt.MapClaims{"exp": now.Add(time.Minute).Unix()})
	if _, f := v.Verify(tok); f != OK || v.cache.len() != 1 {
		t.Fatalf("first verify %v, cache %d", f, v.cache.len())
	}
	if _, f := v.Verify(tok); f != OK {
		t.Fatal(f)
	}
	// Past exp + skew the cached entry no longer counts: the token is
	// verified again and refused.
	now = now.Add(2 * time.Minute)
	if _, f := v.Verify(tok); f != Expired {
		t.Fatalf("after expiry: %v", f)
	}
	// Failures are not cached.
	if _, f := v.Verify("garbage"); f != InvalidFormat || v.cache.len() != 1 {
		t.Fatalf("garbage: %v, cache %d", f, v.cache.len())
	}
}

func TestCacheBounded(t *testing.T) {
	c := newTokenCache(10)
	now := time.Now()
	for i := 0; i < 100; i++ {
		var k [32]byte
		k[0], k[1] = byte(i), byte(i>>8)
		c.put(k, &Principal{}, now.Add(time.Hour), now)
	}
	if n := c.len(); n > 10 {
		t.Errorf("cache holds %d entries, bound 10", n)
	}
}

func TestBearerToken(t *testing.T) {
	cases := []struct {
		h       string
		present bool
		tok     string
		f       Failure
	}{
		{"", false, "", MissingHeader},
		{"", true, "", MalformedHeader},
		{"Bearer abc", true, "abc", OK},
		{"bearer abc", true, "abc", OK},
		{"Bearer", true, "", MalformedHeader},
		{"Bearer ", true, "", MalformedHeader},
		{"Bearer a b", true, "", MalformedHeader},
		{"Basic abc", true, "", MalformedHeader},
		{"Bearer " + string(make([]byte, MaxTokenBytes+1)), true, "", InvalidFormat},
	}
	for _, c := range cases {
		tok, f := BearerToken(c.h, c.present)
		if tok != c.tok || f != c.f {
			t.Errorf("%.20q: got %q %v, want %q %v", c.h, tok, f, c.tok, c.f)
		}
	}
}
