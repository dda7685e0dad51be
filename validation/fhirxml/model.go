// Package fhirxml converts FHIR XML to FHIR JSON and back, for STU3 and R4,
// so that both formats go through one parser and one validation path.
//
// What it needs to know of FHIR — element order, which elements repeat,
// which are primitives and of what JSON kind, choice types, resource
// containers — comes from the google/fhir proto descriptors: their field
// order is the FHIR element order, their JSON names the FHIR names, and
// their annotations say which messages are primitives and which are choice
// types. The one type whose proto shape differs from FHIR's is Reference
// (a oneof of typed ids where FHIR has one reference string); it gets its
// element list here.
package fhirxml

import (
	"strings"
	"sync"
	"sync/atomic"

	anpb "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
	r4 "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	r3 "github.com/google/fhir/go/proto/google/fhir/proto/stu3/resources_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Version selects the FHIR release.
type Version int

const (
	STU3 Version = iota + 1
	R4
)

// jsonKind is how a primitive's value is written in JSON.
type jsonKind uint8

const (
	jsonString jsonKind = iota
	jsonNumber
	jsonBool
)

// typeInfo is one FHIR type: a resource, a complex type, a backbone
// element, a primitive or a choice.
type typeInfo struct {
	name      string // FHIR type name (Task, string, CodeableConcept …); "" for backbone elements
	resource  bool
	primitive bool
	xhtml     bool
	kind      jsonKind
	elements  []*element
	byName    map[string]*element
	// choices maps a type suffix (String, Reference …) to its type, for
	// choice types.
	choices map[string]*typeInfo
	// choiceOrder lists the suffixes in definition order.
	choiceOrder []string
	// constraints are the FHIRPath invariants of the type (from the core
	// definitions, as google/fhir annotates them), evaluated on each
	// instance.
	constraints []string
	// codes are the allowed codes of a code bound to a required value set
	// (a specialised code message with an enum); nil for other types.
	codes map[string]bool
	// choiceRefTypes are, per choice suffix of type Reference, the
	// resource types the reference may point to.
	choiceRefTypes map[string][]string
}

// element is one element of a type.
type element struct {
	name      string
	list      bool
	typ       *typeInfo
	attr      bool // written as an XML attribute (Element.id, Extension.url)
	container bool // holds a resource (contained, Bundle.entry.resource …)
	// constraints are invariants the core definition puts on this element.
	constraints []string
	// required: the element's minimum cardinality is 1 in the base spec.
	required bool
	// refTypes are the resource types a Reference element may point to.
	refTypes []string
}

// Model is the element knowledge of one FHIR version.
//
// A resource type is built on its first use, not up front: a gateway uses a
// handful of the ~150 resource types of a version, and building all of
// them kept about 7 MiB of the heap live for nothing.
type Model struct {
	version Version
	// names are the descriptors of every resource type, by FHIR name.
	names map[string]protoreflect.MessageDescriptor
	// resources holds the built resource types: read without a lock,
	// replaced (copied, one more type) under buildMu.
	resources atomic.Pointer[map[string]*typeInfo]
	// buildMu guards types and the building of resource types.
	buildMu sync.Mutex
	types   map[protoreflect.FullName]*typeInfo

	// paths remembers element paths (Task.input.type) built by Invariants
	// for every request, up to maxPaths of them.
	pathMu sync.RWMutex
	paths  map[pathKey]string
}

type pathKey struct{ parent, name string }

const maxPaths = 10000

// childPath is parent + "." + name, remembered.
func (m *Model) childPath(parent, name string) string {
	k := pathKey{parent, name}
	m.pathMu.RLock()
	p, ok := m.paths[k]
	m.pathMu.RUnlock()
	if ok {
		return p
	}
	p = parent + "." + name
	m.pathMu.Lock()
	if m.paths == nil {
		m.paths = map[pathKey]string{}
	}
	if len(m.paths) < maxPaths {
		// Copies: the root's name is a substring of the request body,
		// which a remembered key would keep alive.
		m.paths[pathKey{strings.Clone(parent), strings.Clone(name)}] = p
	}
	m.pathMu.Unlock()
	return p
}

var (
	// models holds each version's model once built; a request reads it
	// without a lock (ModelFor is called per conversion and check).
	models   [3]atomic.Pointer[Model]
	modelsMu sync.Mutex // serialises building
)

// ModelFor returns the (cached) model of a version. Building it walks every
// resource descriptor once (a few milliseconds).
func ModelFor(v Version) *Model {
	if m := models[v].Load(); m != nil {
		return m
	}
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if m := models[v].Load(); m != nil {
		return m
	}
	m := &Model{version: v, names: map[string]protoreflect.MessageDescriptor{}, types: map[protoreflect.FullName]*typeInfo{}}
	m.resources.Store(&map[string]*typeInfo{})
	var cr protoreflect.MessageDescriptor
	if v == R4 {
		cr = (&r4.ContainedResource{}).ProtoReflect().Descriptor()
	} else {
		cr = (&r3.ContainedResource{}).ProtoReflect().Descriptor()
	}
	fs := cr.Fields()
	for i := 0; i < fs.Len(); i++ {
		md := fs.Get(i).Message()
		if md == nil {
			continue
		}
		m.names[fhirTypeName(md)] = md
	}
	models[v].Store(m)
	return m
}

// Resource returns the type of a resource name, or nil; the first call for
// a name builds it.
func (m *Model) Resource(name string) *typeInfo {
	if t, ok := (*m.resources.Load())[name]; ok {
		return t
	}
	md, ok := m.names[name]
	if !ok {
		return nil
	}
	m.buildMu.Lock()
	defer m.buildMu.Unlock()
	built := *m.resources.Load()
	if t, ok := built[name]; ok {
		return t // built by another caller meanwhile
	}
	t := m.typeOf(md)
	next := make(map[string]*typeInfo, len(built)+1)
	for k, v := range built {
		next[k] = v
	}
	// The model's own name, not the caller's: that may be a substring of
	// a request body, which the map would keep alive.
	next[t.name] = t
	m.resources.Store(&next)
	return t
}

// isResourceName reports whether name is a resource type of the version.
func (m *Model) isResourceName(name string) bool {
	_, ok := m.names[name]
	return ok
}

func structureURL(md protoreflect.MessageDescriptor) string {
	s, _ := proto.GetExtension(md.Options(), anpb.E_FhirStructureDefinitionUrl).(string)
	return s
}

func kindOf(md protoreflect.MessageDescriptor) anpb.StructureDefinitionKindValue {
	k, _ := proto.GetExtension(md.Options(), anpb.E_StructureDefinitionKind).(anpb.StructureDefinitionKindValue)
	return k
}

func isChoice(md protoreflect.MessageDescriptor) bool {
	b, _ := proto.GetExtension(md.Options(), anpb.E_IsChoiceType).(bool)
	return b
}

// fhirTypeName is the FHIR name of a message: the last segment of its
// StructureDefinition URL; specialised code enums have none and are code.
func fhirTypeName(md protoreflect.MessageDescriptor) string {
	if u := structureURL(md); u != "" {
		return u[strings.LastIndexByte(u, '/')+1:]
	}
	if kindOf(md) == anpb.StructureDefinitionKindValue_KIND_PRIMITIVE_TYPE {
		return "code"
	}
	return ""
}

func isContainer(md protoreflect.MessageDescriptor) bool {
	n := md.FullName()
	return n == "google.protobuf.Any" || strings.HasSuffix(string(n), ".ContainedResource")
}

func (m *Model) typeOf(md protoreflect.MessageDescriptor) *typeInfo {
	if t, ok := m.types[md.FullName()]; ok {
		return t
	}
	t := &typeInfo{name: fhirTypeName(md), byName: map[string]*element{}}
	m.types[md.FullName()] = t // before the fields: types refer to themselves (Extension)
	t.constraints, _ = proto.GetExtension(md.Options(), anpb.E_FhirPathMessageConstraint).([]string)
	switch kindOf(md) {
	case anpb.StructureDefinitionKindValue_KIND_RESOURCE:
		t.resource = true
	case anpb.StructureDefinitionKindValue_KIND_PRIMITIVE_TYPE:
		t.primitive = true
		switch t.name {
		case "boolean":
			t.kind = jsonBool
		case "integer", "unsignedInt", "positiveInt", "decimal", "integer64":
			t.kind = jsonNumber
		case "xhtml":
			t.xhtml = true
		}
	}
	fs := md.Fields()
	if t.primitive {
		if f := fs.ByName("value"); f != nil && f.Kind() == protoreflect.EnumKind {
			t.codes = enumCodes(f.Enum())
		}
	}
	if isChoice(md) {
		t.choices = map[string]*typeInfo{}
		t.choiceRefTypes = map[string][]string{}
		for i := 0; i < fs.Len(); i++ {
			f := fs.Get(i)
			if f.Message() == nil {
				continue
			}
			ct := m.typeOf(f.Message())
			suffix := upperFirst(ct.name)
			// Profiled types carry their base type's name in choice names
			// (doseQuantity, not doseSimpleQuantity).
			if suffix == "SimpleQuantity" || suffix == "MoneyQuantity" {
				suffix = "Quantity"
			}
			t.choices[suffix] = ct
			t.choiceOrder = append(t.choiceOrder, suffix)
			if refs, _ := proto.GetExtension(f.Options(), anpb.E_ValidReferenceType).([]string); len(refs) > 0 {
				t.choiceRefTypes[suffix] = refs
			}
		}
		return t
	}
	if t.name == "Reference" {
		m.referenceElements(t, md)
		return t
	}
	for i := 0; i < fs.Len(); i++ {
		f := fs.Get(i)
		if f.Message() == nil {
			continue // a primitive's own value field
		}
		e := &element{name: f.JSONName(), list: f.IsList()}
		e.constraints, _ = proto.GetExtension(f.Options(), anpb.E_FhirPathConstraint).([]string)
		req, _ := proto.GetExtension(f.Options(), anpb.E_ValidationRequirement).(anpb.Requirement)
		e.required = req == anpb.Requirement_REQUIRED_BY_FHIR
		e.refTypes, _ = proto.GetExtension(f.Options(), anpb.E_ValidReferenceType).([]string)
		if isContainer(f.Message()) {
			e.container = true
		} else {
			e.typ = m.typeOf(f.Message())
		}
		e.attr = (e.name == "id" && !t.resource) || (e.name == "url" && t.name == "Extension")
		t.elements = append(t.elements, e)
		t.byName[e.name] = e
	}
	return t
}

// referenceElements gives Reference its FHIR elements: id, extension,
// reference, (R4) type, identifier, display.
func (m *Model) referenceElements(t *typeInfo, md protoreflect.MessageDescriptor) {
	fs := md.Fields()
	get := func(name protoreflect.Name) *typeInfo {
		f := fs.ByName(name)
		if f == nil {
			return nil
		}
		return m.typeOf(f.Message())
	}
	add := func(name string, typ *typeInfo, list, attr bool) {
		if typ == nil {
			return
		}
		e := &element{name: name, typ: typ, list: list, attr: attr}
		t.elements = append(t.elements, e)
		t.byName[name] = e
	}
	add("id", get("id"), false, true)
	add("extension", get("extension"), true, false)
	add("reference", get("uri"), false, false)
	add("type", get("type"), false, false)
	add("identifier", get("identifier"), false, false)
	add("display", get("display"), false, false)
}

// enumCodes lists the FHIR codes of a code enum: the original code where
// google/fhir annotates one, else the enum name lower-cased with _ as -.
func enumCodes(ed protoreflect.EnumDescriptor) map[string]bool {
	codes := map[string]bool{}
	vs := ed.Values()
	for i := 0; i < vs.Len(); i++ {
		v := vs.Get(i)
		if v.Number() == 0 {
			continue // INVALID_UNINITIALIZED
		}
		code, _ := proto.GetExtension(v.Options(), anpb.E_FhirOriginalCode).(string)
		if code == "" {
			code = strings.ToLower(strings.ReplaceAll(string(v.Name()), "_", "-"))
		}
		codes[code] = true
	}
	return codes
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// choiceElement finds the element a name stands for in t: the element
// itself, or a choice element whose base name plus a type suffix equals
// name (valueString → value, String). It returns the element, the chosen
// type, and ok.
func (t *typeInfo) choiceElement(name string) (*element, *typeInfo, bool) {
	if e, ok := t.byName[name]; ok && e.typ != nil && e.typ.choices == nil {
		return e, e.typ, true
	} else if ok && e.container {
		return e, nil, true
	}
	for i := len(name) - 1; i > 0; i-- {
		c := name[i]
		if c < 'A' || c > 'Z' {
			continue
		}
		if e, ok := t.byName[name[:i]]; ok && e.typ != nil && e.typ.choices != nil {
			if ct, ok := e.typ.choices[name[i:]]; ok {
				return e, ct, true
			}
		}
	}
	return nil, nil, false
}

// IsList reports whether the element at a FHIR path (Task.identifier.system,
// Task.input.value[x]) repeats; ok is false when the path is not known.
func (m *Model) IsList(path string) (list, ok bool) {
	segs := strings.Split(path, ".")
	t := m.Resource(segs[0])
	if t == nil {
		return false, false
	}
	for i, seg := range segs[1:] {
		seg = strings.TrimSuffix(seg, "[x]")
		e := t.byName[seg]
		if e == nil {
			return false, false
		}
		if i == len(segs)-2 {
			return e.list, true
		}
		if e.typ == nil || e.typ.choices != nil {
			return false, false
		}
		t = e.typ
	}
	return false, false
}

// Ambiguous lists the element names of t that another element's name
// extends by a capitalised suffix (response / responseCode): FHIRPath
// engines that resolve choice types by suffix may read the longer one as
// the shorter one's choice.
func (t *typeInfo) ambiguous() []string {
	var out []string
	for _, a := range t.elements {
		for _, b := range t.elements {
			if len(b.name) > len(a.name) && strings.HasPrefix(b.name, a.name) && b.name[len(a.name)] >= 'A' && b.name[len(a.name)] <= 'Z' {
				out = append(out, a.name)
				break
			}
		}
	}
	return out
}

// Invariants calls visit once for every element path (without indexes,
// e.g. Encounter.period) present in a decoded resource whose type or
// element carries core invariants, with those invariants and the type's
// ambiguous element names (see ambiguous). Contained and
// nested resources are visited under their own type name, as the core
// invariants are written relative to the element.
func (m *Model) Invariants(resource map[string]any, visit func(path string, exprs, ambiguous []string)) {
	rt, _ := resource["resourceType"].(string)
	t := m.Resource(rt)
	if t == nil {
		return
	}
	type visited struct {
		path  string
		field bool // the element's own constraints, not its type's
	}
	seen := map[visited]bool{}
	var walk func(obj map[string]any, t *typeInfo, path string)
	walk = func(obj map[string]any, t *typeInfo, path string) {
		if len(t.constraints) > 0 && !seen[visited{path, false}] {
			seen[visited{path, false}] = true
			visit(path, t.constraints, t.ambiguous())
		}
		for key, val := range obj {
			if key == "resourceType" || strings.HasPrefix(key, "_") {
				continue
			}
			e, ct, ok := t.choiceElement(key)
			if !ok || e.container || ct == nil || ct.primitive {
				continue
			}
			p := m.childPath(path, e.name)
			if len(e.constraints) > 0 && !seen[visited{p, true}] {
				seen[visited{p, true}] = true
				visit(p, e.constraints, ct.ambiguous())
			}
			switch x := val.(type) {
			case map[string]any:
				walk(x, ct, p)
			case []any:
				for _, item := range x {
					if o, ok := item.(map[string]any); ok {
						walk(o, ct, p)
					}
				}
			}
		}
	}
	walk(resource, t, rt)
}
