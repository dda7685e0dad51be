// Package idp is a demo identity provider for the legacy simulators: it
// signs tokens shaped like the E-Rezept IDP's (claims professionOID and
// idNummer) with a key made at start, and publishes that key as a JWKS, so a
// newcomer can get a token for each role. It is for demos and tests only.
package idp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Role → professionOID of the demo tokens (gemSpec_OID).
var RoleOIDs = map[string]string{
	"prescriber": "1.2.276.0.76.4.50", // Betriebsstätte Arzt
	"pharmacy":   "1.2.276.0.76.4.54", // öffentliche Apotheke
	"insured":    "1.2.276.0.76.4.49", // Versicherter
}

// IDP signs demo tokens.
type IDP struct {
	key      *rsa.PrivateKey
	kid      string
	Issuer   string
	Audience string
}

// New makes an IDP with a fresh RSA key.
func New(issuer, audience string) (*IDP, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return WithKey(key, issuer, audience), nil
}

// LoadKey reads an RSA private key from a PEM file (PKCS#1 or PKCS#8).
func LoadKey(file string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block in " + file)
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key: " + file)
	}
	return rk, nil
}

// WithKey makes an IDP signing with key.
func WithKey(key *rsa.PrivateKey, issuer, audience string) *IDP {
	sum := sha256.Sum256(key.PublicKey.N.Bytes())
	return &IDP{key: key, kid: hex.EncodeToString(sum[:8]), Issuer: issuer, Audience: audience}
}

// Token signs a token for a role ("" with oid set) valid for ttl.
// idNummer is the KVNR of an insured person or a Telematik-ID.
func (i *IDP) Token(oid, idNummer, sub string, ttl time.Duration) (string, error) {
	return i.Sign(sub, ttl, map[string]any{"professionOID": oid, "idNummer": idNummer})
}

// Sign signs a token for sub valid for ttl with iss, aud, iat, exp and the
// extra claims.
func (i *IDP) Sign(sub string, ttl time.Duration, extra map[string]any) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"iss": i.Issuer, "aud": i.Audience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	}
	for k, v := range extra {
		claims[k] = v
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = i.kid
	return t.SignedString(i.key)
}

// OAuthHandler serves the JWKS like Handler, and
//
//	GET /demo/token?sub=…[&scope=tanp][&ttl=3600]
//	                      an OAuth access token (claims sub and scope) as
//	                      plain text, as a Twiin client would get one
func (i *IDP) OAuthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /demo/jwks.json", i.Handler())
	mux.HandleFunc("GET /demo/token", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		sub, scope := q.Get("sub"), q.Get("scope")
		if sub == "" {
			sub = "sending-gtk"
		}
		if scope == "" {
			scope = "tanp"
		}
		ttl, ok := ttlParam(w, q.Get("ttl"))
		if !ok {
			return
		}
		writeToken(w)(i.Sign(sub, ttl, map[string]any{"scope": scope}))
	})
	return mux
}

// writeToken returns a function that answers a signed token as plain text,
// or 500 when signing failed.
func writeToken(w http.ResponseWriter) func(string, error) {
	return func(tok string, err error) {
		if err != nil {
			http.Error(w, "signing failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(tok + "\n"))
	}
}

// ttlParam reads ?ttl= (seconds, 1 to 86400; default one hour).
func ttlParam(w http.ResponseWriter, s string) (time.Duration, bool) {
	if s == "" {
		return time.Hour, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 86400 {
		http.Error(w, "ttl is seconds, 1 to 86400", http.StatusBadRequest)
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// Handler serves
//
//	GET /demo/jwks.json   the public key
//	GET /demo/token?role=prescriber|pharmacy|insured[&oid=…][&idNummer=…][&ttl=3600]
//	                      a token as plain text
func (i *IDP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /demo/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		pub := i.key.PublicKey
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": i.kid,
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	mux.HandleFunc("GET /demo/token", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		role := q.Get("role")
		oid := q.Get("oid")
		if oid == "" {
			oid = RoleOIDs[role]
		}
		if oid == "" {
			http.Error(w, "give role=prescriber|pharmacy|insured or oid=…", http.StatusBadRequest)
			return
		}
		id := q.Get("idNummer")
		if id == "" {
			id = map[string]string{"insured": "X110465770", "pharmacy": "3-SMC-B-Testkarte-883110000116873"}[role]
			if id == "" {
				id = "1-SMC-B-Testkarte-883110000116948"
			}
		}
		ttl, ok := ttlParam(w, q.Get("ttl"))
		if !ok {
			return
		}
		sum := sha256.Sum256([]byte(oid + "|" + id))
		writeToken(w)(i.Token(oid, id, hex.EncodeToString(sum[:16]), ttl))
	})
	return mux
}
