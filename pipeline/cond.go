package pipeline

import "cmp"

// Cond is a condition on run-time values, for [Step.When]. It is data, not
// a closure, so every backend can evaluate it (Argo renders it as a when
// expression). Build it with [Eq], [Ne], [Lt], [Le], [Gt], [Ge], [IsTrue],
// [And], [Or] and [Not]; the zero Cond always holds.
type Cond struct{ c *cond }

type cond struct {
	op    string
	src   *source
	value any
	other *source // Compare: the right-hand side, instead of value
	args  []Cond
}

func compare[T any](op string, r Ref[T], v T) Cond {
	src := r.src
	if src == nil {
		src = newSource(&source{kind: srcConst, typ: typeOf[T](), constVal: r.val})
	}
	return Cond{&cond{op: op, src: src, value: v}}
}

// Eq holds when the value r refers to equals v.
func Eq[T comparable](r Ref[T], v T) Cond { return compare("==", r, v) }

// Ne holds when the value r refers to differs from v.
func Ne[T comparable](r Ref[T], v T) Cond { return compare("!=", r, v) }

// Lt holds when the value r refers to is less than v.
func Lt[T cmp.Ordered](r Ref[T], v T) Cond { return compare("<", r, v) }

// Le holds when the value r refers to is at most v.
func Le[T cmp.Ordered](r Ref[T], v T) Cond { return compare("<=", r, v) }

// Gt holds when the value r refers to is greater than v.
func Gt[T cmp.Ordered](r Ref[T], v T) Cond { return compare(">", r, v) }

// Ge holds when the value r refers to is at least v.
func Ge[T cmp.Ordered](r Ref[T], v T) Cond { return compare(">=", r, v) }

// Compare holds when a op b, where op is one of "==", "!=", "<", "<=", ">",
// ">=" and both sides are known only at run time, for example a metric
// against a threshold parameter:
//
//	pipeline.Compare(pipeline.Field[float64](eval.Output(), "Accuracy"), ">=", minAccuracy.Ref())
//
// An unknown op is reported by Validate.
func Compare[T cmp.Ordered](a Ref[T], op string, b Ref[T]) Cond {
	c := compare(op, a, *new(T))
	c.c.value = nil
	c.c.other = b.src
	if b.src == nil {
		c.c.other = newSource(&source{kind: srcConst, typ: typeOf[T](), constVal: b.val})
	}
	return c
}

// IsTrue holds when the bool r refers to is true.
func IsTrue(r Ref[bool]) Cond {
	c := compare("true", r, false)
	c.c.value = nil
	return c
}

// And holds when every c holds.
func And(cs ...Cond) Cond { return Cond{&cond{op: "and", args: cs}} }

// Or holds when some c holds.
func Or(cs ...Cond) Cond { return Cond{&cond{op: "or", args: cs}} }

// Not holds when c does not.
func Not(c Cond) Cond { return Cond{&cond{op: "not", args: []Cond{c}}} }
