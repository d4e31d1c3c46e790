package backends

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Eval evaluates c with value resolving refs to JSON.
func (c Condition) Eval(value func(Ref) (json.RawMessage, error)) (bool, error) {
	ok, _, err := c.explain(value)
	return ok, err
}

// Explain evaluates c as [Condition.Eval] does and also says which values
// decided the outcome, as facts joined by "; ":
//
//   - a comparison gives both sides with the relation that holds between
//     their values: "==" or "!=" for == and !=, "<", "==" or ">" for the
//     orderings, for example "eval.ndcg = 0.463 < params.min_ndcg = 0.9";
//     a run-time value is written "ref = value", a constant as the value
//     alone;
//   - "true" (a bool ref) gives "ref = false" or "ref = true";
//   - "and" gives its first false operand's facts when it is false, every
//     operand's when it is true; "or" its first true operand's when it is
//     true, every operand's when it is false; "not" its operand's.
//
// Values are compact JSON, object keys sorted; one longer than
// [MaxExplainedValue] characters is cut short with "…" (inside the
// quotes of a string).
func (c Condition) Explain(value func(Ref) (json.RawMessage, error)) (ok bool, why string, err error) {
	ok, facts, err := c.explain(value)
	if err != nil {
		return false, "", err
	}
	return ok, strings.Join(facts, "; "), nil
}

// MaxExplainedValue is how many characters of a value
// [Condition.Explain] shows.
const MaxExplainedValue = 40

func (c Condition) explain(value func(Ref) (json.RawMessage, error)) (bool, []string, error) {
	switch c.Op {
	case "and", "or":
		// "and" is decided by its first false operand, "or" by its first
		// true one; else by all of them.
		decisive := c.Op == "or"
		var all []string
		for _, a := range c.Args {
			ok, facts, err := a.explain(value)
			if err != nil {
				return false, nil, err
			}
			if ok == decisive {
				return ok, facts, nil
			}
			for _, f := range facts {
				if !slices.Contains(all, f) {
					all = append(all, f)
				}
			}
		}
		return !decisive, all, nil
	case "not":
		if len(c.Args) != 1 {
			return false, nil, fmt.Errorf("backends: not takes one operand, got %d", len(c.Args))
		}
		ok, facts, err := c.Args[0].explain(value)
		return !ok, facts, err
	}
	if c.Ref == nil {
		return false, nil, fmt.Errorf("backends: condition %q without a ref", c.Op)
	}
	v, err := value(*c.Ref)
	if err != nil {
		return false, nil, err
	}
	if c.Op == "true" {
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return false, nil, fmt.Errorf("backends: condition on %s: %s is not a bool", c.Ref, v)
		}
		return b, []string{side(*c.Ref, v)}, nil
	}
	w, rhs := c.Value, ""
	if w == nil {
		w = json.RawMessage("null")
	}
	if c.Other != nil {
		if w, err = value(*c.Other); err != nil {
			return false, nil, err
		}
		rhs = side(*c.Other, w)
	} else {
		rhs = explainValue(w)
	}
	rel, ok, err := compareJSON(c.Op, v, w)
	if err != nil {
		return false, nil, err
	}
	return ok, []string{side(*c.Ref, v) + " " + rel + " " + rhs}, nil
}

// side writes one side of a comparison: "ref = value", or for a constant
// the value alone.
func side(r Ref, v json.RawMessage) string {
	if r.Kind == RefConst {
		return explainValue(v)
	}
	return r.String() + " = " + explainValue(v)
}

// explainValue writes v as [Condition.Explain] does: compact JSON with
// object keys sorted, cut short with "…" to [MaxExplainedValue]
// characters.
func explainValue(v json.RawMessage) string {
	s := string(v)
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if dec.Decode(&x) == nil {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if enc.Encode(x) == nil {
			s = strings.TrimSuffix(b.String(), "\n")
		}
	}
	if utf8.RuneCountInString(s) <= MaxExplainedValue {
		return s
	}
	r := []rune(s)
	if r[0] == '"' { // a string stays quoted
		return string(r[:MaxExplainedValue-2]) + `…"`
	}
	return string(r[:MaxExplainedValue-1]) + "…"
}

// compareJSON reports whether a op b holds, and the relation that holds
// between a and b: for == and != (which compare any two values) "==" or
// "!="; for the orderings (which compare two numbers or two strings) "<",
// "==" or ">".
func compareJSON(op string, a, b json.RawMessage) (rel string, ok bool, err error) {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		return "", false, err
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return "", false, err
	}
	var c int
	switch xv := x.(type) {
	case float64:
		yv, ok := y.(float64)
		if !ok {
			return "", false, fmt.Errorf("backends: compare number %s with %s", a, b)
		}
		c = cmpOrdered(xv, yv)
	case string:
		yv, ok := y.(string)
		if !ok {
			return "", false, fmt.Errorf("backends: compare string %s with %s", a, b)
		}
		c = cmpOrdered(xv, yv)
	default:
		if op != "==" && op != "!=" {
			return "", false, fmt.Errorf("backends: %s is not ordered", a)
		}
		c = 1
		if bytes.Equal(canonical(x), canonical(y)) {
			c = 0
		}
	}
	eq := "!="
	if c == 0 {
		eq = "=="
	}
	ord := [...]string{"<", "==", ">"}[c+1]
	switch op {
	case "==":
		return eq, c == 0, nil
	case "!=":
		return eq, c != 0, nil
	case "<":
		return ord, c < 0, nil
	case "<=":
		return ord, c <= 0, nil
	case ">":
		return ord, c > 0, nil
	case ">=":
		return ord, c >= 0, nil
	}
	return "", false, fmt.Errorf("backends: unknown operator %q", op)
}

func cmpOrdered[T float64 | string](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func canonical(v any) []byte { b, _ := json.Marshal(v); return b }
