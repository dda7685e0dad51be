package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/fhirgate/fhirgate/template"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem of a configuration file.
type FieldError struct {
	File  string
	Line  int
	Field string // dotted path, e.g. bases[0].routes[1].call.backend
	Msg   string
}

func (e *FieldError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Field == "" {
		return loc + ": " + e.Msg
	}
	return loc + ": " + e.Field + ": " + e.Msg
}

// Errors is every problem found in one file, in file order.
type Errors []*FieldError

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Load reads, checks and compiles a routes.yaml. The error, if any, is an
// Errors listing every problem found.
func Load(file string) (*Config, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, Errors{{File: file, Msg: "cannot read: " + errors.Unwrap(err).Error()}}
	}
	return Parse(file, data)
}

// Parse is Load for data already read; file names the source in messages
// and anchors relative file names.
func Parse(file string, data []byte) (*Config, error) {
	l := &loader{file: file, lines: map[string]int{}}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, Errors{l.yamlError(err)}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: file, Line: 1, Msg: "the file is empty"}}
	}
	root := doc.Content[0]
	l.walk(root, reflect.TypeOf(Config{}), "")
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	cfg := &Config{File: file}
	if err := root.Decode(cfg); err != nil {
		return nil, Errors{l.yamlError(err)}
	}
	l.validate(cfg)
	if len(l.errs) > 0 {
		sort.SliceStable(l.errs, func(i, j int) bool { return l.errs[i].Line < l.errs[j].Line })
		return nil, l.errs
	}
	cfg.Files = l.files
	return cfg, nil
}

type loader struct {
	file  string
	lines map[string]int // field path → line of its value
	errs  Errors
	files []string // every file name checkFile resolved
	// stores are the configuration's limit_stores, for references.
	stores map[string]*LimitStore
	// maps finds the value maps templates may use where they are parsed
	// (mapsFor: the base's while its routes are checked).
	maps func(string) (template.Mapper, error)
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// errorf records a problem at a field path; the line is that of the field or
// of its nearest ancestor present in the file.
func (l *loader) errorf(path, format string, args ...any) {
	l.errs = append(l.errs, &FieldError{File: l.file, Line: l.lineOf(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) errorAt(line int, path, format string, args ...any) {
	l.errs = append(l.errs, &FieldError{File: l.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) lineOf(path string) int {
	for p := path; ; {
		if n, ok := l.lines[p]; ok {
			return n
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			return l.lines[""]
		}
		p = p[:i]
	}
}

func (l *loader) yamlError(err error) *FieldError {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if strings.HasPrefix(msg, "line ") {
		rest := msg[5:]
		if i := strings.IndexByte(rest, ':'); i > 0 {
			if n, e := strconv.Atoi(rest[:i]); e == nil {
				line, msg = n, strings.TrimSpace(rest[i+1:])
			}
		}
	}
	return &FieldError{File: l.file, Line: line, Msg: "invalid YAML: " + msg}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// walk checks the node tree against the Go types before decoding, so that
// unknown keys and wrong scalar types are reported with their field path and
// line, and records the line of every field for later messages.
func (l *loader) walk(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if _, seen := l.lines[path]; !seen {
		l.lines[path] = n.Line
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		v := reflect.New(t)
		if err := n.Decode(v.Interface()); err != nil {
			l.errorAt(n.Line, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := yamlFields(t)
		l.eachKey(n, path, func(k, v *yaml.Node, fp string) {
			f, ok := fields[k.Value]
			if !ok {
				l.errorAt(k.Line, fp, "unknown key %q (known: %s)", k.Value, strings.Join(sortedKeys(fields), ", "))
				return
			}
			l.lines[fp] = k.Line
			l.walk(v, f.Type, fp)
		})
	case reflect.Map:
		l.eachKey(n, path, func(k, v *yaml.Node, fp string) {
			if t.Key().Kind() == reflect.Int {
				if _, err := strconv.Atoi(k.Value); err != nil {
					l.errorAt(k.Line, fp, "key %q must be a number", k.Value)
					return
				}
			}
			l.lines[fp] = k.Line
			l.walk(v, t.Elem(), fp)
		})
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			l.errorAt(n.Line, path, "must be a list")
			return
		}
		for i, c := range n.Content {
			l.walk(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			l.errorAt(n.Line, path, "must be a string")
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode {
			l.errorAt(n.Line, path, "must be a whole number")
			return
		}
		if _, err := strconv.ParseInt(n.Value, 10, 64); err != nil {
			l.errorAt(n.Line, path, "%q is not a whole number", n.Value)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
			l.errorAt(n.Line, path, "must be true or false")
		}
	}
}

// eachKey calls fn for every key of a mapping node, refusing a node that is
// not a mapping and keys given twice.
func (l *loader) eachKey(n *yaml.Node, path string, fn func(k, v *yaml.Node, fieldPath string)) {
	if n.Kind != yaml.MappingNode {
		l.errorAt(n.Line, path, "must be a mapping of keys")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		fp := join(path, k.Value)
		if seen[k.Value] {
			l.errorAt(k.Line, fp, "duplicate key")
			continue
		}
		seen[k.Value] = true
		fn(k, v, fp)
	}
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		out[name] = f
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
