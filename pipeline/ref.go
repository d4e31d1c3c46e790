package pipeline

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/task"
)

// Ref is a typed reference to a value that exists only at run time: a
// step's output, a parameter, an element of a fan-out, a collected list,
// a fact about the run ([RunID], [RunStarted], [RunScheduled]).
// A Ref field in a task's input struct (found by reflection over exported
// fields, as encoding/json does, including nested structs, slices and maps)
// is a data dependency. When the task runs, the field holds the resolved
// value; read it with [Ref.Get].
//
// The zero Ref is a constant holding T's zero value; [Const] makes other
// constants. Refs cross task boundaries as JSON.
type Ref[T any] struct {
	src *source
	val T
}

// Get returns the resolved value. Inside a running task it is the upstream
// value; at definition time it is the constant (or T's zero value).
func (r Ref[T]) Get() T { return r.val }

// String describes r, for messages.
func (r Ref[T]) String() string {
	if r.src == nil {
		return fmt.Sprintf("const(%v)", r.val)
	}
	return r.src.describe()
}

// MarshalJSON encodes the resolved value, or, for a reference not yet
// resolved, a placeholder that package pipeline replaces when it lowers the
// pipeline to a plan.
func (r Ref[T]) MarshalJSON() ([]byte, error) {
	if r.src != nil {
		return appendRefToken(make([]byte, 0, refTokenCap), r.src.id), nil
	}
	return json.Marshal(r.val)
}

// refTokenCap holds the longest token: {"$sluice.ref":<int64>}.
const refTokenCap = len(`{"$sluice.ref":}`) + 20

// appendRefToken appends the JSON of a Ref whose source is id.
func appendRefToken(b []byte, id int64) []byte {
	b = append(b, `{"$sluice.ref":`...)
	b = strconv.AppendInt(b, id, 10)
	return append(b, '}')
}

// UnmarshalJSON decodes a resolved value.
func (r *Ref[T]) UnmarshalJSON(b []byte) error {
	r.src = nil
	return json.Unmarshal(b, &r.val)
}

// Const returns a Ref holding v, for inputs that take a Ref but get a
// value fixed at definition time.
func Const[T any](v T) Ref[T] { return Ref[T]{val: v} }

// refSource is implemented by every Ref[T]; lowering finds Refs with it.
type refSource interface {
	refSrc() (*source, reflect.Type)
}

func (r Ref[T]) refSrc() (*source, reflect.Type) { return r.src, typeOf[T]() }

var refSourceType = reflect.TypeFor[refSource]()

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

type srcKind int

const (
	srcStep    srcKind = iota // output of node
	srcParam                  // value of param
	srcItem                   // element of fan-out node
	srcCollect                // list of elems
	srcRun                    // run outcome (exit handler)
	srcInvalid                // a bad Field projection of a constant
	srcConst                  // a constant, constVal
	srcMeta                   // a fact about the run, meta (runmeta.go)
)

// source says where a Ref's value comes from.
type source struct {
	id   int64
	kind srcKind
	pipe *Pipeline // for srcRun, srcParam
	node *node     // srcStep; srcItem: the fan-out
	// nodeIndex is node's index in its pipeline, for a srcStep (see
	// stepSource): lowering finds the node among its pipeline's
	// without loading it.
	nodeIndex int
	param     *param
	elems     []*source
	// zeroStep marks a Ref from a Step that was never added.
	zeroStep bool
	// typ is the type of the value at the source after path; path selects
	// fields by JSON name.
	typ  reflect.Type
	path []string
	// err describes a bad projection made by Field.
	err string
	// constVal is the value of a srcConst.
	constVal any
	// meta is the fact a srcMeta refers to.
	meta backends.Meta
}

var sourceIDs atomic.Int64

func newSource(s *source) *source {
	s.id = sourceIDs.Add(1)
	return s
}

// stepSource returns a new source of the output of n, a step added to its
// pipeline, whose value has type typ.
//
// It records n's index (which never changes) next to n: lowering reads
// each step's sources in the order of its input, while the nodes they
// name are anywhere in memory, so that loading each to find its index
// and pipeline was a cache miss per Ref (see builder.ownStep).
func stepSource(n *node, typ reflect.Type) *source {
	return newSource(&source{kind: srcStep, node: n, nodeIndex: n.index, typ: typ})
}

func (s *source) describe() string {
	var d string
	switch s.kind {
	case srcStep:
		if s.node == nil {
			d = "a step that was never added"
		} else {
			d = s.node.name
		}
	case srcParam:
		d = "params." + s.param.name
	case srcItem:
		d = "item"
	case srcCollect:
		d = "collect"
	case srcRun:
		d = "run"
	case srcInvalid:
		d = "invalid"
	case srcConst:
		d = fmt.Sprintf("const(%v)", s.constVal)
	case srcMeta:
		d = string(s.meta)
	}
	for _, p := range s.path {
		d += "." + p
	}
	return d
}

// Field returns a reference to the field named name (Go or JSON name) of
// the struct r refers to. The type argument is the field's type and is
// checked by Validate:
//
//	acc := pipeline.Field[float64](eval.Output(), "Accuracy")
func Field[T, S any](r Ref[S], name string) Ref[T] {
	st := typeOf[S]()
	jname, ft, ok := task.FieldByName(st, name)
	var errText string
	switch {
	case !ok:
		errText = fmt.Sprintf("Field(%q): %v has no exported field of that name%s", name, st, fieldSuggestion(st, name))
		jname = name
	case !ft.AssignableTo(typeOf[T]()):
		errText = fmt.Sprintf("Field[%v](%q): the field has type %v", typeOf[T](), name, ft)
	}
	if r.src == nil {
		// Project a constant now.
		var out Ref[T]
		if errText != "" {
			out.src = newSource(&source{kind: srcInvalid, typ: typeOf[T](), err: errText})
			return out
		}
		v := reflect.ValueOf(r.val)
		for v.Kind() == reflect.Pointer && !v.IsNil() {
			v = v.Elem()
		}
		if f := fieldValue(v, name); f.IsValid() {
			out.val, _ = f.Interface().(T)
		}
		return out
	}
	s := *r.src
	s.path = append(append([]string(nil), r.src.path...), jname)
	s.typ = ft
	if s.typ == nil {
		s.typ = typeOf[T]()
	}
	if errText != "" {
		s.err = errText
	}
	return Ref[T]{src: newSource(&s)}
}

func fieldValue(v reflect.Value, name string) reflect.Value {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}
	}
	jname, _, ok := task.FieldByName(v.Type(), name)
	if !ok {
		return reflect.Value{}
	}
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.IsExported() && tagName(f) == jname {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

func tagName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	for i := range len(tag) {
		if tag[i] == ',' {
			tag = tag[:i]
			break
		}
	}
	if tag == "" {
		return f.Name
	}
	return tag
}

// Collect returns a reference to the list of the given steps' outputs, in
// order: the typed fan-in of a static fan-out (see [FanOut]).
func Collect[Out any](steps ...Step[Out]) Ref[[]Out] {
	s := &source{kind: srcCollect, typ: typeOf[[]Out]()}
	for _, st := range steps {
		s.elems = append(s.elems, st.Output().src)
	}
	return Ref[[]Out]{src: newSource(s)}
}

// Param is a typed run-time parameter of a pipeline: its default is set at
// definition time and can be overridden for a run ("-p name=value" on the
// command line, [CompileOptions.Params], workflow arguments on Argo).
type Param[T any] struct{ p *param }

type param struct {
	pipe  *Pipeline
	index int
	name  string
	typ   reflect.Type
	def   any
	ref   *source
}

// NewParam declares a parameter of p named name with default def, and
// returns it. Names are identifiers ([A-Za-z_][A-Za-z0-9_]*).
func NewParam[T any](p *Pipeline, name string, def T) Param[T] {
	mustPipeline(p, "NewParam")
	pm := &param{pipe: p, index: len(p.params), name: name, typ: typeOf[T](), def: def}
	pm.ref = newSource(&source{kind: srcParam, pipe: p, param: pm, typ: pm.typ})
	p.params = append(p.params, pm)
	return Param[T]{p: pm}
}

// Name returns the parameter's name.
func (pm Param[T]) Name() string {
	if pm.p == nil {
		return ""
	}
	return pm.p.name
}

// Default returns the parameter's default value.
func (pm Param[T]) Default() T {
	if pm.p == nil {
		var zero T
		return zero
	}
	v, _ := pm.p.def.(T) // a nil default of an interface type is T's zero value
	return v
}

// Ref returns a reference to the parameter's value in a run.
func (pm Param[T]) Ref() Ref[T] {
	if pm.p == nil {
		return Ref[T]{src: zeroParamSource(typeOf[T]())}
	}
	return Ref[T]{src: pm.p.ref}
}
