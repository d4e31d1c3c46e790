package serve

import (
	"encoding/json"
	"unicode/utf8"
)

// topKeys calls key for each key of raw, a valid JSON document, at the
// top level of the object it is, in order (a key with escapes unquoted).
// It reports false, having called key for none, when raw is not an
// object. It reads raw once and allocates only for a key with escapes or
// invalid UTF-8 (unquoted as encoding/json does): a
// request's instance is checked for its required fields without being
// decoded twice.
func topKeys(raw []byte, key func(k []byte)) bool {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	type span struct {
		from, to int
		plain    bool // no escape, valid UTF-8: the key is its bytes
	}
	var keys [16]span
	spans := keys[:0]
	i = skipSpace(raw, i+1)
	for i < len(raw) && raw[i] == '"' {
		end, esc := stringEnd(raw, i)
		spans = append(spans, span{i, end, !esc && utf8.Valid(raw[i+1:end-1])})
		i = skipSpace(raw, end)
		i = skipSpace(raw, i+1) // ':'
		i = skipValue(raw, i)
		i = skipSpace(raw, i)
		if i < len(raw) && raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	for _, s := range spans {
		if s.plain {
			key(raw[s.from+1 : s.to-1])
			continue
		}
		var k string
		if json.Unmarshal(raw[s.from:s.to], &k) == nil {
			key([]byte(k))
		}
	}
	return true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts at b[i],
// and whether it holds an escape.
func stringEnd(b []byte, i int) (int, bool) {
	esc := false
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			esc = true
			i++
		case '"':
			return i + 1, esc
		}
	}
	return len(b), esc
}

// skipValue returns the index just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, _ := stringEnd(b, i)
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
