package pipeline

import (
	"strings"
	"testing"
)

// TestGinPattern: literal segments escaped as requests are normalised,
// parameters by position.
func TestGinPattern(t *testing.T) {
	p, names := ginPattern("/erp", "/Task/{id}/$abort")
	if p != "/erp/Task/:p0/$abort" || len(names) != 1 || names[0] != "id" {
		t.Errorf("%s %v", p, names)
	}
	p, names = ginPattern("/a/b", "/X/{x}/{y}")
	if p != "/a/b/X/:p0/:p1" || strings.Join(names, ",") != "x,y" {
		t.Errorf("%s %v", p, names)
	}
}
