package gtk

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Handler is the GtK's own API (JSON, not FHIR):
//
//	POST /gtk/v2/notifications
//	     {"id":{"system":"…","value":"…"}, "group":{…}, "patient":{…},
//	      "sender":{…}, "receiver":{…}, "pullUntil":"…",
//	      "authorizationBase":"…", "workflowTask":"true", "read":[…], "search":[…]}
//	200 {"outcome":"STORED","notificationId":"ntf-000001","revision":1,"pullCancelled":false}
//	202 {"outcome":"QUEUED"}                       (accept-only mode)
//	409 {"errorCode":"GTK-E-107","message":…}      identifier cancelled before arrival
//	409 {"errorCode":"GTK-E-108","message":…}      duplicate identifier
//	400 {"errorCode":"GTK-E-100","message":…}      malformed request
//
//	POST /gtk/v2/cancellations
//	     {"match":{"mode":"exact|any-system|no-system|system-only","system":"…","value":"…"},
//	      "record":{"system":"…","value":"…"}}
//	200 {"outcome":"CANCELLED","notificationId":…,"revision":…,"pullCancelled":true}
//	200 {"outcome":"ALREADY_CANCELLED","notificationId":…,"revision":…}
//	200 {"outcome":"STORED_AS_CANCELLED","notificationId":…,"revision":1}
//	202 {"outcome":"CANCEL_QUEUED"}                (accept-only mode)
//	409 {"errorCode":"GTK-E-130","message":…,"matches":2}   not selective
//	409 {"errorCode":"GTK-E-131","message":…}      already pulled
//	400 {"errorCode":"GTK-E-100"|"GTK-E-132","message":…}
//
//	GET  /gtk/v2/notifications/{notificationId}
//	200 {"notificationId":…,"revision":…,"status":"active|pulled|cancelled",
//	     "system":…,"value":…,"fields":{…as registered, credentials left out}}
//	404 {"errorCode":"GTK-E-140","message":…}      unknown id
//
//	GET  /gtk/v2/notifications?mode=&system=&value=   (mode as in a cancellation; default exact)
//	200 {"count":n,"notifications":[…as above…]}
//	400 {"errorCode":"GTK-E-100","message":…}
//
// Faults set through /admin/fault apply before any processing, so a
// request that meets one changes nothing.
func Handler(s *Store, f *Faults) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /gtk/v2/notifications", func(w http.ResponseWriter, r *http.Request) {
		if f.apply(w, r) {
			return
		}
		var in map[string]any
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 256<<10)).Decode(&in); err != nil {
			refuse(w, http.StatusBadRequest, Result{Refusal: "GTK-E-100", Message: "body is not a JSON object"})
			return
		}
		id, _ := in["id"].(map[string]any)
		system, _ := id["system"].(string)
		value, _ := id["value"].(string)
		writeResult(w, s.Register(system, value, in))
	})
	mux.HandleFunc("POST /gtk/v2/cancellations", func(w http.ResponseWriter, r *http.Request) {
		if f.apply(w, r) {
			return
		}
		var in struct {
			Match  struct{ Mode, System, Value string } `json:"match"`
			Record struct{ System, Value string }       `json:"record"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
			refuse(w, http.StatusBadRequest, Result{Refusal: "GTK-E-100", Message: "body is not the cancellation JSON"})
			return
		}
		writeResult(w, s.Cancel(in.Match.Mode, in.Match.System, in.Match.Value, in.Record.System, in.Record.Value))
	})
	mux.HandleFunc("GET /gtk/v2/notifications/{id}", func(w http.ResponseWriter, r *http.Request) {
		if f.apply(w, r) {
			return
		}
		n, ok := s.Get(r.PathValue("id"))
		if !ok {
			refuse(w, http.StatusNotFound, Result{Refusal: "GTK-E-140", Message: "no notification with this id"})
			return
		}
		writeJSON(w, http.StatusOK, readView(n))
	})
	mux.HandleFunc("GET /gtk/v2/notifications", func(w http.ResponseWriter, r *http.Request) {
		if f.apply(w, r) {
			return
		}
		q := r.URL.Query()
		hits, ok := s.Search(q.Get("mode"), q.Get("system"), q.Get("value"))
		if !ok || (q.Get("value") == "" && q.Get("mode") != "system-only") {
			refuse(w, http.StatusBadRequest, Result{Refusal: "GTK-E-100", Message: "a search needs mode (exact, any-system, no-system, system-only) and value"})
			return
		}
		list := make([]any, 0, len(hits))
		for _, n := range hits {
			list = append(list, readView(n))
		}
		writeJSON(w, http.StatusOK, map[string]any{"count": len(hits), "notifications": list})
	})
	return mux
}

// readView is a record as the read API shows it: the registration's fields
// without the authorization base, which is a credential of the pull and
// is never read back.
func readView(n Notification) map[string]any {
	fields := map[string]any{}
	for k, v := range n.Fields {
		if k != "authorizationBase" {
			fields[k] = v
		}
	}
	return map[string]any{"notificationId": n.ID, "revision": n.Revision, "status": n.Status,
		"system": n.System, "value": n.Value, "fields": fields}
}

// writeResult answers a registration or cancellation: malformed requests
// 400, business refusals 409, queued (accept-only) 202, stored 200 with
// the record's id and revision.
func writeResult(w http.ResponseWriter, res Result) {
	switch {
	case res.Refusal == "GTK-E-100" || res.Refusal == "GTK-E-132":
		refuse(w, http.StatusBadRequest, res)
	case res.Refusal != "":
		refuse(w, http.StatusConflict, res)
	case res.Outcome == "QUEUED" || res.Outcome == "CANCEL_QUEUED":
		writeJSON(w, http.StatusAccepted, map[string]any{"outcome": res.Outcome})
	default:
		writeJSON(w, http.StatusOK, map[string]any{"outcome": res.Outcome, "notificationId": res.Record.ID,
			"revision": res.Record.Revision, "pullCancelled": res.Record.PullCancelled})
	}
}

func refuse(w http.ResponseWriter, status int, res Result) {
	body := map[string]any{"errorCode": res.Refusal, "message": res.Message}
	if res.Matches > 0 {
		body["matches"] = res.Matches
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Faults injects failures into the next API requests, for tests of what
// the gateway tells a client when the GtK fails.
type Faults struct {
	mu    sync.Mutex
	mode  string
	delay time.Duration
	count int
}

// Fault modes:
//
//	delay        wait, then process only if the caller is still there
//	status500    answer 500 with a text body
//	garbage      answer 200 with a body that is not JSON
//	wrong-type   answer 200 with an HTML page
//	half         announce a JSON body and send half of it
//	error-in-200 answer 200 {"errorCode":"GTK-E-999"}
//	close        close the connection without an answer
func (f *Faults) apply(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	mode, delay := f.mode, f.delay
	if f.count > 0 {
		f.count--
		if f.count == 0 {
			f.mode = ""
		}
	}
	f.mu.Unlock()
	if mode == "" {
		return false
	}
	// Read the request first, as a real system would: only then does the
	// server notice a caller that went away (the context is cancelled).
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	switch mode {
	case "delay":
		select {
		case <-time.After(delay):
			return r.Context().Err() != nil
		case <-r.Context().Done():
			return true
		}
	case "status500":
		http.Error(w, "internal error", http.StatusInternalServerError)
	case "garbage":
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("\x00\x01 not json {"))
	case "wrong-type":
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(`<html><body>{"outcome":"STORED","notificationId":"x","revision":1}</body></html>`))
	case "half":
		body := `{"outcome":"STORED","notificationId":"ntf-999999","revision":1}`
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(body[:len(body)/2]))
		panic(http.ErrAbortHandler)
	case "error-in-200":
		writeJSON(w, http.StatusOK, map[string]string{"errorCode": "GTK-E-999", "message": "internal failure"})
	case "close":
		panic(http.ErrAbortHandler)
	default:
		return false
	}
	return true
}

// AdminHandler serves
//
//	GET  /admin/notifications           every record, in creation order
//	POST /admin/reset                   empty the store, persist mode on, no faults
//	POST /admin/persist?on=true|false   persist or accept-only
//	POST /admin/pulled?id=…             mark a notification pulled
//	POST /admin/fault?mode=…&count=N&delay=2s   inject faults (mode "" clears)
func AdminHandler(s *Store, f *Faults) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/notifications", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Snapshot())
	})
	mux.HandleFunc("POST /admin/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		f.mu.Lock()
		f.mode, f.count = "", 0
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /admin/persist", func(w http.ResponseWriter, r *http.Request) {
		s.SetPersist(r.URL.Query().Get("on") != "false")
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /admin/pulled", func(w http.ResponseWriter, r *http.Request) {
		if !s.MarkPulled(r.URL.Query().Get("id")) {
			http.Error(w, "no active notification with that id", http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /admin/fault", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		count, _ := strconv.Atoi(q.Get("count"))
		delay, _ := time.ParseDuration(q.Get("delay"))
		f.mu.Lock()
		f.mode, f.count, f.delay = q.Get("mode"), count, delay
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}
