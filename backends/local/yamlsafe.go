package local

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// jsonToYAML renders the run record's JSON as YAML. It is
// sigs.k8s.io/yaml's JSONToYAML (what yaml.Marshal does), which parses
// the JSON as YAML, on JSON made readable to YAML (see yamlSafeJSON).
// What YAML still cannot read as JSON (a mapping key longer than the 1024
// characters of an implicit key, as a constant map with a long key makes
// it, or nesting past the parser's limit) is rendered from the decoded
// JSON instead: keys sorted as JSONToYAML sorts them, numbers as integers
// or floats where they are, and long keys as explicit keys ("? key").
func jsonToYAML(j []byte) ([]byte, error) {
	doc, err := yaml.JSONToYAML(yamlSafeJSON(j))
	if err == nil {
		return doc, nil
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, err
	}
	return yamlv2.Marshal(yamlNumbers(v))
}

// yamlNumbers replaces the json.Numbers in v by int64 or float64 values
// where they fit one, as a YAML parser reads them.
func yamlNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if f, err := strconv.ParseFloat(string(x), 64); err == nil {
			return f
		}
		return string(x)
	case map[string]any:
		for k, e := range x {
			x[k] = yamlNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = yamlNumbers(e)
		}
	}
	return v
}

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
