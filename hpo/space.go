package hpo

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/task"
)

// Space says how each field of the hyperparameter struct P is searched
// or fixed: the key is the field's Go or JSON name, the value a [Dim].
// Every exported field of P is in the space, either searched (Float,
// LogFloat, FloatStep, Int, LogInt, IntStep, Choice) or fixed (Fixed):
//
//	hpo.Space[Params]{
//		"LR":     hpo.LogFloat(1e-4, 1),
//		"Layers": hpo.Int(1, 4),
//		"Act":    hpo.Choice("relu", "tanh"),
//		"Epochs": hpo.Fixed(10),
//	}
//
// A Space is plain data; [Search] checks it when the pipeline is
// validated, at pipeline.tasks[NAME].space.FIELD.
type Space[P any] map[string]Dim

// Dim is how one field is searched or fixed. Make one with the functions
// below; the zero Dim is a validation error.
type Dim struct {
	kind   dimKind
	lo, hi float64
	step   float64
	values []any        // Choice
	typ    reflect.Type // the type of Choice's and Fixed's values
	when   *condition   // nil: searched (or fixed) in every trial
}

// condition is what [Dim.When] sets: the field is searched only when
// field parent takes one of values.
type condition struct {
	parent string
	values []any
}

// When makes d conditional: the field is searched (or, for Fixed, set)
// only in the trials where the field named parent — a Choice of the
// same space, itself unconditional — takes one of values; in the others
// it holds its type's zero value, and the samplers learn nothing about
// it from them. parent is a Go or JSON field name:
//
//	hpo.Space[Params]{
//		"Optimizer": hpo.Choice("sgd", "adam"),
//		"Momentum":  hpo.Float(0, 0.99).When("Optimizer", "sgd"),
//		"Beta2":     hpo.LogFloat(0.9, 0.9999).When("Optimizer", "adam"),
//		…
//	}
//
// TPE and random search leave an inactive field out of the trial, so
// TPE models it only from the trials where it was searched. CMA-ES and
// Sobol draw every field in every trial (their search space is fixed)
// and the inactive draws are dropped. A grid enumerates the values of
// the active fields only.
func (d Dim) When(parent string, values ...any) Dim {
	d.when = &condition{parent: parent, values: slices.Clone(values)}
	return d
}

type dimKind int

const (
	dimNone dimKind = iota
	dimFloat
	dimLogFloat
	dimFloatStep
	dimInt
	dimLogInt
	dimIntStep
	dimChoice
	dimFixed
)

// Float searches a float field uniformly in [lo, hi].
func Float(lo, hi float64) Dim { return Dim{kind: dimFloat, lo: lo, hi: hi} }

// LogFloat searches a float field in [lo, hi] uniformly in the log
// domain (a learning rate); lo must be positive.
func LogFloat(lo, hi float64) Dim { return Dim{kind: dimLogFloat, lo: lo, hi: hi} }

// FloatStep searches a float field over lo, lo+step, lo+2·step, … up to
// hi.
func FloatStep(lo, hi, step float64) Dim {
	return Dim{kind: dimFloatStep, lo: lo, hi: hi, step: step}
}

// Int searches an integer field uniformly over lo … hi (both included).
func Int(lo, hi int) Dim { return Dim{kind: dimInt, lo: float64(lo), hi: float64(hi)} }

// LogInt searches an integer field over lo … hi uniformly in the log
// domain (a batch size); lo must be at least 1.
func LogInt(lo, hi int) Dim { return Dim{kind: dimLogInt, lo: float64(lo), hi: float64(hi)} }

// IntStep searches an integer field over lo, lo+step, … up to hi.
func IntStep(lo, hi, step int) Dim {
	return Dim{kind: dimIntStep, lo: float64(lo), hi: float64(hi), step: float64(step)}
}

// Choice searches a field over the given values, of any comparable type
// assignable to the field's.
func Choice[T comparable](values ...T) Dim {
	vs := make([]any, len(values))
	for i, v := range values {
		vs[i] = v
	}
	return Dim{kind: dimChoice, values: vs, typ: reflect.TypeFor[T]()}
}

// Fixed sets a field to v in every trial. v's type must be assignable to
// the field's, or both numeric with v representable exactly.
func Fixed[T any](v T) Dim {
	return Dim{kind: dimFixed, values: []any{v}, typ: reflect.TypeFor[T]()}
}

// String describes d, for messages.
func (d Dim) String() string {
	s := d.base()
	if d.when != nil {
		s += fmt.Sprintf(".When(%s, %v)", d.when.parent, d.when.values)
	}
	return s
}

func (d Dim) base() string {
	switch d.kind {
	case dimFloat:
		return fmt.Sprintf("Float(%v, %v)", d.lo, d.hi)
	case dimLogFloat:
		return fmt.Sprintf("LogFloat(%v, %v)", d.lo, d.hi)
	case dimFloatStep:
		return fmt.Sprintf("FloatStep(%v, %v, %v)", d.lo, d.hi, d.step)
	case dimInt:
		return fmt.Sprintf("Int(%v, %v)", d.lo, d.hi)
	case dimLogInt:
		return fmt.Sprintf("LogInt(%v, %v)", d.lo, d.hi)
	case dimIntStep:
		return fmt.Sprintf("IntStep(%v, %v, %v)", d.lo, d.hi, d.step)
	case dimChoice:
		return fmt.Sprintf("Choice%v", d.values)
	case dimFixed:
		return fmt.Sprintf("Fixed(%v)", d.values[0])
	}
	return "Dim{}"
}

// maxExactInt bounds integer ranges: samplers work in float64, which
// holds every integer up to 2^53 exactly.
const maxExactInt = 1 << 53

// maxValues bounds how many values a stepped range or a choice has.
const maxValues = 1_000_000

// dimPlan is one field of P with its Dim, checked.
type dimPlan struct {
	name   string // JSON name: the sampler's parameter name
	goName string
	key    string // as written in the Space
	typ    reflect.Type
	dim    Dim
	n      int // the number of values of a finite dimension (stepped, Choice), else 0
	// parent is the index in the plan's dims of the Choice a conditional
	// field depends on (-1: none), and when the indices of the parent's
	// values that make it active.
	parent     int
	parentName string // its JSON name
	when       []int
}

// conditional reports whether the field is searched only in some trials.
func (d *dimPlan) conditional() bool { return d.parent >= 0 }

// searched reports whether the field is searched rather than fixed.
func (d *dimPlan) searched() bool { return d.dim.kind != dimFixed }

// spacePlan is a checked Space.
type spacePlan struct {
	typ  reflect.Type
	dims []dimPlan // in P's field order
}

// searchedDims returns the searched dimensions, in field order.
func (sp *spacePlan) searchedDims() []*dimPlan {
	var out []*dimPlan
	for i := range sp.dims {
		if sp.dims[i].searched() {
			out = append(out, &sp.dims[i])
		}
	}
	return out
}

// plan checks s against P and returns its plan and its problems, at
// paths under path ("space").
func (s Space[P]) plan(path *field.Path) (*spacePlan, []*field.Error) {
	return s.planExcept(path, "")
}

// planExcept is plan for a space that leaves out the field whose JSON
// name is exempt (the early-stopping budget, which the search sets): the
// space need not name it, and a space that does is reported by the
// search (at earlyStopping.budget), not here.
func (s Space[P]) planExcept(path *field.Path, exempt string) (*spacePlan, []*field.Error) {
	pt := reflect.TypeFor[P]()
	sp := &spacePlan{typ: pt}
	var errs []*field.Error
	if pt.Kind() != reflect.Struct {
		return sp, []*field.Error{field.Invalid(path, pt.String(), "the hyperparameters must be a struct, with one field per hyperparameter")}
	}
	fields := task.JSONFields(pt)
	if len(fields) == 0 {
		return sp, []*field.Error{field.Invalid(path, pt.String(), "the hyperparameter struct has no exported field to search")}
	}
	used := map[string]string{} // JSON name -> key
	for _, key := range sortedKeys(s) {
		jname, _, ok := task.FieldByName(pt, key)
		if ok && exempt != "" && jname == exempt {
			continue
		}
		if !ok {
			errs = append(errs, field.NotFound(path.Child(key), key, "%v has no exported field %q; its fields are %s", pt, key, fieldList(fields)))
			continue
		}
		if k, dup := used[jname]; dup {
			errs = append(errs, field.Duplicate(path.Child(key), key, "names the same field as %q; keep one", k))
			continue
		}
		used[jname] = key
	}
	for _, f := range fields {
		if exempt != "" && f.Name == exempt {
			continue
		}
		key, ok := used[f.Name]
		if !ok {
			errs = append(errs, field.Required(path.Child(f.GoName), "every field of %v is searched or fixed; add %q with a range, a Choice or hpo.Fixed(value)", pt, f.GoName))
			continue
		}
		d := dimPlan{name: f.Name, goName: f.GoName, key: key, typ: f.Type, dim: s[key], parent: -1}
		errs = append(errs, d.check(path.Child(key))...)
		sp.dims = append(sp.dims, d)
	}
	errs = append(errs, sp.linkConditions(path)...)
	if len(errs) == 0 && len(sp.searchedDims()) == 0 {
		errs = append(errs, field.Invalid(path, pt.String(), "every field is Fixed: there is nothing to search; give at least one field a range or a Choice"))
	}
	return sp, errs
}

// linkConditions resolves each conditional field's parent (see
// Dim.When), or reports why it cannot.
func (sp *spacePlan) linkConditions(path *field.Path) []*field.Error {
	var errs []*field.Error
	for i := range sp.dims {
		d := &sp.dims[i]
		c := d.dim.when
		if c == nil {
			continue
		}
		p := path.Child(d.key).Child("when")
		jname, _, ok := task.FieldByName(sp.typ, c.parent)
		k := slices.IndexFunc(sp.dims, func(o dimPlan) bool { return o.name == jname })
		switch {
		case !ok || k < 0:
			errs = append(errs, field.NotFound(p, c.parent, "%v has no searched field %q to depend on; name a Choice of the space", sp.typ, c.parent))
			continue
		case k == i:
			errs = append(errs, field.Invalid(p, c.parent, "a field cannot depend on itself; name another field, a Choice"))
			continue
		case sp.dims[k].dim.kind != dimChoice:
			errs = append(errs, field.Invalid(p, c.parent, "%s is %s, not a Choice: a field can depend only on a Choice's value", sp.dims[k].goName, sp.dims[k].dim))
			continue
		case sp.dims[k].dim.when != nil:
			errs = append(errs, field.Invalid(p, c.parent, "%s is conditional itself; a field can depend only on an unconditional Choice", sp.dims[k].goName))
			continue
		case len(c.values) == 0:
			errs = append(errs, field.Required(p, "say which of %s's values make %s searched: When(%q, value, …)", sp.dims[k].goName, d.goName, c.parent))
			continue
		}
		parent := &sp.dims[k]
		var when []int
		for vi, v := range c.values {
			j := -1
			if cv, err := convertTo(v, parent.typ); err == nil {
				j = slices.IndexFunc(parent.dim.values, func(x any) bool {
					xv, err := convertTo(x, parent.typ)
					return err == nil && xv.Equal(cv)
				})
			}
			if j < 0 {
				errs = append(errs, field.Invalid(p.Index(vi), fmt.Sprint(v), "is not one of %s's choices %v", parent.goName, parent.dim.values))
				continue
			}
			if !slices.Contains(when, j) {
				when = append(when, j)
			}
		}
		if len(when) == len(c.values) {
			slices.Sort(when)
			d.parent, d.parentName, d.when = k, parent.name, when
		}
	}
	return errs
}

// active reports whether field d of p (a P) is searched in p: whether
// its parent's value is one of those that make it so.
func (sp *spacePlan) active(d *dimPlan, p reflect.Value) bool {
	if !d.conditional() {
		return true
	}
	parent := &sp.dims[d.parent]
	i, err := parent.internal(p.FieldByName(parent.goName))
	return err == nil && slices.Contains(d.when, int(i))
}

func sortedKeys[P any](s Space[P]) []string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func fieldList(fs []task.JSONField) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.GoName
	}
	return strings.Join(names, ", ")
}

func isFloatKind(k reflect.Kind) bool { return k == reflect.Float32 || k == reflect.Float64 }

func isIntKind(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// check checks d against its field's type.
func (d *dimPlan) check(p *field.Path) []*field.Error {
	dim := d.dim
	k := d.typ.Kind()
	switch dim.kind {
	case dimNone:
		return []*field.Error{field.Required(p, "the zero Dim searches nothing; use hpo.Float, LogFloat, FloatStep, Int, LogInt, IntStep, Choice or Fixed")}
	case dimFloat, dimLogFloat, dimFloatStep:
		if !isFloatKind(k) {
			return []*field.Error{field.Invalid(p, dim.String(), "the field has type %v, not a float; use %s", d.typ, suggestFor(d.typ))}
		}
		return d.checkRange(p)
	case dimInt, dimLogInt, dimIntStep:
		if !isIntKind(k) {
			return []*field.Error{field.Invalid(p, dim.String(), "the field has type %v, not an integer; use %s", d.typ, suggestFor(d.typ))}
		}
		return d.checkRange(p)
	case dimChoice:
		if len(dim.values) == 0 {
			return []*field.Error{field.Required(p, "a Choice needs at least one value")}
		}
		if len(dim.values) > maxValues {
			return []*field.Error{field.TooMany(p, len(dim.values), maxValues)}
		}
		var errs []*field.Error
		for i, v := range dim.values {
			if _, err := convertTo(v, d.typ); err != nil {
				return []*field.Error{field.Invalid(p.Index(i), fmt.Sprint(v), "%v", err)}
			}
			if j := slices.Index(dim.values[:i], v); j >= 0 {
				errs = append(errs, field.Duplicate(p.Index(i), fmt.Sprint(v), "the same value as choice %d; list each value once", j))
			}
		}
		d.n = len(dim.values)
		return errs
	case dimFixed:
		if _, err := convertTo(dim.values[0], d.typ); err != nil {
			return []*field.Error{field.Invalid(p, fmt.Sprint(dim.values[0]), "%v", err)}
		}
	}
	return nil
}

// suggestFor names the Dims that fit a field of type t.
func suggestFor(t reflect.Type) string {
	switch {
	case isFloatKind(t.Kind()):
		return "hpo.Float, LogFloat or FloatStep"
	case isIntKind(t.Kind()):
		return "hpo.Int, LogInt or IntStep"
	}
	return "hpo.Choice or hpo.Fixed"
}

func (d *dimPlan) checkRange(p *field.Path) []*field.Error {
	dim := d.dim
	s := dim.String()
	switch {
	case !finite(dim.lo) || !finite(dim.hi):
		return []*field.Error{field.Invalid(p, s, "the bounds must be finite numbers")}
	case dim.lo > dim.hi:
		return []*field.Error{field.Invalid(p, s, "lo %v is greater than hi %v; swap them", dim.lo, dim.hi)}
	case dim.lo == dim.hi:
		return []*field.Error{field.Invalid(p, s, "the range is empty (lo == hi); for a single value use hpo.Fixed(%v)", dim.lo)}
	}
	isInt := dim.kind == dimInt || dim.kind == dimLogInt || dim.kind == dimIntStep
	if isInt && (math.Abs(dim.lo) > maxExactInt || math.Abs(dim.hi) > maxExactInt) {
		return []*field.Error{field.Invalid(p, s, "integer bounds must be within ±2^53")}
	}
	switch dim.kind {
	case dimLogFloat:
		if dim.lo <= 0 {
			return []*field.Error{field.Invalid(p, s, "a log scale needs lo > 0; use hpo.Float for a range that includes %v", dim.lo)}
		}
	case dimLogInt:
		if dim.lo < 1 {
			return []*field.Error{field.Invalid(p, s, "a log scale needs lo ≥ 1; use hpo.Int for a range that includes %v", dim.lo)}
		}
	case dimFloatStep, dimIntStep:
		if !finite(dim.step) || dim.step <= 0 {
			return []*field.Error{field.Invalid(p, s, "the step must be positive")}
		}
		if n := math.Floor((dim.hi-dim.lo)/dim.step+1e-9) + 1; n > maxValues {
			return []*field.Error{field.Invalid(p, s, "has %v values, more than %d; use a larger step", n, maxValues)}
		} else if n < 2 {
			return []*field.Error{field.Invalid(p, s, "the step is larger than the range, leaving the single value %v; use hpo.Fixed(%v) or a smaller step", dim.lo, dim.lo)}
		} else {
			d.n = int(n)
		}
	}
	if (dim.kind == dimInt || dim.kind == dimLogInt) && dim.hi-dim.lo+1 <= maxValues {
		d.n = int(dim.hi-dim.lo) + 1
	}
	// The bounds must fit the field's type.
	for _, b := range []float64{dim.lo, dim.hi} {
		if _, err := numberTo(b, d.typ); err != nil {
			return []*field.Error{field.Invalid(p, s, "%v", err)}
		}
	}
	return nil
}

// numberTo converts x to a value of numeric type t, or says why it does
// not fit.
func numberTo(x float64, t reflect.Type) (reflect.Value, error) {
	v := reflect.New(t).Elem()
	switch {
	case isFloatKind(t.Kind()):
		if v.OverflowFloat(x) {
			return v, fmt.Errorf("%v does not fit the field's type %v", x, t)
		}
		v.SetFloat(x)
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		if x != math.Trunc(x) || v.OverflowInt(int64(x)) {
			return v, fmt.Errorf("%v does not fit the field's type %v", x, t)
		}
		v.SetInt(int64(x))
	case isIntKind(t.Kind()):
		if x != math.Trunc(x) || x < 0 || v.OverflowUint(uint64(x)) {
			return v, fmt.Errorf("%v does not fit the field's type %v", x, t)
		}
		v.SetUint(uint64(x))
	default:
		return v, fmt.Errorf("the field has type %v, not a number", t)
	}
	return v, nil
}

// convertTo returns v as a value of type t: v itself when assignable, or
// a number converted exactly.
func convertTo(x any, t reflect.Type) (reflect.Value, error) {
	v := reflect.ValueOf(x)
	if !v.IsValid() {
		switch t.Kind() {
		case reflect.Interface, reflect.Pointer, reflect.Map, reflect.Slice:
			return reflect.Zero(t), nil
		}
		return v, fmt.Errorf("nil cannot be a value of the field's type %v", t)
	}
	if v.Type().AssignableTo(t) {
		out := reflect.New(t).Elem()
		out.Set(v)
		return out, nil
	}
	vk := v.Kind()
	if (isFloatKind(vk) || isIntKind(vk)) && (isFloatKind(t.Kind()) || isIntKind(t.Kind())) {
		var f float64
		switch {
		case isFloatKind(vk):
			f = v.Float()
		case vk >= reflect.Int && vk <= reflect.Int64:
			f = float64(v.Int())
		default:
			f = float64(v.Uint())
		}
		out, err := numberTo(f, t)
		if err == nil && out.Convert(v.Type()).Interface() != v.Interface() {
			err = fmt.Errorf("%v does not fit the field's type %v exactly", x, t)
		}
		return out, err
	}
	return v, fmt.Errorf("a value of type %v does not fit the field's type %v", v.Type(), t)
}

// The sampler's view of a searched dimension: every searched field is a
// continuous parameter, uniform or log-uniform, which value() maps back
// to the field's value. Integers, steps and choices are indices rounded
// from [lo-½, hi+½]: goptuna v0.9.0's own integer and categorical
// distributions never draw the top value in random search and draw
// categoricals from the process-wide math/rand source, which cannot be
// seeded, so seeded runs would not repeat.

// bounds returns the continuous range the sampler draws from and whether
// it is log-uniform.
func (d *dimPlan) bounds() (lo, hi float64, log bool) {
	dim := d.dim
	switch dim.kind {
	case dimFloat:
		return dim.lo, dim.hi, false
	case dimLogFloat:
		return dim.lo, dim.hi, true
	case dimInt:
		return dim.lo - 0.5, dim.hi + 0.5, false
	case dimLogInt:
		return dim.lo - 0.5, dim.hi + 0.5, true
	default: // stepped and Choice: an index
		return -0.5, float64(d.n) - 0.5, false
	}
}

// value maps the sampler's x to the field's value.
func (d *dimPlan) value(x float64) (reflect.Value, error) {
	dim := d.dim
	switch dim.kind {
	case dimFloat, dimLogFloat:
		return numberTo(min(max(x, dim.lo), dim.hi), d.typ)
	case dimInt, dimLogInt:
		return numberTo(min(max(math.Round(x), dim.lo), dim.hi), d.typ)
	case dimFixed:
		return convertTo(dim.values[0], d.typ)
	}
	return d.at(d.index(x))
}

// index returns the position that the sampler's x stands for in a
// finite dimension.
func (d *dimPlan) index(x float64) int {
	return int(min(max(math.Round(x), 0), float64(d.n-1)))
}

// at returns value i of a finite dimension (for the grid).
func (d *dimPlan) at(i int) (reflect.Value, error) {
	dim := d.dim
	switch dim.kind {
	case dimChoice:
		return convertTo(dim.values[i], d.typ)
	case dimFixed:
		return convertTo(dim.values[0], d.typ)
	case dimInt, dimLogInt:
		return numberTo(dim.lo+float64(i), d.typ)
	}
	return numberTo(dim.lo+float64(i)*dim.step, d.typ)
}

// build returns a P with each searched field set by set (given the
// field's position among the searched ones) and each fixed field set.
func build[P any](sp *spacePlan, set func(i int, d *dimPlan) (reflect.Value, error)) (P, error) {
	var p P
	pv := reflect.ValueOf(&p).Elem()
	k := 0
	for i := range sp.dims {
		d := &sp.dims[i]
		var v reflect.Value
		var err error
		if d.searched() {
			v, err = set(k, d)
			k++
		} else {
			v, err = d.value(0)
		}
		if err != nil {
			return p, fmt.Errorf("field %s: %w", d.goName, err)
		}
		pv.FieldByName(d.goName).Set(v)
	}
	for i := range sp.dims {
		if d := &sp.dims[i]; !sp.active(d, pv) {
			f := pv.FieldByName(d.goName)
			f.Set(reflect.Zero(f.Type()))
		}
	}
	return p, nil
}
