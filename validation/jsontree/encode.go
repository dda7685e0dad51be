package jsontree

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// AppendString appends s quoted as encoding/json writes it: U+2028 and
// U+2029 escaped, invalid UTF-8 as \ufffd, control characters as \n, \r,
// \t, \b, \f or \u00XX, and with escapeHTML (encoding/json's default) <, >
// and & as \u003c, \u003e, \u0026. FuzzAppendString holds it to
// encoding/json byte for byte.
func AppendString(b []byte, s string, escapeHTML bool) []byte {
	return AppendStringAs(b, s, escapeHTML, true)
}

// AppendStringAs is AppendString with the short escapes \b and \f of
// encoding/json (shortControls) or without them: log/slog's JSON handler
// writes those two as \u0008 and \u000c (gateway/logline).
func AppendStringAs(b []byte, s string, escapeHTML, shortControls bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!escapeHTML || (c != '<' && c != '>' && c != '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b', '\f':
				if !shortControls {
					b = append(b, '\\', 'u', '0', '0', '0', hexDigits[c])
				} else if c == '\b' {
					b = append(b, '\\', 'b')
				} else {
					b = append(b, '\\', 'f')
				}
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
