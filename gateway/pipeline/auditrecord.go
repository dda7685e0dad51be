package pipeline

import (
	"net"
	"strings"

	"github.com/fhirgate/fhirgate/gateway/audit"
)

// auditRecord describes the finished request for the audit trail. The
// resource id is the path's {id}, or for a create the id in the Location
// the gateway answered with; query values are never recorded (they may be
// credentials).
func (x *Exchange) auditRecord(status int) *audit.Record {
	rec := &audit.Record{
		Time: x.start, RequestID: x.id, Base: x.base.prefix, Role: x.role(),
		Status: status, Failure: x.kind,
	}
	if sc := x.sc; sc.HasTraceID() {
		rec.TraceID = sc.TraceID().String()
	}
	if host, _, err := net.SplitHostPort(x.r.RemoteAddr); err == nil {
		rec.ClientAddress = host
	}
	if x.principal != nil {
		rec.Subject = x.principal.Subject
		rec.Issuer, _ = x.principal.Claim("iss")
	}
	switch {
	case x.capabilities:
		rec.Interaction, rec.ResourceType = "capabilities", "CapabilityStatement"
	case x.route != nil:
		rec.Route, rec.Interaction = x.route.cfg.Name, x.route.cfg.Interaction
		rec.ResourceType, rec.Operation = x.route.resourceType, x.route.operation
		if id, ok := x.params.get("id"); ok {
			rec.ResourceID = id
		} else if loc := x.w.Header().Get("Location"); loc != "" && status < 300 {
			rec.ResourceID = idFromLocation(loc, rec.ResourceType)
		}
	}
	return rec
}

// idFromLocation reads the id from …/Type/id[/_history/v].
func idFromLocation(loc, typ string) string {
	i := strings.LastIndex(loc, "/"+typ+"/")
	if i < 0 {
		return ""
	}
	id, _, _ := strings.Cut(loc[i+len(typ)+2:], "/")
	return id
}
