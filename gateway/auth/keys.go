package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/fhirgate/fhirgate/config"
	"github.com/golang-jwt/jwt/v5"
)

// loadKeys returns the key lookup of a profile. Whatever the source, the
// algorithm allowlist of the parser runs first, and golang-jwt refuses a key
// of the wrong type for the token's algorithm (an RSA key never verifies
// an HMAC or an ECDSA signature), which closes key confusion.
func loadKeys(ctx context.Context, p *config.AuthProfile) (jwt.Keyfunc, error) {
	k := p.Keys
	switch {
	case k.PEMFile != "":
		keys, err := readPEMKeys(k.PEMFile)
		if err != nil {
			return nil, err
		}
		return func(*jwt.Token) (any, error) { return keys, nil }, nil
	case k.JWKSFile != "":
		raw, err := os.ReadFile(k.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("reading JWKS file: %w", err)
		}
		kf, err := keyfunc.NewJWKSetJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("JWKS file %s: %w", k.JWKSFile, err)
		}
		return kf.Keyfunc, nil
	case k.JWKSURL != "":
		url := k.JWKSURL
		kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{url}, keyfunc.Override{
			Client:          &http.Client{Timeout: 5 * time.Second},
			RefreshInterval: k.Refresh.D(),
			HTTPTimeout:     5 * time.Second,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(ctx context.Context, err error) {
					slog.Warn("JWKS refresh failed", "url", u, "error", err.Error())
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("JWKS URL %s: %w", url, err)
		}
		return kf.Keyfunc, nil
	}
	return nil, errors.New("no key source configured")
}

// readPEMKeys reads every public key and certificate of a PEM file.
func readPEMKeys(file string) (jwt.VerificationKeySet, error) {
	var set jwt.VerificationKeySet
	data, err := os.ReadFile(file)
	if err != nil {
		return set, fmt.Errorf("reading PEM file: %w", err)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var key any
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				key = cert.PublicKey
			}
		default:
			return set, fmt.Errorf("PEM file %s: block %q is not a public key or certificate", file, block.Type)
		}
		if err != nil {
			return set, fmt.Errorf("PEM file %s: %w", file, err)
		}
		switch key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey:
			set.Keys = append(set.Keys, key)
		default:
			return set, fmt.Errorf("PEM file %s: only RSA and ECDSA keys are supported", file)
		}
	}
	if len(set.Keys) == 0 {
		return set, fmt.Errorf("PEM file %s holds no public key", file)
	}
	return set, nil
}
