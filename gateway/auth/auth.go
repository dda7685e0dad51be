// Package auth verifies bearer JWTs and turns their claims into a caller: a
// subject, a role and the claims templates may use. One Verifier serves one
// auth profile of routes.yaml. It is safe for concurrent use.
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/fhirgate/fhirgate/config"
	"github.com/golang-jwt/jwt/v5"
)

// Failure says why a request was refused; the gateway maps each to the
// profile's configured answer.
type Failure int

const (
	OK Failure = iota
	MissingHeader
	MalformedHeader
	InvalidFormat
	InvalidSignature
	Expired
	NotYetValid
	InvalidAudience
	InvalidIssuer
	MissingClaims
)

var failureNames = [...]string{"ok", "missing_header", "malformed_header", "invalid_format", "invalid_signature", "expired", "not_yet_valid", "invalid_audience", "invalid_issuer", "missing_claims"}

func (f Failure) String() string { return failureNames[f] }

// MaxTokenBytes bounds a bearer token; a longer one is refused as malformed
// before any parsing (tokens of the E-Rezept IDP are about 1.5 KB).
const MaxTokenBytes = 16 << 10

// BearerToken extracts the token of an Authorization header value: scheme
// "Bearer" (case-insensitive, RFC 6750), one space, a non-empty token.
func BearerToken(header string, present bool) (string, Failure) {
	if !present {
		return "", MissingHeader
	}
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", MalformedHeader
	}
	tok := strings.TrimSpace(header[len(prefix):])
	// Two byte searches, not ContainsAny: a token is a kilobyte long and
	// IndexByte is vectorised.
	if tok == "" || strings.IndexByte(tok, ' ') >= 0 || strings.IndexByte(tok, '\t') >= 0 {
		return "", MalformedHeader
	}
	if len(tok) > MaxTokenBytes {
		return "", InvalidFormat
	}
	return tok, OK
}

// Principal is a verified caller.
type Principal struct {
	Subject string
	// RoleValue is the raw value of the role claim ("" when absent).
	RoleValue string
	// Role is the mapped role, "" when RoleValue is not in the map.
	Role    string
	Claims  jwt.MapClaims
	Expires time.Time
}

// Claim returns a claim as a string: strings as they are, numbers in their
// shortest form, booleans as true/false. Other shapes are absent.
func (p *Principal) Claim(name string) (string, bool) {
	if p == nil {
		return "", false
	}
	switch v := p.Claims[name].(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

// Verifier checks tokens for one auth profile.
type Verifier struct {
	parser       *jwt.Parser
	keys         jwt.Keyfunc
	required     []string
	subjectClaim string
	roleClaim    string
	roles        map[string]string
	cache        *tokenCache
	skew         time.Duration
	now          func() time.Time
}

// New builds a Verifier. ctx bounds background key refreshes (JWKS URL).
func New(ctx context.Context, p *config.AuthProfile) (*Verifier, error) {
	keys, err := loadKeys(ctx, p)
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		keys:         keys,
		required:     p.RequiredClaims,
		subjectClaim: p.SubjectClaim,
		roleClaim:    p.Roles.Claim,
		roles:        p.Roles.Map,
		skew:         p.ClockSkew.D(),
		now:          time.Now,
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(p.Algorithms),
		jwt.WithLeeway(p.ClockSkew.D()),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	}
	if len(p.Audience) > 0 {
		opts = append(opts, jwt.WithAudience(p.Audience...))
	}
	if p.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(p.Issuer))
	}
	v.parser = jwt.NewParser(opts...)
	if p.CacheSize > 0 {
		v.cache = newTokenCache(p.CacheSize)
	}
	return v, nil
}

// Verify checks a token: signature with an allowed algorithm, exp (always
// required), nbf and iat with clock skew, aud, iss, and the required claims.
// A verified token is cached, keyed by its SHA-256, until it expires.
func (v *Verifier) Verify(token string) (*Principal, Failure) {
	var key [sha256.Size]byte
	now := v.now()
	if v.cache != nil {
		key = sha256.Sum256([]byte(token))
		if p, ok := v.cache.get(key, now); ok {
			return p, OK
		}
	}
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, v.keys)
	if err != nil {
		return nil, classify(err)
	}
	for _, c := range v.required {
		if isEmptyClaim(claims[c]) {
			return nil, MissingClaims
		}
	}
	p := &Principal{Claims: claims}
	p.Subject, _ = p.Claim(v.subjectClaim)
	p.RoleValue, _ = p.Claim(v.roleClaim)
	p.Role = v.roles[p.RoleValue]
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		p.Expires = exp.Time
	}
	if v.cache != nil {
		v.cache.put(key, p, p.Expires.Add(v.skew), now)
	}
	return p, OK
}

func isEmptyClaim(c any) bool {
	switch x := c.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	}
	return false
}

// classify maps a golang-jwt error to a Failure. Signature problems are
// checked first: claims of a token whose signature did not verify mean
// nothing. Among claim problems the order is exp, nbf/iat, aud, iss, missing.
func classify(err error) Failure {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return InvalidFormat
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return InvalidSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return Expired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return NotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return InvalidAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return InvalidIssuer
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return MissingClaims
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return InvalidFormat
	}
	return InvalidSignature
}
