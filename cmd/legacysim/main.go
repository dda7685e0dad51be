// Command legacysim runs the bundled legacy backend simulators, each a
// non-FHIR system the gateway is configured to front.
//
//	legacysim fachdienst [--listen 127.0.0.1:9101] [--dialect rest|cgi] [--seed tasks.json]
//
// Besides its dialect's API it serves /admin/* (inspect and reset state) and
// /demo/* (a demo token endpoint and its JWKS).
package main

import (
	"context"
	"crypto/rsa"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/fhirgate/fhirgate/test/legacysim/fachdienst"
	"github.com/fhirgate/fhirgate/test/legacysim/idp"
)

func main() {
	if len(os.Args) < 2 || os.Args[1] != "fachdienst" {
		fmt.Fprintln(os.Stderr, "usage: legacysim fachdienst [--listen ADDR] [--dialect rest|cgi] [--seed FILE]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("fachdienst", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9101", "listen address")
	dialect := fs.String("dialect", "rest", "wire dialect: rest (JSON, HTTP status codes) or cgi (form posts, XML answers inside HTTP 200)")
	seedFile := fs.String("seed", "", "seed Tasks (JSON array); default: the embedded seed")
	issuer := fs.String("issuer", "https://idp.fhirgate.example", "iss of demo tokens")
	audience := fs.String("audience", "https://erp.fhirgate.example/", "aud of demo tokens")
	idpKey := fs.String("idp-key", "", "RSA private key (PEM) of the demo IDP; default: a fresh key")
	fs.Parse(os.Args[2:])
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))

	seed := fachdienst.DefaultSeed()
	if *seedFile != "" {
		data, err := os.ReadFile(*seedFile)
		if err == nil {
			seed, err = fachdienst.ParseSeed(data)
		}
		if err != nil {
			log.Error("seed", "error", err.Error())
			os.Exit(1)
		}
	}
	store := fachdienst.NewStore(seed)
	var api http.Handler
	switch *dialect {
	case "rest":
		api = fachdienst.RESTHandler(store)
	case "cgi":
		api = fachdienst.CGIHandler(store)
	default:
		log.Error("unknown dialect", "dialect", *dialect)
		os.Exit(2)
	}
	var demo *idp.IDP
	var err error
	if *idpKey != "" {
		var key *rsa.PrivateKey
		if key, err = idp.LoadKey(*idpKey); err == nil {
			demo = idp.WithKey(key, *issuer, *audience)
		}
	} else {
		demo, err = idp.New(*issuer, *audience)
	}
	if err != nil {
		log.Error("idp", "error", err.Error())
		os.Exit(1)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", fachdienst.AdminHandler(store))
	mux.Handle("/demo/", demo.Handler())
	mux.Handle("/", api)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen", "error", err.Error())
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info("legacysim fachdienst listening", "addr", ln.Addr().String(), "dialect", *dialect, "tasks", len(seed))
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Error("serve", "error", err.Error())
		os.Exit(1)
	}
}
