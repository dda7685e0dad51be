// Package location writes the FHIRPath-like place of an element
// (Task.input[0].type) from a stack of steps — the form every issue of the
// validators and converters carries. They keep the steps while they walk
// a resource and turn them into text only for an issue, so that walking
// builds no path.
package location

import (
	"strconv"
	"strings"
)

// Step is one step of a place: Name, with [Index] when Index ≥ 0.
type Step struct {
	Name  string
	Index int
}

// String is the place of steps joined by dots, after root and before
// child when those are not empty.
func String(root string, steps []Step, child string) string {
	var b strings.Builder
	b.WriteString(root)
	for _, s := range steps {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.Name)
		if s.Index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.Index))
			b.WriteByte(']')
		}
	}
	if child != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(child)
	}
	return b.String()
}
