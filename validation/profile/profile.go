// Package profile checks a resource against a StructureDefinition: element
// cardinality, fixed[x] and pattern[x] values, and slicing by value or
// pattern discriminators (open and closed). A profile is compiled once from
// its snapshot into an element tree; validating walks the resource's JSON
// along that tree and allocates only for the issues it finds.
//
// A profile without a snapshot is compiled from its differential: the
// differential's elements are the constraints, and the base definition's own
// (cardinality, types, codes) are those the base parser (jsonformat) has
// already enforced before any profile is checked. Parents a differential
// leaves out are unconstrained.
//
// FHIRPath invariants (ElementDefinition.constraint) are compiled at load
// with gofhir/fhirpath and evaluated on one parsed copy of the resource.
//
// Not yet here (next steps of the engine): reference targets, type and
// profile discriminators, constraints on slices.
package profile

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/fhirgate/fhirgate/validation/fhirxml"
	"github.com/fhirgate/fhirgate/validation/location"
)

// Element is one compiled ElementDefinition.
type Element struct {
	ID, Path, SliceName string
	Min                 int
	Max                 int // -1: unbounded
	// Fixed and Pattern are the decoded fixed[x] / pattern[x] values.
	Fixed, Pattern any
	Slicing        *Slicing
	Types          []string
	// Binding is a required binding's ValueSet URL ("" when none or not
	// required: only required bindings are enforced).
	Binding string
	// TargetProfiles are the allowed targets of a Reference.
	TargetProfiles []string
	// TypeProfiles are the profiles the element's type must conform to
	// (an extension slice's extension definition, a profiled Identifier).
	TypeProfiles []string

	children []*Element          // in snapshot order
	byName   map[string]*Element // child by name (value[x] for choices)
	slices   []*Element          // for a sliced element: its slices in order

	// Set when the element is attached, so that validating builds no
	// strings: key is its JSON name in the parent ("value[x]" for a
	// choice), extKey the name of its primitive extension ("_" + key),
	// exprName its name in a FHIRPath (no slice name, no "[x]").
	key, extKey, exprName string

	// wants caches, for a slice, the value each discriminator of its
	// parent's slicing compares with (slicePathValue), computed on first
	// use: it depends only on the loaded profiles.
	wantsOnce sync.Once
	wants     []want
}

// want is a discriminator's value for one slice; ok false when the slice
// fixes nothing there (the slice cannot be told apart).
type want struct {
	value any
	ok    bool
}

// Slicing is ElementDefinition.slicing.
type Slicing struct {
	Discriminators []Discriminator
	Rules          string // open, closed, openAtEnd
}

// Discriminator is one slicing discriminator.
type Discriminator struct {
	Type string // value, pattern (exists, type, profile: not supported yet)
	Path string
}

// Profile is a compiled StructureDefinition.
type Profile struct {
	URL     string
	Version string
	Type    string
	Root    *Element
	// Warnings lists what the profile uses that this engine does not
	// check yet; validating reports them once as warnings.
	Warnings []string
	// resolve finds another profile by canonical URL (set by a Package);
	// nil when the profile stands alone.
	resolve func(url string) *Profile
	// valueSet expands a ValueSet by URL (set by a Package).
	valueSet func(url string) *valueSet
	// invariants are the compiled FHIRPath constraints.
	invariants []invariant
}

type rawElement struct {
	ID        string `json:"id"`
	Path      string `json:"path"`
	SliceName string `json:"sliceName"`
	Min       *int   `json:"min"`
	Max       string `json:"max"`
	Slicing   *struct {
		Discriminator []Discriminator `json:"discriminator"`
		Rules         string          `json:"rules"`
	} `json:"slicing"`
	Type []struct {
		Code          string   `json:"code"`
		Profile       []string `json:"profile"`
		TargetProfile []string `json:"targetProfile"`
	} `json:"type"`
	Binding *struct {
		Strength string `json:"strength"`
		ValueSet string `json:"valueSet"`
	} `json:"binding"`
	Constraint []rawConstraint `json:"constraint"`
}

// Load compiles a StructureDefinition (JSON) with a snapshot.
func Load(data []byte) (*Profile, error) {
	var sd struct {
		ResourceType string `json:"resourceType"`
		URL          string `json:"url"`
		Version      string `json:"version"`
		Type         string `json:"type"`
		FHIRVersion  string `json:"fhirVersion"`
		Snapshot     *struct {
			Element []json.RawMessage `json:"element"`
		} `json:"snapshot"`
		Differential *struct {
			Element []json.RawMessage `json:"element"`
		} `json:"differential"`
	}
	if err := json.Unmarshal(data, &sd); err != nil {
		return nil, fmt.Errorf("StructureDefinition: %w", err)
	}
	if sd.ResourceType != "StructureDefinition" {
		return nil, fmt.Errorf("not a StructureDefinition")
	}
	elements := []json.RawMessage(nil)
	differential := false
	switch {
	case sd.Snapshot != nil && len(sd.Snapshot.Element) > 0:
		elements = sd.Snapshot.Element
	case sd.Differential != nil && len(sd.Differential.Element) > 0:
		elements, differential = sd.Differential.Element, true
	default:
		return nil, fmt.Errorf("StructureDefinition %s has neither snapshot nor differential", sd.URL)
	}
	p := &Profile{URL: sd.URL, Version: sd.Version, Type: sd.Type}
	byID := map[string]*Element{}
	if differential {
		root := &Element{ID: sd.Type, Path: sd.Type, Max: -1, byName: map[string]*Element{}}
		p.Root, byID[sd.Type] = root, root
	}
	for i, raw := range elements {
		var re rawElement
		if err := json.Unmarshal(raw, &re); err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
		e := &Element{ID: re.ID, Path: re.Path, SliceName: re.SliceName, Max: -1, byName: map[string]*Element{}}
		if e.ID == "" {
			e.ID = e.Path
		}
		if re.Min != nil {
			e.Min = *re.Min
		}
		if re.Max == "" && differential {
			// Inherited from the base definition: the base model knows.
			if list, ok := baseModel(sd.FHIRVersion).IsList(e.Path); ok && !list {
				e.Max = 1
			}
		} else if re.Max != "" && re.Max != "*" {
			n, err := strconv.Atoi(re.Max)
			if err != nil {
				return nil, fmt.Errorf("element %s: max %q", e.ID, re.Max)
			}
			e.Max = n
		}
		for _, t := range re.Type {
			e.Types = append(e.Types, t.Code)
			e.TypeProfiles = append(e.TypeProfiles, t.Profile...)
			e.TargetProfiles = append(e.TargetProfiles, t.TargetProfile...)
		}
		p.compileInvariants(e, re.Constraint)
		if re.Binding != nil && re.Binding.Strength == "required" {
			e.Binding = re.Binding.ValueSet
		}
		if re.Slicing != nil {
			e.Slicing = &Slicing{Discriminators: re.Slicing.Discriminator, Rules: re.Slicing.Rules}
			for _, d := range re.Slicing.Discriminator {
				if d.Type != "value" && d.Type != "pattern" {
					p.Warnings = append(p.Warnings, fmt.Sprintf("%s: %s discriminators are not checked yet", e.ID, d.Type))
				}
			}
		}
		var all map[string]json.RawMessage
		json.Unmarshal(raw, &all)
		for k, v := range all {
			switch {
			case strings.HasPrefix(k, "fixed"):
				json.Unmarshal(v, &e.Fixed)
			case strings.HasPrefix(k, "pattern"):
				json.Unmarshal(v, &e.Pattern)
			}
		}
		if e.ID == p.Type || (i == 0 && !differential) {
			if differential && p.Root != nil {
				e.byName, e.children, e.slices = p.Root.byName, p.Root.children, p.Root.slices
			}
			p.Root = e
			byID[e.ID] = e
			continue
		}
		if differential {
			implicitParents(byID, e.ID)
		}
		if err := attach(byID, e); err != nil {
			return nil, err
		}
		byID[e.ID] = e
	}
	return p, nil
}

// baseModel is the element model of a profile's FHIR version (R4 unless
// the profile says 3.x).
func baseModel(fhirVersion string) *fhirxml.Model {
	if strings.HasPrefix(fhirVersion, "3.") {
		return fhirxml.ModelFor(fhirxml.STU3)
	}
	return fhirxml.ModelFor(fhirxml.R4)
}

// implicitParents creates the unconstrained ancestors a differential leaves
// out (Task.requester for Task.requester.agent).
func implicitParents(byID map[string]*Element, id string) {
	dot := strings.LastIndexByte(id, '.')
	if dot < 0 {
		return
	}
	parent := id[:dot]
	if _, ok := byID[parent]; ok {
		return
	}
	implicitParents(byID, parent)
	path := parent
	last := parent[strings.LastIndexByte(parent, '.')+1:]
	if i := strings.IndexByte(last, ':'); i >= 0 {
		path = parent[:len(parent)-len(last)+i]
	}
	e := &Element{ID: parent, Path: path, Max: -1, byName: map[string]*Element{}}
	attach(byID, e)
	byID[parent] = e
}

// attach links e under its parent by id: "Task.extension:flowType" is a
// slice of "Task.extension"; "Task.extension:flowType.url" a child of the
// slice.
func attach(byID map[string]*Element, e *Element) error {
	dot := strings.LastIndexByte(e.ID, '.')
	if dot < 0 {
		return fmt.Errorf("element id %q has no parent", e.ID)
	}
	last := e.ID[dot+1:]
	e.key, e.exprName = last, last
	if colon := strings.IndexByte(last, ':'); colon >= 0 {
		e.exprName = last[:colon]
	}
	e.exprName = strings.TrimSuffix(e.exprName, "[x]")
	e.extKey = "_" + e.key
	if colon := strings.IndexByte(last, ':'); colon >= 0 {
		base := byID[e.ID[:dot+1+colon]]
		if base == nil {
			return fmt.Errorf("slice %s has no sliced element", e.ID)
		}
		base.slices = append(base.slices, e)
		return nil
	}
	parent := byID[e.ID[:dot]]
	if parent == nil {
		return fmt.Errorf("element %s has no parent element", e.ID)
	}
	parent.children = append(parent.children, e)
	parent.byName[last] = e
	return nil
}

// Issue is one finding; the validation package turns it into its Issue.
type Issue struct {
	Severity, Code, Text, Expression string
}

// Validate checks a resource, decoded from JSON (UseNumber recommended),
// against the profile. Issues are in document order.
func (p *Profile) Validate(resource map[string]any) []Issue {
	v := &validator{resolve: p.resolve, valueSet: p.valueSet}
	v.steps = v.stepBuf[:0]
	v.push(p.Type, -1)
	for _, w := range p.Warnings {
		v.issues = append(v.issues, Issue{Severity: "warning", Code: "not-supported", Text: w, Expression: p.Type})
	}
	if rt, _ := resource["resourceType"].(string); rt != p.Type {
		v.add("error", "invalid", p.Type, "resource type %s does not match the profile's type %s", rt, p.Type)
		return v.issues
	}
	v.object(resource, p.Root)
	v.checkInvariants(p, resource)
	return v.issues
}

type validator struct {
	issues   []Issue
	resolve  func(string) *Profile
	valueSet func(string) *valueSet
	depth    int
	missing  map[string]bool // type profiles already reported unavailable

	// steps is the FHIRPath of the value being checked, one step per
	// level; it becomes a string only when an issue is reported there.
	steps   []location.Step
	stepBuf [16]location.Step
	// vals and names are a stack of found values shared by every level:
	// a level appends its values, the levels below append after them,
	// and each truncates back when done.
	vals  []any
	names []string
}

// step is one level of a path: name, and the index when the element
// repeats (-1: single-valued, no index).
func (v *validator) push(name string, index int) {
	v.steps = append(v.steps, location.Step{Name: name, Index: index})
}
func (v *validator) pop() { v.steps = v.steps[:len(v.steps)-1] }

// here is the FHIRPath of the current value, with "."+child appended when
// child is not empty.
func (v *validator) here(child string) string { return location.String("", v.steps, child) }

// typeProfile returns the first resolvable profile of def's type.
func (v *validator) typeProfile(def *Element) *Profile {
	if v.resolve == nil {
		return nil
	}
	for _, u := range def.TypeProfiles {
		if p := v.resolve(u); p != nil {
			return p
		}
	}
	return nil
}

func (v *validator) add(severity, code, expr, format string, args ...any) {
	v.issues = append(v.issues, Issue{Severity: severity, Code: code, Text: fmt.Sprintf(format, args...), Expression: expr})
}

// object checks the children of one JSON object against def.
func (v *validator) object(obj map[string]any, def *Element) {
	// A definition often lists more elements than an object holds, and
	// few objects carry primitive extensions (_name): without any, each
	// element is one lookup instead of two.
	skipExt := len(def.children) > len(obj) && !hasExtensionKeys(obj)
	for _, c := range def.children {
		start := len(v.vals)
		extKey := c.extKey
		if skipExt {
			extKey = ""
		}
		v.vals, v.names = appendValues(v.vals, v.names, obj, c.key, extKey)
		v.element(c, v.vals[start:], v.names[start:])
		v.vals, v.names = v.vals[:start], v.names[:start]
	}
}

// element checks the values found for one element definition.
func (v *validator) element(def *Element, vals []any, names []string) {
	if len(vals) < def.Min {
		v.add("error", "required", v.here(def.exprName), "%s: minimum required = %d, but only found %d", elementLabel(def), def.Min, len(vals))
	}
	if def.Max >= 0 && len(vals) > def.Max {
		v.add("error", "structure", v.here(def.exprName), "%s: maximum allowed = %d, but found %d", elementLabel(def), def.Max, len(vals))
	}
	if def.Slicing != nil && len(def.slices) > 0 {
		v.sliced(def, vals, names)
		return
	}
	for i, val := range vals {
		v.push(names[i], index(i, def.Max))
		v.value(def, val)
		v.pop()
	}
}

func elementLabel(def *Element) string {
	if def.SliceName != "" {
		return def.Path + ":" + def.SliceName
	}
	return def.Path
}

// index is the FHIRPath index of the i-th value: single-valued elements
// (max 1) carry none (-1).
func index(i, max int) int {
	if max == 1 {
		return -1
	}
	return i
}

// value checks one value: fixed, pattern, then its children.
func (v *validator) value(def *Element, val any) {
	if def.Fixed != nil && !equal(val, def.Fixed) {
		v.add("error", "value", v.here(""), "%s: value does not equal the fixed value %s", elementLabel(def), compact(def.Fixed))
	}
	if def.Pattern != nil && !matches(val, def.Pattern) {
		v.add("error", "value", v.here(""), "%s: value does not match the pattern %s", elementLabel(def), compact(def.Pattern))
	}
	if def.Binding != "" {
		v.binding(def, val)
	}
	if len(def.TargetProfiles) > 0 {
		v.referenceTarget(def, val)
	}
	obj, ok := val.(map[string]any)
	if !ok {
		return
	}
	if len(def.children) > 0 {
		v.object(obj, def)
		return
	}
	// No constraints below this element here: its type's profile (an
	// extension definition, a profiled datatype) may have some. Depth is
	// bounded against profiles that refer to each other. A profile that is
	// not loaded is reported once, as a warning: the instance may well be
	// valid, but this gateway cannot tell.
	if tp := v.typeProfile(def); tp != nil && v.depth < 8 {
		v.depth++
		v.object(obj, tp.Root)
		v.depth--
	} else if tp == nil && len(def.TypeProfiles) > 0 {
		u := def.TypeProfiles[0]
		if v.missing == nil {
			v.missing = map[string]bool{}
		}
		if !v.missing[u] {
			v.missing[u] = true
			v.add("warning", "not-supported", v.here(""), "%s: profile %s is not available; the element was not checked against it", elementLabel(def), u)
		}
	}
}

// binding checks a required binding: a code must be in the ValueSet, a
// Coding's system and code, a CodeableConcept at least one of its codings.
// A ValueSet the package cannot expand is a warning, never a silent pass.
func (v *validator) binding(def *Element, val any) {
	var vs *valueSet
	if v.valueSet != nil {
		vs = v.valueSet(def.Binding)
	}
	if vs == nil {
		// A bare code bound to a core ValueSet is an enum in the
		// google/fhir model: the base parser has already refused any code
		// outside it, so there is nothing left to warn about.
		if _, isCode := val.(string); isCode && strings.HasPrefix(def.Binding, "http://hl7.org/fhir/ValueSet/") {
			return
		}
		v.add("warning", "not-supported", v.here(""), "%s: ValueSet %s is not available; the required binding was not checked", elementLabel(def), def.Binding)
		return
	}
	type coding struct{ system, code string }
	var codings []coding
	switch x := val.(type) {
	case string:
		codings = append(codings, coding{"", x})
	case map[string]any:
		if arr, ok := x["coding"].([]any); ok {
			for _, c := range arr {
				if m, ok := c.(map[string]any); ok {
					s, _ := m["system"].(string)
					cd, _ := m["code"].(string)
					codings = append(codings, coding{s, cd})
				}
			}
		} else if cd, ok := x["code"].(string); ok {
			s, _ := x["system"].(string)
			codings = append(codings, coding{s, cd})
		} else {
			return // a type without a code (e.g. Quantity without code)
		}
	default:
		return
	}
	for _, c := range codings {
		if c.code != "" && vs.has(c.system, c.code) {
			return
		}
	}
	shown := ""
	if len(codings) > 0 {
		shown = codings[0].code
		if codings[0].system != "" {
			shown = codings[0].system + "#" + shown
		}
	}
	v.add("error", "code-invalid", v.here(""), "%s: the code %q is not in the ValueSet %s (required binding)", elementLabel(def), shown, def.Binding)
}

// referenceTarget checks that a literal reference ("Type/id", or an
// absolute URL ending so) points at a resource type the element allows.
// Contained (#), urn: and identifier-only references cannot be judged from
// the string and are left alone. A core target profile names its type in
// its last URL segment; another profile must be loaded to know its type,
// and one that is not leaves the reference unchecked.
func (v *validator) referenceTarget(def *Element, val any) {
	obj, ok := val.(map[string]any)
	if !ok {
		return
	}
	ref, _ := obj["reference"].(string)
	if ref == "" || strings.HasPrefix(ref, "#") || strings.HasPrefix(ref, "urn:") {
		return
	}
	segs := strings.Split(strings.SplitN(ref, "?", 2)[0], "/")
	if len(segs) >= 4 && segs[len(segs)-2] == "_history" {
		segs = segs[:len(segs)-2]
	}
	if len(segs) < 2 {
		return
	}
	typ := segs[len(segs)-2]
	var allowed []string
	for _, tp := range def.TargetProfiles {
		name := tp[strings.LastIndexByte(tp, '/')+1:]
		if p := v.resolveProfile(tp); p != nil {
			name = p.Type
		} else if !strings.HasPrefix(tp, "http://hl7.org/fhir/StructureDefinition/") {
			return // a profile not loaded: its resource type is unknown here
		}
		if name == typ || name == "Resource" {
			return
		}
		allowed = append(allowed, name)
	}
	v.add("error", "invalid", v.here("reference"), "%s: a reference to %s is not allowed here (allowed: %s)", elementLabel(def), typ, strings.Join(allowed, ", "))
}

func (v *validator) resolveProfile(url string) *Profile {
	if v.resolve == nil {
		return nil
	}
	return v.resolve(url)
}

// sliced assigns each value to the first slice whose discriminators it
// meets, checks each slice's cardinality and content, and refuses values
// no slice takes when the slicing is closed.
func (v *validator) sliced(def *Element, vals []any, names []string) {
	counts := make([]int, len(def.slices))
	// A slice whose discriminating value cannot be found (it lives in a
	// profile that is not loaded) can neither take values nor be proven
	// empty: what depends on it becomes a warning.
	unknown := ""
	for _, s := range def.slices {
		if !v.determinable(def.Slicing, s) {
			unknown = elementLabel(s)
			break
		}
	}
	for i, val := range vals {
		v.push(names[i], index(i, def.Max))
		matched := false
		for si, s := range def.slices {
			if v.discriminate(def.Slicing, s, val) {
				counts[si]++
				v.value(s, val)
				matched = true
				break
			}
		}
		if !matched {
			if def.Slicing.Rules == "closed" && unknown != "" {
				v.add("warning", "not-supported", v.here(""), "%s: this element matches no slice that can be checked here (the discriminator of %s is in a profile that is not available)", def.Path, unknown)
			} else if def.Slicing.Rules == "closed" {
				v.add("error", "structure", v.here(""), "%s: this element does not match any known slice of the closed slicing", def.Path)
			} else {
				v.value(def, val)
			}
		}
		v.pop()
	}
	for si, s := range def.slices {
		if counts[si] < s.Min && !v.determinable(def.Slicing, s) {
			v.add("warning", "not-supported", v.here(def.exprName), "%s: minimum %d not checked: its discriminator is in a profile that is not available", elementLabel(s), s.Min)
			continue
		}
		if counts[si] < s.Min {
			v.add("error", "required", v.here(def.exprName), "%s: minimum required = %d, but only found %d", elementLabel(s), s.Min, counts[si])
		}
		if s.Max >= 0 && counts[si] > s.Max {
			v.add("error", "structure", v.here(def.exprName), "%s: maximum allowed = %d, but found %d", elementLabel(s), s.Max, counts[si])
		}
	}
}

// discriminate reports whether val meets every value/pattern discriminator
// of slice s. A slice that fixes nothing at a discriminator's path cannot
// be told apart and takes nothing.
func (v *validator) discriminate(sl *Slicing, s *Element, val any) bool {
	wants := v.wants(sl, s)
	for i, d := range sl.Discriminators {
		if d.Type != "value" && d.Type != "pattern" {
			continue
		}
		w := wants[i]
		if !w.ok {
			return false
		}
		hit := anyValueAt(val, d.Path, func(g any) bool {
			return (d.Type == "value" && equal(g, w.value)) || (d.Type == "pattern" && matches(g, w.value)) || (d.Type == "value" && matches(g, w.value))
		})
		if !hit {
			return false
		}
	}
	return true
}

// wants returns the cached discriminator values of slice s.
func (v *validator) wants(sl *Slicing, s *Element) []want {
	s.wantsOnce.Do(func() {
		s.wants = make([]want, len(sl.Discriminators))
		for i, d := range sl.Discriminators {
			s.wants[i].value, s.wants[i].ok = v.slicePathValue(s, d.Path)
		}
	})
	return s.wants
}

// anyValueAt reports whether match holds for any value at a dotted path in
// an instance (arrays flattened), as instancePathValues would list them,
// without collecting them.
func anyValueAt(val any, path string, match func(any) bool) bool {
	if path == "$this" {
		return match(val)
	}
	return anyAt(val, path, match)
}

// anyAt walks one segment of path (at least one, possibly empty) down
// from val.
func anyAt(val any, path string, match func(any) bool) bool {
	seg, rest, more := strings.Cut(path, ".")
	obj, ok := val.(map[string]any)
	if !ok {
		return false
	}
	next := func(x any) bool {
		if !more {
			return match(x)
		}
		return anyAt(x, rest, match)
	}
	if strings.HasSuffix(seg, "[x]") {
		vals, _ := values(obj, seg)
		for _, x := range vals {
			if x != nil && next(x) {
				return true
			}
		}
		return false
	}
	switch x := obj[seg].(type) {
	case []any:
		for _, item := range x {
			if item != nil && next(item) {
				return true
			}
		}
		return false
	case nil:
		return false // absent, or only a primitive extension: no value
	default:
		return next(x)
	}
}

// determinable reports whether every value/pattern discriminator of a
// slice has a value to compare with.
func (v *validator) determinable(sl *Slicing, s *Element) bool {
	wants := v.wants(sl, s)
	for i, d := range sl.Discriminators {
		if d.Type != "value" && d.Type != "pattern" {
			continue
		}
		if !wants[i].ok {
			return false
		}
	}
	return true
}

// slicePathValue finds the fixed or pattern value a slice sets at a
// discriminator path ($this, url, type.coding.code …), walking down the
// slice's element definitions.
func (v *validator) slicePathValue(s *Element, path string) (any, bool) {
	e := s
	if path != "$this" {
		segs := strings.Split(path, ".")
		for i, seg := range segs {
			c := e.byName[seg]
			if c == nil {
				// A pattern on an ancestor may fix the value.
				if e.Pattern != nil {
					return sub(e.Pattern, segs[i:]), true
				}
				// The element's type profile may fix it (a profiled
				// Identifier's system).
				if tp := v.typeProfile(e); tp != nil && tp.Root != e {
					if val, ok := (&validator{resolve: v.resolve}).slicePathValue(tp.Root, strings.Join(segs[i:], ".")); ok {
						return val, true
					}
				}
				// An extension's url is its definition's canonical URL.
				if strings.Join(segs[i:], ".") == "url" && len(e.TypeProfiles) > 0 && len(e.Types) > 0 && e.Types[0] == "Extension" {
					return e.TypeProfiles[0], true
				}
				return nil, false
			}
			e = c
		}
	}
	if e.Fixed != nil {
		return e.Fixed, true
	}
	if e.Pattern != nil {
		return e.Pattern, true
	}
	return nil, false
}

func sub(v any, segs []string) any {
	for _, s := range segs {
		switch x := v.(type) {
		case map[string]any:
			v = x[s]
		case []any:
			if len(x) == 0 {
				return nil
			}
			v = x[0]
			if m, ok := v.(map[string]any); ok {
				v = m[s]
			}
		default:
			return nil
		}
	}
	return v
}

// instancePathValues collects the values at a dotted path in an instance,
// flattening arrays.
func instancePathValues(val any, path string) []any {
	cur := []any{val}
	if path == "$this" {
		return cur
	}
	for _, seg := range strings.Split(path, ".") {
		var next []any
		for _, c := range cur {
			obj, ok := c.(map[string]any)
			if !ok {
				continue
			}
			vals, _ := values(obj, seg)
			next = append(next, vals...)
		}
		cur = next
	}
	return cur
}

// values returns the values of element name in obj (arrays flattened), with
// the concrete JSON name of each (valueString for value[x]). A primitive
// present only through its _name (extensions) counts as present.
func values(obj map[string]any, name string) ([]any, []string) {
	return appendValues(nil, nil, obj, name, "_"+name)
}

// appendValues appends the values of element key to out and their JSON
// names to names (see values); extKey is "_"+key, or "" when obj is known
// to hold no primitive extension.
func appendValues(out []any, names []string, obj map[string]any, key, extKey string) ([]any, []string) {
	if base, ok := strings.CutSuffix(key, "[x]"); ok {
		for k, val := range obj {
			if len(k) > len(base) && strings.HasPrefix(k, base) && k[len(base)] >= 'A' && k[len(base)] <= 'Z' {
				out, names = appendFound(out, names, k, val, obj["_"+k])
			}
		}
		return out, names
	}
	var ext any
	if extKey != "" {
		ext = obj[extKey]
	}
	return appendFound(out, names, key, obj[key], ext)
}

// hasExtensionKeys reports whether obj holds a primitive's extension
// (a name beginning with '_').
func hasExtensionKeys(obj map[string]any) bool {
	for k := range obj {
		if strings.HasPrefix(k, "_") {
			return true
		}
	}
	return false
}

// appendFound appends the value(s) v of JSON name key, with ext its
// primitive extension(s).
func appendFound(out []any, names []string, key string, v, ext any) ([]any, []string) {
	switch x := v.(type) {
	case []any:
		xe, _ := ext.([]any)
		for i, item := range x {
			if item == nil && (i >= len(xe) || xe[i] == nil) {
				continue
			}
			out = append(out, item)
			names = append(names, key)
		}
		if len(x) == 0 {
			for _, item := range xe {
				if item != nil {
					out = append(out, nil)
					names = append(names, key)
				}
			}
		}
	case nil:
		if ext != nil {
			if xe, ok := ext.([]any); ok {
				for _, item := range xe {
					if item != nil {
						out = append(out, nil)
						names = append(names, key)
					}
				}
			} else {
				out = append(out, nil)
				names = append(names, key)
			}
		}
	default:
		out = append(out, v)
		names = append(names, key)
	}
	return out, names
}

// equal is deep equality of decoded JSON; numbers compare by value.
func equal(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			if !equal(xv, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return scalar(a) == scalar(b)
}

// matches is FHIR pattern matching: every property of the pattern must be
// present with a matching value; every item of a pattern array must match
// some item of the instance array.
func matches(val, pattern any) bool {
	switch p := pattern.(type) {
	case map[string]any:
		obj, ok := val.(map[string]any)
		if !ok {
			return false
		}
		for k, pv := range p {
			if !matches(obj[k], pv) {
				return false
			}
		}
		return true
	case []any:
		arr, ok := val.([]any)
		if !ok {
			return false
		}
		for _, pi := range p {
			hit := false
			for _, ai := range arr {
				if matches(ai, pi) {
					hit = true
					break
				}
			}
			if !hit {
				return false
			}
		}
		return true
	}
	return val != nil && scalar(val) == scalar(pattern)
}

func scalar(v any) string {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case nil:
		return "\x00null"
	case string:
		return x // as fmt.Sprint writes it, without its allocation
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 120 {
		return string(b[:117]) + "..."
	}
	return string(b)
}
