// Command legacysim runs the bundled legacy backend simulators, each a
// non-FHIR system the gateway is configured to front.
//
//	legacysim fachdienst [--listen 127.0.0.1:9101] [--dialect rest|cgi] [--seed tasks.json]
//	legacysim gtk [--listen 127.0.0.1:9102] [--persist=true|false]
//
// Besides its API each serves /admin/* (inspect and reset state, inject
// faults) and /demo/* (a demo token endpoint and its JWKS).
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
	"github.com/fhirgate/fhirgate/test/legacysim/gtk"
	"github.com/fhirgate/fhirgate/test/legacysim/idp"
)

const usage = `usage:
  legacysim fachdienst [--listen ADDR] [--dialect rest|cgi] [--seed FILE] [--idp-key PEM]
  legacysim gtk [--listen ADDR] [--persist=true|false] [--idp-key PEM]`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	switch os.Args[1] {
	case "fachdienst":
		runFachdienst(log, os.Args[2:])
	case "gtk":
		runGtK(log, os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
}

// demoIDP makes the demo identity provider, from a key file or a fresh key.
func demoIDP(log *slog.Logger, keyFile, issuer, audience string) *idp.IDP {
	var demo *idp.IDP
	var err error
	if keyFile != "" {
		var key *rsa.PrivateKey
		if key, err = idp.LoadKey(keyFile); err == nil {
			demo = idp.WithKey(key, issuer, audience)
		}
	} else {
		demo, err = idp.New(issuer, audience)
	}
	if err != nil {
		log.Error("idp", "error", err.Error())
		os.Exit(1)
	}
	return demo
}

func runGtK(log *slog.Logger, args []string) {
	fs := flag.NewFlagSet("gtk", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9102", "listen address")
	persist := fs.Bool("persist", true, "store accepted notifications and report id and revision (false: accept only)")
	issuer := fs.String("issuer", "https://twiin-idp.fhirgate.example", "iss of demo tokens")
	audience := fs.String("audience", "https://gtk.fhirgate.example/", "aud of demo tokens")
	idpKey := fs.String("idp-key", "", "RSA private key (PEM) of the demo IDP; default: a fresh key")
	fs.Parse(args)
	store := gtk.NewStore()
	store.SetPersist(*persist)
	faults := &gtk.Faults{}
	mux := http.NewServeMux()
	mux.Handle("/admin/", gtk.AdminHandler(store, faults))
	mux.Handle("/demo/", demoIDP(log, *idpKey, *issuer, *audience).OAuthHandler())
	mux.Handle("/", gtk.Handler(store, faults))
	serve(log, *listen, mux, "legacysim gtk listening", "persist", *persist)
}

func runFachdienst(log *slog.Logger, args []string) {
	fs := flag.NewFlagSet("fachdienst", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:9101", "listen address")
	dialect := fs.String("dialect", "rest", "wire dialect: rest (JSON, HTTP status codes) or cgi (form posts, XML answers inside HTTP 200)")
	seedFile := fs.String("seed", "", "seed Tasks (JSON array); default: the embedded seed")
	issuer := fs.String("issuer", "https://idp.fhirgate.example", "iss of demo tokens")
	audience := fs.String("audience", "https://erp.fhirgate.example/", "aud of demo tokens")
	idpKey := fs.String("idp-key", "", "RSA private key (PEM) of the demo IDP; default: a fresh key")
	fs.Parse(args)

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
	mux := http.NewServeMux()
	mux.Handle("/admin/", fachdienst.AdminHandler(store))
	mux.Handle("/demo/", demoIDP(log, *idpKey, *issuer, *audience).Handler())
	mux.Handle("/", api)
	serve(log, *listen, mux, "legacysim fachdienst listening", "dialect", *dialect, "tasks", len(seed))
}

// serve runs the simulator until SIGTERM or interrupt.
func serve(log *slog.Logger, listen string, h http.Handler, msg string, attrs ...any) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		log.Error("listen", "error", err.Error())
		os.Exit(1)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	log.Info(msg, append([]any{"addr", ln.Addr().String()}, attrs...)...)
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		log.Error("serve", "error", err.Error())
		os.Exit(1)
	}
}
