package fhirxml

import (
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Accepts reports that a decoded FHIR JSON resource (numbers as
// json.Number) certainly passes google/fhir's jsonformat unmarshalling and
// base validation: every property known, of the right shape and
// cardinality, every required element present, every primitive of its
// type, every code of a required binding in its value set, every
// reference to an allowed resource type.
//
// It is exact or declines: false means "not known to be valid", never
// "invalid". Whatever it is not sure to judge as jsonformat does —
// primitive extensions (_x), narrative XHTML,
// decimals, base64, absolute or fragment references, unusual date forms —
// makes it decline, and the caller takes jsonformat's path, which then
// also produces the precise issues. The hot path of valid requests skips
// jsonformat's proto building; the differential tests and fuzz target in
// package validation hold Accepts to never accept what jsonformat
// refuses.
func (m *Model) Accepts(res map[string]any) bool {
	ok, _ := m.AcceptsHolding(res)
	return ok
}

// AcceptsHolding is Accepts that also reports whether the accepted
// resource may hold resources of its own: holds is false only when no
// object below the root has a string "resourceType" — no resource
// container (contained, Bundle.entry.resource,
// Parameters.parameter.resource) was met, and no element of that name
// either (ExampleScenario.instance has one). Every object below the root
// of an accepted resource was matched key by key, so nothing escapes the
// count; a walk looking for nested resources can then be skipped. The
// fast-path agreement tests hold it to that walk.
func (m *Model) AcceptsHolding(res map[string]any) (ok, holds bool) {
	rt, _ := res["resourceType"].(string)
	t := m.Resource(rt)
	if t == nil {
		return false, false
	}
	ok = m.acceptObject(t, res, true, &holds)
	return ok, ok && holds
}

// acceptObject accepts obj as a value of type t (root: the resource
// itself, whose resourceType is not an element); holds is set when a
// resource container or a string element named resourceType is met.
func (m *Model) acceptObject(t *typeInfo, obj map[string]any, root bool, holds *bool) bool {
	if len(obj) == 0 {
		return false
	}
	// A choice element takes one type: valueString beside valueUrl is two
	// values for one element. The few choices an object has are kept on
	// the stack; more than fit are declined.
	var choices [4]*element
	nChoices := 0
	// Required elements are counted as they are met: each key is one
	// element (a choice under one type only), so all are present when the
	// count reaches the type's.
	requiredSeen := 0
	for k, v := range obj {
		if k == "resourceType" {
			if root {
				continue
			}
			if _, isString := v.(string); isString {
				*holds = true // an element of that name (ExampleScenario.instance)
			}
		}
		if k == "" || k[0] == '_' {
			return false
		}
		e, typ, ok := t.choiceElement(k)
		if ok && e.container {
			// A nested resource (Bundle.entry.resource, contained,
			// Parameters.parameter.resource) is accepted as a resource of
			// its own type.
			if e.required {
				requiredSeen++
			}
			*holds = true
			if !m.acceptContained(v, e.list) {
				return false
			}
			continue
		}
		if !ok || typ == nil {
			return false
		}
		if e.required {
			requiredSeen++
		}
		refTypes := e.refTypes
		if e.typ.choices != nil {
			refTypes = e.typ.choiceRefTypes[k[len(e.name):]]
			if nChoices == len(choices) || slices.Contains(choices[:nChoices], e) {
				return false
			}
			choices[nChoices] = e
			nChoices++
		}
		if e.list {
			arr, ok := v.([]any)
			if !ok || len(arr) == 0 {
				return false
			}
			for _, item := range arr {
				if !m.acceptValue(typ, item, refTypes, holds) {
					return false
				}
			}
		} else if !m.acceptValue(typ, v, refTypes, holds) {
			return false
		}
	}
	for _, e := range t.elements {
		if e.required {
			requiredSeen--
		}
	}
	return requiredSeen == 0
}

// acceptContained accepts the value of a resource container: one
// resource, or a non-empty list of them.
func (m *Model) acceptContained(v any, list bool) bool {
	if !list {
		obj, ok := v.(map[string]any)
		return ok && m.Accepts(obj)
	}
	arr, ok := v.([]any)
	if !ok || len(arr) == 0 {
		return false
	}
	for _, item := range arr {
		obj, ok := item.(map[string]any)
		if !ok || !m.Accepts(obj) {
			return false
		}
	}
	return true
}

// simpleURI reports whether s is a URI of the plain forms FHIR systems
// and references use — urn:…, or http(s)://host/path — made of characters
// that url.Parse takes in every position (no %, no port, no query): it
// parses for certain. FuzzSimpleURIParses holds it to url.Parse.
func simpleURI(s string) bool {
	if rest, ok := strings.CutPrefix(s, "urn:"); ok {
		return rest != "" && allBytes(rest, func(c byte) bool { return isAlnum(c) || c == '.' || c == ':' || c == '-' })
	}
	rest, ok := strings.CutPrefix(s, "https://")
	if !ok {
		if rest, ok = strings.CutPrefix(s, "http://"); !ok {
			return false
		}
	}
	host, path, _ := strings.Cut(rest, "/")
	return host != "" && allBytes(host, func(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }) &&
		allBytes(path, func(c byte) bool { return isAlnum(c) || c == '/' || c == '.' || c == '-' || c == '_' || c == '~' })
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func allBytes(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func (m *Model) acceptValue(t *typeInfo, v any, refTypes []string, holds *bool) bool {
	switch {
	case t.primitive:
		return acceptPrimitive(t, v)
	case t.xhtml:
		return false
	}
	obj, ok := v.(map[string]any)
	if !ok || !m.acceptObject(t, obj, false, holds) {
		return false
	}
	if t.name == "Reference" {
		if ref, has := obj["reference"]; has {
			return m.acceptReference(ref.(string), refTypes) // a string: checked as the element's primitive
		}
	}
	return true
}

// acceptReference takes a relative literal reference Type/id to a known
// resource type the element allows (an element without the annotation
// allows any, as in jsonformat). Absolute URLs, fragments and versioned
// references are left to jsonformat.
func (m *Model) acceptReference(ref string, allowed []string) bool {
	typ, id, ok := strings.Cut(ref, "/")
	if !ok || !isTypeName(typ) || !isID(id) || !m.isResourceName(typ) {
		return false
	}
	if len(allowed) == 0 {
		return true
	}
	for _, a := range allowed {
		if a == typ || a == "Resource" {
			return true
		}
	}
	return false
}

var (
	oidPattern  = regexp.MustCompile(`^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$`)
	uuidPattern = regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	// The date and time forms taken; others (leap seconds, years below
	// 1000, fractions beyond nanoseconds) are left to jsonformat.
	datePattern = regexp.MustCompile(`^[1-9][0-9]{3}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$`)
	timePattern = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?$`)
)

func acceptPrimitive(t *typeInfo, v any) bool {
	switch t.name {
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer", "unsignedInt", "positiveInt":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		i, err := strconv.ParseInt(string(n), 10, 32)
		return err == nil && (t.name != "unsignedInt" || i >= 0) && (t.name != "positiveInt" || i >= 1)
	}
	s, ok := v.(string)
	if !ok || !plainText(s) {
		return false
	}
	switch t.name {
	case "string", "markdown":
		return true
	case "code":
		if t.codes != nil {
			return t.codes[s]
		}
		return isCode(s)
	case "id":
		return isID(s)
	case "uri", "url", "canonical":
		// jsonformat parses these (a bad %-escape is refused); the usual
		// forms are known to parse without parsing them.
		if !noSpace(s) {
			return false
		}
		if simpleURI(s) {
			return true
		}
		_, err := url.Parse(s)
		return err == nil
	case "oid":
		return oidPattern.MatchString(s)
	case "uuid":
		return uuidPattern.MatchString(s)
	case "date":
		return validDate(s)
	case "dateTime":
		if isDate(s) {
			return validDate(s)
		}
		return validDateTime(s)
	case "instant":
		return validDateTime(s)
	case "time":
		return timePattern.MatchString(s)
	}
	return false // decimal, integer64, base64Binary, xhtml …
}

// plainText is a string with something besides whitespace and no control
// character but tab, CR and LF.
func plainText(s string) bool {
	// One pass for ASCII text (nearly every value): no control character,
	// something besides ASCII whitespace.
	visible := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return plainTextUnicode(s)
		}
		if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f {
			return false
		}
		if !isSpace(c) {
			visible = true
		}
	}
	return visible
}

// plainTextUnicode is plainText for text beyond ASCII: valid UTF-8
// without U+FFFD, not all Unicode whitespace.
func plainTextUnicode(s string) bool {
	if !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) || strings.TrimSpace(s) == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f {
			return false
		}
	}
	return true
}

func validDate(s string) bool {
	if !isDate(s) {
		return false
	}
	if len(s) == 10 {
		_, err := time.Parse("2006-01-02", s)
		return err == nil
	}
	return true
}

func validDateTime(s string) bool {
	if !isFullDateTime(s) {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// The checks below are the regular expressions they replace, by hand (the
// hot path runs them for every primitive); accept_test.go holds each to
// its expression.

// isSpace is RE2's \s: tab, newline, form feed, carriage return, space.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

// isCode is ^[^\s]+( [^\s]+)*$.
func isCode(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' {
			if s[i-1] == ' ' {
				return false
			}
		} else if isSpace(c) {
			return false
		}
	}
	return true
}

// isID is ^[A-Za-z0-9\-.]{1,64}$.
func isID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// isTypeName is ^[A-Z][A-Za-z]+$.
func isTypeName(s string) bool {
	if len(s) < 2 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// noSpace is ^\S+$.
func noSpace(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if isSpace(s[i]) {
			return false
		}
	}
	return true
}

// isDate is datePattern: YYYY, YYYY-MM or YYYY-MM-DD, the year from 1000,
// the month 01–12, the day 01–31.
func isDate(s string) bool {
	if len(s) != 4 && len(s) != 7 && len(s) != 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 4 || i == 7 {
			if s[i] != '-' {
				return false
			}
		} else if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	if s[0] == '0' {
		return false
	}
	two := func(i int) int { return int(s[i]-'0')*10 + int(s[i+1]-'0') }
	if len(s) >= 7 {
		if mo := two(5); mo < 1 || mo > 12 {
			return false
		}
	}
	if len(s) == 10 {
		if d := two(8); d < 1 || d > 31 {
			return false
		}
	}
	return true
}

// isFullDateTime is
// ^[1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)$
func isFullDateTime(s string) bool {
	if len(s) < 20 {
		return false
	}
	digit := func(i int) bool { return s[i] >= '0' && s[i] <= '9' }
	for _, i := range []int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if !digit(i) {
			return false
		}
	}
	if s[0] == '0' || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return false
	}
	two := func(i int) int { return int(s[i]-'0')*10 + int(s[i+1]-'0') }
	if mo := two(5); mo < 1 || mo > 12 {
		return false
	}
	if d := two(8); d < 1 || d > 31 {
		return false
	}
	if two(11) > 23 || two(14) > 59 || two(17) > 59 {
		return false
	}
	rest := s[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return false
		}
		rest = rest[n:]
	}
	if rest == "Z" {
		return true
	}
	if len(rest) != 6 || (rest[0] != '+' && rest[0] != '-') || rest[3] != ':' {
		return false
	}
	for _, i := range []int{1, 2, 4, 5} {
		if rest[i] < '0' || rest[i] > '9' {
			return false
		}
	}
	h, m := int(rest[1]-'0')*10+int(rest[2]-'0'), int(rest[4]-'0')*10+int(rest[5]-'0')
	return (h <= 13 && m <= 59) || (h == 14 && m == 0)
}
