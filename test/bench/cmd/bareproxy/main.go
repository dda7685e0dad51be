// Command bareproxy is the floor of the benchmark: a bare
// net/http/httputil.ReverseProxy in front of the benchmark backend, tuned
// the way any Go gateway would be and doing nothing else — no routing,
// no authentication, no body reading, no logs. No gateway built on Go's
// net/http (gin included) can pass a request on with less work, so
// "gateway / bare proxy" is the share of the achievable that fhirgate
// reaches.
//
//	bareproxy --listen 127.0.0.1:9301 --backend 127.0.0.1:9201 [--pprof 127.0.0.1:9302]
//
// With --pprof it serves net/http/pprof on that second address (never on
// the proxied one), so that a CPU profile of the floor can be set beside
// the gateway's.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/http/pprof"
	"net/url"
	"sync"
	"time"
)

// bufferPool lends the 32 KiB copy buffers ReverseProxy would otherwise
// allocate per request.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(v []byte) { b.p.Put(&v) }

func main() {
	listen := flag.String("listen", "127.0.0.1:9301", "address")
	backend := flag.String("backend", "127.0.0.1:9201", "backend host:port")
	pprofAddr := flag.String("pprof", "", "if set, net/http/pprof is served on this address")
	flag.Parse()
	if *pprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go func() { log.Fatal(http.ListenAndServe(*pprofAddr, mux)) }()
	}
	target := &url.URL{Scheme: "http", Host: *backend}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	pool := &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
	proxy := &httputil.ReverseProxy{
		Rewrite:    func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:  tr,
		BufferPool: pool,
		ErrorLog:   log.New(io.Discard, "", 0),
	}
	srv := &http.Server{Addr: *listen, Handler: proxy, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
