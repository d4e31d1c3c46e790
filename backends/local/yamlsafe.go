package local

import (
	"bytes"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// yamlSafeJSON rewrites JSON so that a YAML parser reads it as the same
// value, as sigs.k8s.io/yaml's JSONToYAML does to render the run record:
// inside strings, every character YAML does not allow as is (DEL, the C1
// controls, U+FFFE, U+FFFF) or reads as a line break (NEL, LS, PS) becomes
// a \u escape, an escaped "/" ("\/", which YAML lacks) becomes "/", and a
// surrogate pair escape (which YAML rejects) becomes its character, a
// lone surrogate U+FFFD as encoding/json decodes it. Without it, a string
// the program wrote with such a character made Compile fail ("yaml:
// control characters are not allowed") on a pipeline Validate accepted.
func yamlSafeJSON(j []byte) []byte {
	if !needsYAMLEscape(j) {
		return j
	}
	out := make([]byte, 0, len(j)+16)
	in := false
	for i := 0; i < len(j); {
		c := j[i]
		switch {
		case !in:
			in = c == '"'
			out = append(out, c)
			i++
		case c == '"':
			in = false
			out = append(out, c)
			i++
		case c == '\\' && i+1 < len(j) && j[i+1] == '/':
			out = append(out, '/')
			i += 2
		case c == '\\' && i+1 < len(j) && j[i+1] == 'u':
			r, n := unescapeSurrogates(j[i:])
			if n == 0 {
				out = append(out, j[i:i+6]...)
				i += 6
				continue
			}
			out = utf8.AppendRune(out, r)
			i += n
		case c == '\\':
			out = append(out, j[i:i+2]...)
			i += 2
		case c < 0x7f:
			out = append(out, c)
			i++
		default:
			r, n := utf8.DecodeRune(j[i:])
			if r != utf8.RuneError && !yamlRune(r) {
				out = append(out, `\u`...)
				out = append(out, hex4(r)...)
			} else {
				out = append(out, j[i:i+n]...)
			}
			i += n
		}
	}
	return out
}

// needsYAMLEscape reports whether j has a byte yamlSafeJSON may rewrite:
// DEL or a non-ASCII byte, or an escape of "/" or of a surrogate.
func needsYAMLEscape(j []byte) bool {
	for _, c := range j {
		if c >= 0x7f {
			return true
		}
	}
	return bytes.Contains(j, []byte(`\/`)) || bytes.Contains(j, []byte(`\ud`)) || bytes.Contains(j, []byte(`\uD`))
}

// unescapeSurrogates reads a \uXXXX escape at the start of b. For a
// surrogate it returns the character it and a following low surrogate
// escape stand for (U+FFFD for a lone one) and the bytes read; for any
// other escape it returns n = 0.
func unescapeSurrogates(b []byte) (r rune, n int) {
	hi, ok := escapeAt(b)
	if !ok || !utf16.IsSurrogate(hi) {
		return 0, 0
	}
	if lo, ok := escapeAt(b[min(6, len(b)):]); ok {
		if r := utf16.DecodeRune(hi, lo); r != utf8.RuneError {
			return r, 12
		}
	}
	return utf8.RuneError, 6
}

// escapeAt returns the code unit of a \uXXXX escape at the start of b.
func escapeAt(b []byte) (rune, bool) {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b[2:6]), 16, 16)
	return rune(v), err == nil
}

func hex4(r rune) []byte {
	const digits = "0123456789abcdef"
	return []byte{digits[r>>12&0xf], digits[r>>8&0xf], digits[r>>4&0xf], digits[r&0xf]}
}
