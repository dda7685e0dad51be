// Command fastbackend is the benchmark's legacy system: it answers every
// call at once with the canned confirmation the gateway's routes map to a
// success, so that what is measured is the proxy in front of it.
//
//	POST …/cancellation           → 200 {"result":"CANCELLED"}                (E-Rezept $abort → 204)
//	POST /gtk/v2/notifications    → 200 {"outcome":"STORED",…}                (Twiin-01 → 201)
//	POST /gtk/v2/cancellations    → 200 {"outcome":"CANCELLED",…}             (Twiin-02 → 201)
//
// The FHIR paths (when called directly or through nginx) get the same
// answers: /erp/… as a cancellation, POST /twiin/Task as a notification,
// PUT /twiin/Task as a Twiin cancellation.
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strings"
)

var (
	abort        = []byte(`{"result":"CANCELLED"}`)
	stored       = []byte(`{"outcome":"STORED","notificationId":"ntf-000001","revision":1}`)
	cancelled    = []byte(`{"outcome":"CANCELLED","notificationId":"ntf-000001","revision":2}`)
	contentTypes = []string{"application/json"}
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9201", "address")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		var body []byte
		switch p := r.URL.Path; {
		case strings.HasSuffix(p, "/cancellation") || strings.HasPrefix(p, "/erp/"):
			body = abort
		case p == "/gtk/v2/notifications" || (p == "/twiin/Task" && r.Method == http.MethodPost):
			body = stored
		case p == "/gtk/v2/cancellations" || (p == "/twiin/Task" && r.Method == http.MethodPut):
			body = cancelled
		default:
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header()["Content-Type"] = contentTypes
		w.Write(body)
	})
	log.Fatal((&http.Server{Addr: *listen, Handler: h}).ListenAndServe())
}
