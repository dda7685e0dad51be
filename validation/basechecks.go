package validation

import (
	"fmt"
	"regexp"

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
