package argo

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
)

// Helpers that write Argo template tags and expr-lang expressions.
//
// Argo substitutes "{{...}}" tags in the JSON encoding of a template; an
// expression tag "{{=EXPR}}" is evaluated with expr-lang over the
// variables in scope plus toJson, jsonpath, asInt and sprig. A tag ends at
// the first "}}", so the expressions written here never contain "{{" or
// "}}" (string literals escape braces as \u007b and \u007d).

// exprString returns s as an expr-lang string literal that contains no
// brace, quote or control character.
func exprString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '{':
			b.WriteString(`\u007b`)
		case '}':
			b.WriteString(`\u007d`)
		case '\n':
			b.WriteString(`\n`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// exprTag wraps an expression in an expression tag.
func exprTag(e string) string {
	e = strings.ReplaceAll(e, "}}", "} }")
	e = strings.ReplaceAll(e, "{{", "{ {")
	return "{{=" + e + "}}"
}

// escapeLiteral makes literal JSON text safe to place where Argo
// substitutes tags: "{{" can only occur inside a JSON string, where
// "{\u007b" means the same.
func escapeLiteral(s string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	return strings.ReplaceAll(s, "{{", `{\u007b`)
}

// member returns the expression selecting key of the map expression m:
// m.key when key is a plain identifier of the expression language, the
// shorter form, else m['key'].
func member(m, key string) string {
	if identRE.MatchString(key) && !exprWords[key] {
		return m + "." + key
	}
	return m + "[" + exprString(key) + "]"
}

// identRE matches the names m.name can select.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// exprWords are the words of the expression language that cannot follow a
// dot as a name.
var exprWords = map[string]bool{"in": true, "not": true, "and": true, "or": true, "matches": true, "contains": true,
	"startsWith": true, "endsWith": true, "nil": true, "true": true, "false": true, "let": true, "if": true, "else": true}

// taskOutput is the expression of output parameter param of DAG task name.
func taskOutput(name, param string) string {
	return member(member("tasks", name)+".outputs.parameters", param)
}

// concat joins string expressions with +; an empty list is ”.
func concat(parts []string) string {
	if len(parts) == 0 {
		return "''"
	}
	return strings.Join(parts, " + ")
}

func itoa(i int) string { return strconv.Itoa(i) }

// anyString is wfv1.AnyStringPtr for a string, without its fmt.Sprintf
// copy of the string.
func anyString(s string) *wfv1.AnyString {
	v := wfv1.AnyString(s)
	return &v
}
