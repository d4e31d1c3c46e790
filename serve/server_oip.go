package serve

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// This file is the Open Inference Protocol (v2) over REST: the tensors
// of In and Out, and POST /v2/models/{model}/infer.

// tensorPlan maps one field of In or Out (or the whole value, when it is
// not a struct) to a tensor.
type tensorPlan struct {
	name     string
	index    []int        // the field's index in the struct; nil for the whole value
	ptr      bool         // the field is a pointer to the value
	typ      reflect.Type // the value's type (the pointer's element for ptr)
	elem     reflect.Type // the scalar element type; nil for asJSON
	dims     []int        // per-instance dimensions: nil for a scalar, -1 for a slice's
	datatype string
	asJSON   bool // a BYTES tensor whose elements are the values' JSON text
	optional bool
}

// meta is the plan as the model metadata gives it.
func (p *tensorPlan) meta() tensorMeta {
	shape := []int64{1}
	if p.dims != nil {
		shape = make([]int64, len(p.dims))
		for i, d := range p.dims {
			shape[i] = int64(d)
		}
	}
	return tensorMeta{Name: p.name, Datatype: p.datatype, Shape: shape}
}

type tensorMeta struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

var (
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

// opaque reports whether t encodes itself (json.Marshaler,
// encoding.TextMarshaler): its JSON is not its Go structure.
func opaque(t reflect.Type) bool {
	return t.Implements(jsonMarshaler) || t.Implements(textMarshaler) ||
		reflect.PointerTo(t).Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(textMarshaler)
}

// isRecord reports whether t is a struct whose fields are the JSON
// object's: each becomes a tensor, a form field, a schema property.
func isRecord(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !opaque(t)
}

// planTensors returns the tensors of type t: one per JSON field of a
// struct, else one named name.
func planTensors(t reflect.Type, name string) ([]*tensorPlan, error) {
	if !isRecord(t) {
		return []*tensorPlan{planTensor(name, nil, t, false)}, nil
	}
	var out []*tensorPlan
	for _, f := range jsonFields(t) {
		out = append(out, planTensor(f.name, f.index, f.typ, f.omitEmpty))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s has no exported fields: give it at least one", t)
	}
	return out, nil
}

func planTensor(name string, index []int, t reflect.Type, optional bool) *tensorPlan {
	p := &tensorPlan{name: name, index: index, optional: optional}
	if t.Kind() == reflect.Pointer {
		p.ptr = true
		t = t.Elem()
	}
	p.typ = t
	dt := func(t reflect.Type) string {
		if opaque(t) {
			return ""
		}
		return datatypes[t.Kind()]
	}
	switch {
	case dt(t) != "":
		p.elem = t
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && dt(t.Elem()) != "" && !opaque(t):
		p.elem = t.Elem()
		p.dims = []int{dimOf(t)}
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && !opaque(t) &&
		(t.Elem().Kind() == reflect.Slice || t.Elem().Kind() == reflect.Array) && dt(t.Elem().Elem()) != "" && !opaque(t.Elem()):
		p.elem = t.Elem().Elem()
		p.dims = []int{dimOf(t), dimOf(t.Elem())}
	}
	if p.elem == nil {
		p.asJSON = true
		p.datatype = "BYTES"
		return p
	}
	p.datatype = datatypes[p.elem.Kind()]
	return p
}

// dimOf is the dimension of a slice (-1: any) or an array type.
func dimOf(t reflect.Type) int {
	if t.Kind() == reflect.Array {
		return t.Len()
	}
	return -1
}

// datatypes are the OIP datatypes of Go's scalar kinds.
var datatypes = map[reflect.Kind]string{
	reflect.Bool:    "BOOL",
	reflect.Int8:    "INT8",
	reflect.Int16:   "INT16",
	reflect.Int32:   "INT32",
	reflect.Int64:   "INT64",
	reflect.Int:     "INT64",
	reflect.Uint8:   "UINT8",
	reflect.Uint16:  "UINT16",
	reflect.Uint32:  "UINT32",
	reflect.Uint64:  "UINT64",
	reflect.Uint:    "UINT64",
	reflect.Float32: "FP32",
	reflect.Float64: "FP64",
	reflect.String:  "BYTES",
}

// datatypeClass groups the OIP datatypes whose values convert into each
// other: numbers, booleans, bytes.
func datatypeClass(dt string) string {
	switch dt {
	case "BOOL":
		return "BOOL"
	case "BYTES":
		return "BYTES"
	case "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64", "BF16":
		return "NUMBER"
	}
	return ""
}

// inferRequest is an OIP inference request.
type inferRequest struct {
	ID         string          `json:"id,omitempty"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
	Inputs     []inputTensor   `json:"inputs"`
	Outputs    []struct {
		Name string `json:"name"`
	} `json:"outputs,omitempty"`
}

type inputTensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters json.RawMessage `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

type outputTensor struct {
	Name     string  `json:"name"`
	Shape    []int64 `json:"shape"`
	Datatype string  `json:"datatype"`
	Data     []any   `json:"data"`
}

type inferResponse struct {
	ModelName    string         `json:"model_name"`
	ModelVersion string         `json:"model_version,omitempty"`
	ID           string         `json:"id,omitempty"`
	Outputs      []outputTensor `json:"outputs"`
}

func (s *Server) infer(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkModel(r); err != nil {
		return err
	}
	if he := s.canPredict(); he != nil {
		return he
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var req inferRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return badRequest("the request is not an inference request: %v; send {\"inputs\": [{\"name\": …, \"shape\": […], \"datatype\": …, \"data\": […]}]}", jsonMessage(err))
	}
	outs, n, err := s.c.infer(r.Context(), &req)
	if err != nil {
		return err
	}
	s.met.predictions.Add(float64(n))
	writeJSON(w, http.StatusOK, inferResponse{ModelName: s.c.name(), ModelVersion: s.m.Version, ID: req.ID, Outputs: outs})
	return nil
}

// jsonMessage words a JSON decoding error without Go's "json: " prefix.
func jsonMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "json: ")
}

// infer decodes the request's tensors into inputs, predicts each, and
// encodes the outputs as tensors.
func (rn *runner[In, Out]) infer(ctx context.Context, req *inferRequest) (outs []outputTensor, n int, err error) {
	byName := map[string]*tensorPlan{}
	var names []string
	for _, p := range rn.in {
		byName[p.name] = p
		names = append(names, p.name)
	}
	if len(req.Inputs) == 0 {
		return nil, 0, badRequest("the request has no inputs; model %s takes %s", rn.p.Name, fieldList(names))
	}
	batch, batched := -1, false
	seen := map[string]bool{}
	type decoded struct {
		p    *tensorPlan
		vals []any
		dims []int
	}
	var ins []decoded
	for i, t := range req.Inputs {
		p, ok := byName[t.Name]
		switch {
		case t.Name == "":
			return nil, 0, badRequest("inputs[%d] has no name; model %s takes %s", i, rn.p.Name, fieldList(names))
		case !ok:
			return nil, 0, badRequest("input tensor %q is not an input of model %s; its inputs: %s", t.Name, rn.p.Name, fieldList(names))
		case seen[t.Name]:
			return nil, 0, badRequest("input tensor %q is given twice", t.Name)
		}
		seen[t.Name] = true
		b, isBatched, inner, vals, derr := p.decode(&t)
		if derr != nil {
			return nil, 0, badRequest("input tensor %q: %v", t.Name, derr)
		}
		if batch >= 0 && b != batch {
			return nil, 0, badRequest("input tensor %q has a batch of %d, others of %d: every input needs the same first dimension", t.Name, b, batch)
		}
		batch, batched = b, batched || isBatched
		ins = append(ins, decoded{p, vals, inner})
	}
	if batch == 0 {
		return nil, 0, badRequest("the inputs have a batch of 0: give at least one instance")
	}
	inputs := make([]In, batch)
	for _, d := range ins {
		per := len(d.vals) / batch
		for i := range batch {
			dst := reflect.ValueOf(&inputs[i]).Elem()
			if err := d.p.set(dst, d.vals[i*per:(i+1)*per], d.dims); err != nil {
				at := ""
				if batch > 1 {
					at = fmt.Sprintf(" (instance %d)", i)
				}
				return nil, 0, badRequest("input tensor %q%s: %v", d.p.name, at, err)
			}
		}
	}
	for _, p := range rn.in {
		if !seen[p.name] && !p.optional {
			m := p.meta()
			return nil, 0, badRequest("input tensor %q is missing (datatype %s, shape %v); model %s takes %s", p.name, m.Datatype, m.Shape, rn.p.Name, fieldList(names))
		}
	}
	preds := make([]Out, batch)
	for i := range inputs {
		if preds[i], err = rn.predict(ctx, inputs[i]); err != nil {
			return nil, 0, err
		}
	}
	want := rn.out
	if len(req.Outputs) > 0 {
		want = nil
		var outNames []string
		for _, p := range rn.out {
			outNames = append(outNames, p.name)
		}
		for _, o := range req.Outputs {
			i := slices.IndexFunc(rn.out, func(p *tensorPlan) bool { return p.name == o.Name })
			if i < 0 {
				return nil, 0, badRequest("output tensor %q is not an output of model %s; its outputs: %s", o.Name, rn.p.Name, fieldList(outNames))
			}
			want = append(want, rn.out[i])
		}
	}
	res := make([]outputTensor, 0, len(want))
	for _, p := range want {
		t, err := p.encode(preds, batched)
		if err != nil {
			return nil, 0, &httpError{code: http.StatusInternalServerError, reason: "model", msg: fmt.Sprintf("model %s: output %q: %v", rn.p.Name, p.name, err)}
		}
		res = append(res, t)
	}
	return res, batch, nil
}

// decode checks t against p and returns its batch size, whether it has
// a batch dimension, the dimensions of one instance and its elements,
// flattened in row-major order.
func (p *tensorPlan) decode(t *inputTensor) (batch int, batched bool, inner []int, vals []any, err error) {
	if t.Datatype == "" {
		return 0, false, nil, nil, fmt.Errorf("datatype is required: give %s", p.datatype)
	}
	if c := datatypeClass(t.Datatype); c == "" {
		return 0, false, nil, nil, fmt.Errorf("datatype %q is not an Open Inference Protocol datatype; give %s", t.Datatype, p.datatype)
	} else if c != datatypeClass(p.datatype) {
		return 0, false, nil, nil, fmt.Errorf("datatype %s does not fit this input: give %s", t.Datatype, p.datatype)
	}
	if len(t.Shape) == 0 {
		return 0, false, nil, nil, fmt.Errorf("shape is required: give %s", wantShape(p))
	}
	shape := make([]int, len(t.Shape))
	n := 1
	for i, d := range t.Shape {
		if d < 0 || d > math.MaxInt32 {
			return 0, false, nil, nil, fmt.Errorf("shape %v has a bad dimension %d", t.Shape, d)
		}
		shape[i] = int(d)
		n *= shape[i]
	}
	if len(t.Data) == 0 {
		return 0, false, nil, nil, fmt.Errorf("data is required: give the tensor's %d elements in row-major order", n)
	}
	dec := json.NewDecoder(bytes.NewReader(t.Data))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return 0, false, nil, nil, fmt.Errorf("data: %v", jsonMessage(err))
	}
	vals = flatten(raw, nil)
	if len(vals) != n {
		return 0, false, nil, nil, fmt.Errorf("data has %d elements but shape %v needs %d", len(vals), t.Shape, n)
	}
	switch {
	case p.dims == nil && (len(shape) == 1 || len(shape) == 2 && shape[1] == 1):
		batch = shape[0]
		batched = batch != 1 || len(shape) == 2
	case p.dims != nil && len(shape) == len(p.dims):
		batch, inner = 1, shape
	case p.dims != nil && len(shape) == len(p.dims)+1:
		batch, batched, inner = shape[0], true, shape[1:]
	default:
		return 0, false, nil, nil, fmt.Errorf("shape %v does not fit: give %s", t.Shape, wantShape(p))
	}
	for i, d := range p.dims {
		if d >= 0 && inner[i] != d {
			return 0, false, nil, nil, fmt.Errorf("shape %v does not fit: give %s", t.Shape, wantShape(p))
		}
	}
	return batch, batched, inner, vals, nil
}

// wantShape says which shapes fit p.
func wantShape(p *tensorPlan) string {
	if p.dims == nil {
		return "[1], or [batch] for a batch"
	}
	d := make([]string, len(p.dims))
	for i, x := range p.dims {
		d[i] = "n"
		if x >= 0 {
			d[i] = strconv.Itoa(x)
		}
	}
	one := "[" + strings.Join(d, ", ") + "]"
	return one + ", or [batch, " + one[1:] + " for a batch"
}

// flatten appends the leaves of a JSON value (arrays nested or not) to
// out.
func flatten(v any, out []any) []any {
	if a, ok := v.([]any); ok {
		for _, x := range a {
			out = flatten(x, out)
		}
		return out
	}
	return append(out, v)
}

// set sets p's field of dst (an In) from vals, one instance's elements,
// of dimensions dims.
func (p *tensorPlan) set(dst reflect.Value, vals []any, dims []int) error {
	if p.index != nil {
		dst = dst.FieldByIndex(p.index)
	}
	if p.ptr {
		v := reflect.New(p.typ)
		dst.Set(v)
		dst = v.Elem()
	}
	switch len(p.dims) {
	case 0:
		if p.asJSON {
			s, ok := vals[0].(string)
			if !ok {
				return fmt.Errorf("want a string holding the value's JSON, got %s", jsonKind(vals[0]))
			}
			if err := json.Unmarshal([]byte(s), dst.Addr().Interface()); err != nil {
				return fmt.Errorf("the element is not the JSON of a %s: %v", p.typ, jsonMessage(err))
			}
			return nil
		}
		return setScalar(dst, vals[0], "")
	case 1:
		if dst.Kind() == reflect.Slice {
			dst.Set(reflect.MakeSlice(dst.Type(), len(vals), len(vals)))
		}
		for i, x := range vals {
			if err := setScalar(dst.Index(i), x, fmt.Sprintf("element %d: ", i)); err != nil {
				return err
			}
		}
	case 2:
		rows, cols := dims[0], dims[1]
		if dst.Kind() == reflect.Slice {
			dst.Set(reflect.MakeSlice(dst.Type(), rows, rows))
		}
		for r := range rows {
			row := dst.Index(r)
			if row.Kind() == reflect.Slice {
				row.Set(reflect.MakeSlice(row.Type(), cols, cols))
			}
			for c := range cols {
				if err := setScalar(row.Index(c), vals[r*cols+c], fmt.Sprintf("element [%d, %d]: ", r, c)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// setScalar sets v, of a scalar kind, from a decoded JSON element.
func setScalar(v reflect.Value, x any, at string) error {
	switch v.Kind() {
	case reflect.Bool:
		b, ok := x.(bool)
		if !ok {
			return fmt.Errorf("%swant true or false, got %s", at, jsonKind(x))
		}
		v.SetBool(b)
	case reflect.String:
		s, ok := x.(string)
		if !ok {
			return fmt.Errorf("%swant a string, got %s", at, jsonKind(x))
		}
		v.SetString(s)
	case reflect.Float32, reflect.Float64:
		n, ok := x.(json.Number)
		if !ok {
			return fmt.Errorf("%swant a number, got %s", at, jsonKind(x))
		}
		f, err := strconv.ParseFloat(n.String(), 64)
		if err != nil || v.OverflowFloat(f) {
			return fmt.Errorf("%s%s does not fit a %s", at, n, v.Type())
		}
		v.SetFloat(f)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := x.(json.Number)
		if !ok {
			return fmt.Errorf("%swant an integer, got %s", at, jsonKind(x))
		}
		i, err := integer(n)
		if err != nil || v.OverflowInt(i) {
			return fmt.Errorf("%swant an integer that fits a %s, got %s", at, v.Type(), n)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := x.(json.Number)
		if !ok {
			return fmt.Errorf("%swant an integer, got %s", at, jsonKind(x))
		}
		i, err := integer(n)
		if err != nil || i < 0 || v.OverflowUint(uint64(i)) {
			return fmt.Errorf("%swant an integer ≥ 0 that fits a %s, got %s", at, v.Type(), n)
		}
		v.SetUint(uint64(i))
	default:
		return fmt.Errorf("%scannot set a %s", at, v.Type())
	}
	return nil
}

// integer parses n as an integer; 3.0 is 3, 3.5 an error.
func integer(n json.Number) (int64, error) {
	if i, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
		return i, nil
	}
	f, err := strconv.ParseFloat(n.String(), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, fmt.Errorf("not an integer: %s", n)
	}
	return int64(f), nil
}

// jsonKind names the JSON kind of a decoded element, for messages.
func jsonKind(x any) string {
	switch x := x.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case string:
		return strconv.Quote(x)
	case json.Number:
		return x.String()
	default:
		return "an array or object"
	}
}

// encode returns the tensor of p's field of outs (Outs).
func (p *tensorPlan) encode(outs any, batched bool) (outputTensor, error) {
	ov := reflect.ValueOf(outs)
	b := ov.Len()
	t := outputTensor{Name: p.name, Datatype: p.datatype}
	var inner []int
	for i := range b {
		v := ov.Index(i)
		if p.index != nil {
			v = v.FieldByIndex(p.index)
		}
		if p.ptr {
			if v.IsNil() {
				return t, fmt.Errorf("instance %d: the field is nil; an output tensor needs a value for every instance", i)
			}
			v = v.Elem()
		}
		var dims []int
		switch len(p.dims) {
		case 0:
			x, err := element(v, p.asJSON)
			if err != nil {
				return t, fmt.Errorf("instance %d: %v", i, err)
			}
			t.Data = append(t.Data, x)
		case 1:
			dims = []int{v.Len()}
			for j := range v.Len() {
				x, err := element(v.Index(j), false)
				if err != nil {
					return t, fmt.Errorf("instance %d, element %d: %v", i, j, err)
				}
				t.Data = append(t.Data, x)
			}
		case 2:
			cols := -1
			for r := range v.Len() {
				row := v.Index(r)
				if cols >= 0 && row.Len() != cols {
					return t, fmt.Errorf("instance %d: rows of %d and %d elements; a tensor's rows have the same length", i, cols, row.Len())
				}
				cols = row.Len()
				for c := range row.Len() {
					x, err := element(row.Index(c), false)
					if err != nil {
						return t, fmt.Errorf("instance %d, element [%d, %d]: %v", i, r, c, err)
					}
					t.Data = append(t.Data, x)
				}
			}
			dims = []int{v.Len(), max(cols, 0)}
		}
		if i > 0 && !slices.Equal(dims, inner) {
			return t, fmt.Errorf("instance %d has shape %v, instance 0 %v; a batch's outputs need the same shape", i, dims, inner)
		}
		inner = dims
	}
	if p.dims == nil {
		t.Shape = []int64{int64(b)}
		return t, nil
	}
	if batched {
		t.Shape = append(t.Shape, int64(b))
	}
	for _, d := range inner {
		t.Shape = append(t.Shape, int64(d))
	}
	return t, nil
}

// element returns a scalar as the JSON value of a tensor's data.
func element(v reflect.Value, asJSON bool) (any, error) {
	if asJSON {
		b, err := json.Marshal(v.Interface())
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v, which JSON cannot carry", f)
		}
		return json.Number(strconv.FormatFloat(f, 'g', -1, v.Type().Bits())), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint(), nil
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.String:
		return v.String(), nil
	}
	return nil, fmt.Errorf("cannot encode a %s", v.Type())
}
