package pipeline

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/fhirgate/fhirgate/gateway/negotiate"
	"github.com/fhirgate/fhirgate/gateway/outcome"
	"github.com/fhirgate/fhirgate/validation"
	"github.com/fhirgate/fhirgate/validation/fhirxml"
)

// Version is the gateway's version, written into CapabilityStatements;
// release builds set it with -ldflags "-X …/gateway/pipeline.Version=…".
var Version = "dev"

// capability is a base's CapabilityStatement, rendered once per table in
// both formats.
type capability struct {
	json, xml []byte
}

// interactionOrder is FHIR's order of the restful interactions.
var interactionOrder = []string{"read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"}

// capabilityStatement describes what the base actually routes: one
// resource entry per resource type, with its interactions, conditional
// update where routed, the profile the request body is validated against
// and the operations. It is generated from the configuration, so it can
// never promise an interaction the gateway does not serve.
//
// kind is instance (this deployment), so implementation is present
// (invariant cpb-14); STU3 requires acceptUnknown (no: unknown elements are
// refused) and has operations only at rest level; R4 lists profiles as
// supportedProfile and operations per resource.
func capabilityStatement(b *base, version validation.Version, built time.Time) (*capability, error) {
	r4 := version == validation.R4
	type resource struct {
		interactions map[string]bool
		searchParams []any
		conditional  bool
		profiles     []string
		operations   []map[string]any
	}
	byType := map[string]*resource{}
	var order []string
	var restOps []map[string]any
	secured := false
	for _, r := range b.routes {
		if r.auth != nil {
			secured = true
		}
		typ := r.resourceType
		var op map[string]any
		if r.cfg.Interaction == "operation" {
			name := r.operation
			definition := "OperationDefinition/" + name
			if r.cfg.Operation != nil && r.cfg.Operation.Compiled != nil && r.cfg.Operation.Compiled.URL != "" {
				definition = r.cfg.Operation.Compiled.URL
			}
			if r4 {
				op = map[string]any{"name": name, "definition": definition}
			} else {
				op = map[string]any{"name": name, "definition": map[string]any{"reference": definition}}
			}
			if typ == "" || !r4 {
				restOps = append(restOps, op)
				if typ == "" {
					continue
				}
				op = nil
			}
		}
		res := byType[typ]
		if res == nil {
			res = &resource{interactions: map[string]bool{}}
			byType[typ] = res
			order = append(order, typ)
		}
		switch r.cfg.Interaction {
		case "conditional-update":
			res.interactions["update"] = true
			res.conditional = true
		case "search":
			res.interactions["search-type"] = true
			for _, name := range slices.Sorted(maps.Keys(r.cfg.SearchParams)) {
				if !slices.ContainsFunc(res.searchParams, func(p any) bool { return p.(map[string]any)["name"] == name }) {
					res.searchParams = append(res.searchParams, map[string]any{"name": name, "type": r.cfg.SearchParams[name]})
				}
			}
		case "operation":
			if op != nil {
				res.operations = append(res.operations, op)
			}
		default:
			res.interactions[r.cfg.Interaction] = true
		}
		if r.cfg.Request != nil && r.cfg.Request.Profile != "" {
			if !slices.Contains(res.profiles, r.cfg.Request.Profile) {
				res.profiles = append(res.profiles, r.cfg.Request.Profile)
			}
		}
	}
	var resources []any
	for _, typ := range order {
		res := byType[typ]
		entry := map[string]any{"type": typ}
		var inter []any
		for _, code := range interactionOrder {
			if res.interactions[code] {
				inter = append(inter, map[string]any{"code": code})
			}
		}
		if len(inter) > 0 {
			entry["interaction"] = inter
		}
		if res.conditional {
			entry["conditionalUpdate"] = true
		}
		if len(res.profiles) > 0 {
			if r4 {
				entry["supportedProfile"] = res.profiles
			} else {
				// STU3 has one profile reference per resource.
				entry["profile"] = map[string]any{"reference": res.profiles[0]}
			}
		}
		if len(res.searchParams) > 0 {
			entry["searchParam"] = res.searchParams
		}
		if len(res.operations) > 0 {
			entry["operation"] = res.operations
		}
		resources = append(resources, entry)
	}
	rest := map[string]any{"mode": "server"}
	if len(resources) > 0 {
		rest["resource"] = resources
	}
	if len(restOps) > 0 {
		rest["operation"] = restOps
	}
	if secured {
		system := "http://terminology.hl7.org/CodeSystem/restful-security-service"
		if !r4 {
			system = "http://hl7.org/fhir/restful-security-service"
		}
		rest["security"] = map[string]any{
			"service":     []any{map[string]any{"coding": []any{map[string]any{"system": system, "code": "OAuth"}}}},
			"description": "Bearer JWT (RFC 6750) in the Authorization header, verified against the issuer's keys.",
		}
	}
	implementation := map[string]any{"description": "fhirgate FHIR façade at " + b.prefix}
	if b.cfg.PublicURL != "" {
		implementation["url"] = b.cfg.PublicURL
	}
	cs := map[string]any{
		"resourceType":   "CapabilityStatement",
		"status":         "active",
		"date":           built.UTC().Format(time.RFC3339),
		"publisher":      "fhirgate",
		"kind":           "instance",
		"software":       map[string]any{"name": "fhirgate", "version": Version},
		"implementation": implementation,
		"format":         []string{"application/fhir+json", "application/fhir+xml"},
		"rest":           []any{rest},
	}
	xmlVersion := fhirxml.R4
	if r4 {
		cs["fhirVersion"] = "4.0.1"
	} else {
		cs["fhirVersion"] = "3.0.2"
		cs["acceptUnknown"] = "no"
		xmlVersion = fhirxml.STU3
	}
	data, err := json.Marshal(cs)
	if err != nil {
		return nil, err
	}
	x, err := fhirxml.ToXML(xmlVersion, data)
	if err != nil {
		return nil, err
	}
	return &capability{json: data, xml: x}, nil
}

// serveCapability answers GET [base]/metadata (FHIR capabilities
// interaction) in the negotiated format. It needs no token: a client
// learns what it may call before it has one.
func (x *Exchange) serveCapability() {
	x.capabilities = true
	x.status = http.StatusOK
	x.negotiate()
	if x.format == negotiate.None {
		x.fail(outcome.New(http.StatusNotAcceptable, "not-supported", "Requested format '"+x.asked+"' cannot be provided").WithKind("format"))
		return
	}
	body := x.base.capability.json
	if x.format == negotiate.XML {
		body = x.base.capability.xml
	}
	h := x.w.Header()
	h.Set("Content-Type", x.format.ContentType())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	x.w.WriteHeader(http.StatusOK)
	if x.r.Method != http.MethodHead {
		x.w.Write(body)
	}
}
