package fhirpathlite

import "strconv"

type tokKind int

const (
	tIdent     tokKind = iota
	tDelimited         // `name`: an identifier that is never a keyword
	tString
	tInt
	tThis
	tPunct // . ( ) , { }
	tOp    // = != < <= > >=
)

type token struct {
	kind tokKind
	text string
}

// lex splits src into tokens; nil when src holds anything outside the
// subset (other operators, decimals, date literals, environment variables,
// string escapes other than \' and \\).
func lex(src string) []token {
	toks := []token{}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case isLetter(c) || c == '_':
			j := i
			for j < len(src) && (isLetter(src[j]) || isDigit(src[j]) || src[j] == '_') {
				j++
			}
			toks = append(toks, token{tIdent, src[i:j]})
			i = j
		case c == '`':
			j := i + 1
			for j < len(src) && src[j] != '`' {
				j++
			}
			if j == len(src) || j == i+1 {
				return nil
			}
			toks = append(toks, token{tDelimited, src[i+1 : j]})
			i = j + 1
		case c == '\'':
			var text []byte
			j := i + 1
			for ; j < len(src) && src[j] != '\''; j++ {
				if src[j] == '\\' {
					if j+1 == len(src) || (src[j+1] != '\'' && src[j+1] != '\\') {
						return nil
					}
					j++
				}
				text = append(text, src[j])
			}
			if j == len(src) {
				return nil
			}
			toks = append(toks, token{tString, string(text)})
			i = j + 1
		case isDigit(c):
			j := i
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			if j < len(src) && src[j] == '.' && j+1 < len(src) && isDigit(src[j+1]) {
				return nil // decimal literal
			}
			toks = append(toks, token{tInt, src[i:j]})
			i = j
		case c == '$':
			if len(src) >= i+5 && src[i:i+5] == "$this" && (i+5 == len(src) || !isLetter(src[i+5])) {
				toks = append(toks, token{tThis, "$this"})
				i += 5
				continue
			}
			return nil
		case c == '.' || c == '(' || c == ')' || c == ',' || c == '{' || c == '}':
			toks = append(toks, token{tPunct, src[i : i+1]})
			i++
		case c == '=':
			toks = append(toks, token{tOp, "="})
			i++
		case c == '!' || c == '<' || c == '>':
			if i+1 < len(src) && src[i+1] == '=' {
				toks = append(toks, token{tOp, src[i : i+2]})
				i += 2
				continue
			}
			if c == '!' {
				return nil
			}
			toks = append(toks, token{tOp, src[i : i+1]})
			i++
		default:
			return nil
		}
	}
	return toks
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }

// parser is a precedence-climbing parser over the subset's grammar.
type parser struct {
	toks   []token
	pos    int
	failed bool
}

// binding power of the infix operators (FHIRPath precedence, low to high).
func infixPower(t token) int {
	switch {
	case t.kind == tIdent && t.text == "implies":
		return 1
	case t.kind == tIdent && (t.text == "or" || t.text == "xor"):
		return 2
	case t.kind == tIdent && t.text == "and":
		return 3
	case t.kind == tOp && (t.text == "=" || t.text == "!="):
		return 5
	case t.kind == tOp:
		return 6
	}
	return 0
}

func (p *parser) peek() (token, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return token{}, false
}

func (p *parser) fail() *node { p.failed = true; return nil }

func (p *parser) accept(kind tokKind, text string) bool {
	if t, ok := p.peek(); ok && t.kind == kind && t.text == text {
		p.pos++
		return true
	}
	return false
}

// expr parses operators binding tighter than minPower.
func (p *parser) expr(minPower int) *node {
	left := p.invocation()
	for !p.failed {
		t, ok := p.peek()
		if !ok {
			break
		}
		power := infixPower(t)
		if power == 0 || power <= minPower {
			break
		}
		p.pos++
		// implies is right-associative; the others are left-associative.
		next := power
		if t.text == "implies" {
			next = power - 1
		}
		right := p.expr(next)
		if right == nil {
			return p.fail()
		}
		left = &node{kind: kBinary, name: t.text, args: []*node{left, right}}
	}
	if p.failed {
		return nil
	}
	return left
}

// invocation parses a term followed by .member and .function(…) steps.
func (p *parser) invocation() *node {
	n := p.term()
	for n != nil && p.accept(tPunct, ".") {
		t, ok := p.peek()
		if !ok || (t.kind != tIdent && t.kind != tDelimited) {
			return p.fail()
		}
		p.pos++
		n = p.step(t.text, n)
	}
	return n
}

// step parses name or name(args) applied to input (nil: the focus).
func (p *parser) step(name string, input *node) *node {
	if !p.accept(tPunct, "(") {
		return &node{kind: kMember, name: name, ext: "_" + name, input: input}
	}
	var args []*node
	if !p.accept(tPunct, ")") {
		for {
			a := p.expr(0)
			if a == nil {
				return p.fail()
			}
			args = append(args, a)
			if p.accept(tPunct, ")") {
				break
			}
			if !p.accept(tPunct, ",") {
				return p.fail()
			}
		}
	}
	if !arityKnown(name, len(args)) {
		return p.fail()
	}
	return &node{kind: kFunc, name: name, input: input, args: args}
}

func arityKnown(name string, n int) bool {
	switch name {
	case "exists":
		return n <= 1
	case "empty", "count", "not", "hasValue":
		return n == 0
	case "where", "all":
		return n == 1
	}
	return false
}

func (p *parser) term() *node {
	t, ok := p.peek()
	if !ok {
		return p.fail()
	}
	p.pos++
	switch t.kind {
	case tString:
		return &node{kind: kString, str: t.text, lit: t.text}
	case tInt:
		v, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return p.fail()
		}
		return &node{kind: kInt, num: v, lit: v}
	case tThis:
		return &node{kind: kThis}
	case tDelimited:
		return p.step(t.text, nil)
	case tIdent:
		switch t.text {
		case "true", "false":
			return &node{kind: kBool, bool: t.text == "true"}
		case "and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod":
			return p.fail()
		}
		return p.step(t.text, nil)
	case tPunct:
		switch t.text {
		case "(":
			n := p.expr(0)
			if n == nil || !p.accept(tPunct, ")") {
				return p.fail()
			}
			return n
		case "{":
			if p.accept(tPunct, "}") {
				return &node{kind: kEmpty}
			}
		}
	}
	return p.fail()
}
