package fachdienst

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
)

// RESTHandler is the simulator's JSON dialect:
//
//	POST /legacy/v1/prescriptions/{id}/cancellation
//	     {"actorRole":"prescriber|pharmacy|insured","actorId":"…","accessCode":"…","secret":"…"}
//	200 {"result":"CANCELLED","prescriptionId":"…"}
//	404 {"error":"UNKNOWN_PRESCRIPTION"}
//	409 {"error":"TASK_STATE","state":"<status>"}
//	403 {"error":"FLOWTYPE_RESTRICTED","flowType":"169"}
//	403 {"error":"BAD_SECRET"} | {"error":"BAD_ACCESS_CODE"}
//	400 {"error":"BAD_REQUEST","detail":"…"}
//
// Reads (spec erezept-task-read; the access rules are the legacy
// system's, what a caller may see of the record is the façade's to
// decide — the record comes whole, credentials included):
//
//	GET /legacy/v1/prescriptions/{id}?actorRole=insured|pharmacy|payer&actorId=…&accessCode=…&secret=…
//	200 {<Task fields>, "documents": {"prescription": {"uuid","bundle"}, "qes": {"uuid","data"}, "receipt": {…}}}
//	404 {"error":"UNKNOWN_PRESCRIPTION"}
//	409 {"error":"TASK_STATE","state":"<status>"} | {"error":"NOT_OWNER"}
//	403 {"error":"BAD_ACCESS_CODE"} | {"error":"BAD_SECRET"} | {"error":"FLOWTYPE_RESTRICTED","flowType":"169"}
//	400 {"error":"IDENTITY_MIX"}
//
//	GET /legacy/v1/prescriptions?kvnr=…&status=a,b&authoredOn=ge2026-01-01&lastModified=…&expiryDate=…&acceptDate=…&sort=-authoredOn&limit=50&offset=0
//	200 {"total": <all matches>, "prescriptions": [<Task fields>, …]}   (no drafts, no documents)
func RESTHandler(s *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /legacy/v1/prescriptions/{id}", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		kind, ok := map[string]ActorKind{"pharmacy": Pharmacy, "payer": Pharmacy, "insured": Insured}[q.Get("actorRole")]
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "BAD_REQUEST", "detail": "unknown actorRole"})
			return
		}
		res := s.Read(r.PathValue("id"), Actor{Kind: kind, ID: q.Get("actorId"), AccessCode: q.Get("accessCode"), Secret: q.Get("secret")})
		switch res.Refusal {
		case ReadOK:
			writeJSON(w, http.StatusOK, struct {
				Task
				Documents Documents `json:"documents"`
			}{res.Task, DocumentsOf(res.Task)})
		case ReadUnknown:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "UNKNOWN_PRESCRIPTION"})
		case ReadWrongState:
			writeJSON(w, http.StatusConflict, map[string]string{"error": "TASK_STATE", "state": res.State})
		case ReadNotOwner:
			writeJSON(w, http.StatusConflict, map[string]string{"error": "NOT_OWNER"})
		case ReadBadAccessCode:
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "BAD_ACCESS_CODE"})
		case ReadBadSecret:
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "BAD_SECRET"})
		case ReadFlowTypeLimit:
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "FLOWTYPE_RESTRICTED"})
		case ReadIdentityMix:
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "IDENTITY_MIX"})
		}
	})
	mux.HandleFunc("GET /legacy/v1/prescriptions", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		lq := Query{KVNR: q.Get("kvnr"), Sort: q.Get("sort"), Dates: map[string][]string{}}
		if lq.KVNR == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "BAD_REQUEST", "detail": "kvnr is required"})
			return
		}
		if st := q.Get("status"); st != "" {
			lq.Status = strings.Split(st, ",")
		}
		for _, f := range []string{"authoredOn", "lastModified", "expiryDate", "acceptDate"} {
			if vs := q[f]; len(vs) > 0 {
				lq.Dates[f] = vs
			}
		}
		var err1, err2 error
		lq.Limit, err1 = atoiOr(q.Get("limit"), 50)
		lq.Offset, err2 = atoiOr(q.Get("offset"), 0)
		if err1 != nil || err2 != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "BAD_REQUEST", "detail": "limit and offset are numbers"})
			return
		}
		page, total := s.List(lq)
		if page == nil {
			page = []Task{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"total": total, "prescriptions": page})
	})
	mux.HandleFunc("POST /legacy/v1/prescriptions/{id}/cancellation", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			ActorRole  string `json:"actorRole"`
			ActorID    string `json:"actorId"`
			AccessCode string `json:"accessCode"`
			Secret     string `json:"secret"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "BAD_REQUEST", "detail": "body is not JSON"})
			return
		}
		kind, ok := map[string]ActorKind{"prescriber": Prescriber, "pharmacy": Pharmacy, "insured": Insured}[in.ActorRole]
		if !ok {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "BAD_REQUEST", "detail": "unknown actorRole"})
			return
		}
		id := r.PathValue("id")
		res := s.Abort(id, Actor{Kind: kind, ID: in.ActorID, AccessCode: in.AccessCode, Secret: in.Secret})
		switch res.Refusal {
		case Accepted:
			writeJSON(w, http.StatusOK, map[string]string{"result": "CANCELLED", "prescriptionId": id})
		case UnknownTask:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "UNKNOWN_PRESCRIPTION"})
		case WrongState:
			writeJSON(w, http.StatusConflict, map[string]string{"error": "TASK_STATE", "state": res.State})
		case FlowTypeLimit:
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "FLOWTYPE_RESTRICTED", "flowType": res.FlowType})
		case BadSecret:
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "BAD_SECRET"})
		case BadAccessCode:
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "BAD_ACCESS_CODE"})
		}
	})
	return mux
}

// CGIHandler is the simulator's second dialect, shaped like an old CGI
// system: a form post to one script, every business answer inside HTTP 200
// as XML.
//
//	POST /cgi-bin/rx.cgi  op=storno&rx=<id>&who=ARZT|APOTHEKE|VERSICHERTER&kvnr=…&ac=…&sec=…
//	200 <rxresult><rc>OK</rc><rx>…</rx></rxresult>
//	200 <rxresult><rc>E_NOTFOUND</rc></rxresult>
//	200 <rxresult><rc>E_STATE</rc><task status="in-progress"/></rxresult>
//	200 <rxresult><rc>E_WORKFLOW</rc><task workflow="169"/></rxresult>
//	200 <rxresult><rc>E_CREDENTIAL</rc><kind>secret|accesscode</kind></rxresult>
//	400 text/plain for a malformed post
func CGIHandler(s *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cgi-bin/rx.cgi", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil || r.PostForm.Get("op") != "storno" {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		f := r.PostForm
		kind, ok := map[string]ActorKind{"ARZT": Prescriber, "APOTHEKE": Pharmacy, "VERSICHERTER": Insured}[f.Get("who")]
		if !ok {
			http.Error(w, "bad who", http.StatusBadRequest)
			return
		}
		res := s.Abort(f.Get("rx"), Actor{Kind: kind, ID: f.Get("kvnr"), AccessCode: f.Get("ac"), Secret: f.Get("sec")})
		var b strings.Builder
		b.WriteString("<rxresult>")
		switch res.Refusal {
		case Accepted:
			b.WriteString("<rc>OK</rc><rx>")
			xml.EscapeText(&b, []byte(f.Get("rx")))
			b.WriteString("</rx>")
		case UnknownTask:
			b.WriteString("<rc>E_NOTFOUND</rc>")
		case WrongState:
			b.WriteString(`<rc>E_STATE</rc><task status="` + res.State + `"/>`)
		case FlowTypeLimit:
			b.WriteString(`<rc>E_WORKFLOW</rc><task workflow="` + res.FlowType + `"/>`)
		case BadSecret:
			b.WriteString("<rc>E_CREDENTIAL</rc><kind>secret</kind>")
		case BadAccessCode:
			b.WriteString("<rc>E_CREDENTIAL</rc><kind>accesscode</kind>")
		}
		b.WriteString("</rxresult>")
		w.Header().Set("Content-Type", "text/xml; charset=iso-8859-1")
		w.Write([]byte(b.String()))
	})
	return mux
}

// AdminHandler lets tests and demos inspect and reset the state:
//
//	POST /admin/reset        back to the seed
//	GET  /admin/tasks/{id}   one Task as JSON (404 when unknown)
//	GET  /admin/tasks        every Task
func AdminHandler(s *Store) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /admin/reset", func(w http.ResponseWriter, r *http.Request) {
		s.Reset()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /admin/tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		t, ok := s.Get(r.PathValue("id"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "UNKNOWN_PRESCRIPTION"})
			return
		}
		writeJSON(w, http.StatusOK, t)
	})
	mux.HandleFunc("GET /admin/tasks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.All())
	})
	return mux
}

func atoiOr(s string, def int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err == nil && n < 0 {
		err = strconv.ErrRange
	}
	return n, err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
