package validation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	r4pb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Base rules of FHIR that jsonformat does not enforce.

// idPattern is FHIR's id type: 1 to 64 of A–Z, a–z, 0–9, '-' and '.'.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// resourceIDIssues checks the id of the resource and of its contained
// resources (packed in an Any in R4, unpacked here).
func resourceIDIssues(res proto.Message) []Issue {
	var issues []Issue
	var walk func(m protoreflect.Message, path string, contained bool)
	walk = func(cr protoreflect.Message, path string, contained bool) {
		// A ContainedResource holds one resource in its oneof.
		var r protoreflect.Message
		var name string
		cr.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Message() != nil {
				r, name = v.Message(), string(fd.Message().Name())
			}
			return false
		})
		if r == nil {
			return
		}
		if path == "" {
			path = name
		}
		fields := r.Descriptor().Fields()
		if idf := fields.ByName("id"); idf != nil && r.Has(idf) {
			idMsg := r.Get(idf).Message()
			if vf := idMsg.Descriptor().Fields().ByName("value"); vf != nil {
				id := idMsg.Get(vf).String()
				if !idPattern.MatchString(id) {
					issues = append(issues, Issue{Severity: "error", Code: "value", Expression: path + ".id",
						Text: fmt.Sprintf("invalid resource id: 1 to 64 of A-Z, a-z, 0-9, '-' and '.' (got %d characters)", len(id))})
				}
			}
		}
		if cf := fields.ByName("contained"); cf != nil && cf.IsList() && cf.Message() != nil {
			list := r.Get(cf).List()
			for i := 0; i < list.Len(); i++ {
				item := list.Get(i).Message()
				if cf.Message().FullName() == "google.protobuf.Any" {
					// R4 keeps contained resources packed in an Any.
					vf := item.Descriptor().Fields().ByName("value")
					cr := &r4pb.ContainedResource{}
					if vf == nil || proto.Unmarshal(item.Get(vf).Bytes(), cr) != nil {
						continue
					}
					item = cr.ProtoReflect()
				}
				walk(item, fmt.Sprintf("%s.contained[%d]", path, i), true)
			}
		}
	}
	if res != nil {
		walk(res.ProtoReflect(), "", false)
	}
	return issues
}

// emptyArrayIssues finds JSON arrays with no element, which FHIR JSON does
// not allow (an absent element has no property). One pass over the bytes,
// strings skipped, no allocation unless an issue is found.
func emptyArrayIssues(data []byte) []Issue {
	var issues []Issue
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		if inString {
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[':
			j := i + 1
			for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
				j++
			}
			if j < len(data) && data[j] == ']' {
				issues = append(issues, Issue{Severity: "error", Code: "structure", Text: "an array cannot be empty: leave the property out",
					Diagnostics: fmt.Sprintf("at byte %d", i)})
			}
		}
	}
	return issues
}

// duplicateKeyIssues finds a property name given twice in one JSON object.
// FHIR JSON has one property per element; a parser that keeps the first
// value and another that keeps the last would see different resources, so
// the gateway refuses the ambiguity instead of choosing. One pass over the
// bytes; names are compared in place (decoded only when they contain an
// escape), objects with many names switch to a set so that a hostile body
// cannot make the check quadratic.
func duplicateKeyIssues(data []byte) []Issue {
	type frame struct {
		object    bool
		expectKey bool
		keyStart  int                 // this object's names in keys[keyStart:]
		under     []byte              // the name this value sits under (nil at the root)
		set       map[string]struct{} // once the object has many names
	}
	var (
		stack      []frame
		keys       [][]byte // names of the open objects, innermost last (slices of data: no copies)
		rootType   string
		afterType  bool // the last root name was resourceType
		pendingKey []byte
	)
	const setAfter = 32
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch c {
		case '"':
			start := i + 1
			escaped := false
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					escaped = true
					i++
				}
			}
			if i >= len(data) {
				return nil // unterminated: the parser reports it
			}
			raw := data[start:i]
			if len(stack) == 0 {
				continue
			}
			top := &stack[len(stack)-1]
			if !top.object || !top.expectKey {
				if afterType && len(stack) == 1 {
					rootType, afterType = string(raw), false
				}
				continue
			}
			name := raw
			if escaped {
				var s string
				if json.Unmarshal(data[start-1:i+1], &s) == nil {
					name = []byte(s)
				}
			}
			dup := false
			if top.set != nil {
				_, dup = top.set[string(name)]
				top.set[string(name)] = struct{}{}
			} else {
				for _, k := range keys[top.keyStart:] {
					if bytes.Equal(k, name) {
						dup = true
						break
					}
				}
				keys = append(keys, name)
				if len(keys)-top.keyStart > setAfter {
					top.set = make(map[string]struct{}, 2*setAfter)
					for _, k := range keys[top.keyStart:] {
						top.set[string(k)] = struct{}{}
					}
				}
			}
			if dup {
				path := []string{}
				if rootType != "" {
					path = append(path, rootType)
				}
				for _, f := range stack[1:] {
					if len(f.under) > 0 {
						path = append(path, string(f.under))
					}
				}
				path = append(path, string(name))
				return []Issue{{Severity: "error", Code: "structure",
					Text:        fmt.Sprintf("the property %q is given twice in one object: each element has one property", name),
					Expression:  strings.Join(path, "."),
					Diagnostics: fmt.Sprintf("at byte %d", start-1)}}
			}
			top.expectKey = false
			pendingKey = name
			afterType = len(stack) == 1 && string(name) == "resourceType"
		case '{', '[':
			var under []byte // array elements: the array's frame carries the name
			if len(stack) > 0 && stack[len(stack)-1].object {
				under = pendingKey
			}
			stack = append(stack, frame{object: c == '{', expectKey: c == '{', keyStart: len(keys), under: under})
		case '}', ']':
			if len(stack) == 0 {
				return nil
			}
			keys = keys[:stack[len(stack)-1].keyStart]
			stack = stack[:len(stack)-1]
		case ',':
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].expectKey = true
			}
		}
	}
	return nil
}
