package pipeline

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The types appendJSON is checked on: every kind it encodes itself, and
// some it leaves to encoding/json.

type encNamedStr string

type encNamedInt int32

type encSmall struct {
	X float64 `json:"x"`
	Y []int   `json:"y,omitempty"`
}

type encAll struct {
	B          bool
	I          int
	I8         int8
	I64        int64
	U          uint
	U8         uint8
	Up         uintptr
	F32        float32
	F64        float64
	S          string
	Named      encNamedStr
	NI         encNamedInt
	P          *int
	PS         *encSmall
	Sl         []string
	Arr        [3]int16
	M          map[string]int
	MI         map[int8]string
	MU         map[uint16]bool
	MNamed     map[encNamedStr]float64
	MAny       map[string]any
	Tagged     int            `json:"tagged"`
	Omit       string         `json:"omit,omitempty"`
	OmitP      *int           `json:",omitempty"`
	OmitF      float64        `json:"omitF,omitempty"`
	OmitSl     []int          `json:"omitSl,omitempty"`
	OmitM      map[string]int `json:"omitM,omitempty"`
	OmitAny    any            `json:"omitAny,omitempty"`
	Dash       int            `json:"-"`
	DashComma  int            `json:"-,"`
	Hyphenated int            `json:"a-b_c"`
	unexported int
	Nested     struct{ X, Y float64 }
	Any        any
	R          Ref[int]
	RP         *Ref[string]
	RS         []Ref[encSmall]
	RAny       Ref[any]
	Ü          int
	Deep       []map[string][]*encSmall
}

// encOthers are types encoding/json has to encode.
type encEmbeds struct {
	encSmall
	Z int
}

type encStringOpt struct {
	N int `json:"n,string"`
}

type encOddTag struct {
	N int `json:"<n>"`
}

// encTwice gives two fields one JSON name (made at run time: go vet
// rejects such a struct type in source).
var encTwice = reflect.StructOf([]reflect.StructField{
	{Name: "A", Type: reflect.TypeFor[int](), Tag: `json:"x"`},
	{Name: "B", Type: reflect.TypeFor[int](), Tag: `json:"x"`},
})

type encWithTime struct {
	T time.Time
}

type encBytes struct {
	B []byte
}

type encRaw struct {
	R json.RawMessage
}

type encNumber struct {
	N json.Number
}

// encGen makes random values of a type, with strings that need escaping,
// floats at encoding/json's cutoffs, and nil and empty values often.
type encGen struct {
	r    *rand.Rand
	refs int64
}

var encStrings = []string{
	"", "plain", `quote " and \ backslash`, "<tag> & amp", "tab\tnew\nline\r", "\x00\x01\x1f\x7f",
	"héllo wörld", "日本語", "bad \xff utf-8 \xc3", "line\u2028sep\u2029", "emoji 😀", `{"$sluice.ref":1}`,
}

var encFloats = []float64{
	0, math.Copysign(0, -1), 1, -1.5, 1e-6, 9.99e-7, 1e21, 9.99e20, 1e-7, 123456789.125, math.MaxFloat64,
	math.SmallestNonzeroFloat64, 3.4e38, 1.17549435e-38, 0.1, 1.0 / 3,
}

func (g *encGen) value(t reflect.Type, depth int) reflect.Value {
	v := reflect.New(t).Elem()
	g.fill(v, depth)
	return v
}

func (g *encGen) fill(v reflect.Value, depth int) {
	r := g.r
	if depth > 4 {
		return // the zero value
	}
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Unix(r.Int64N(1e10), 0).UTC()))
		return
	}
	if v.Type() == reflect.TypeFor[json.Number]() {
		v.SetString([]string{"1", "2.5", "-3e2"}[r.IntN(3)])
		return
	}
	if isRefType(v.Type()) {
		if r.IntN(2) == 0 {
			g.refs++
			settable(v.Field(0)).Set(reflect.ValueOf(&source{id: g.refs * 7919}))
			return
		}
		g.fill(settable(v.Field(1)), depth+1)
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if r.IntN(3) == 0 {
			v.SetInt(0)
		} else {
			v.SetInt(r.Int64() >> r.IntN(64))
			if r.IntN(2) == 0 {
				v.SetInt(-v.Int())
			}
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(r.Uint64() >> r.IntN(64))
	case reflect.Float32, reflect.Float64:
		f := encFloats[r.IntN(len(encFloats))]
		switch r.IntN(6) {
		case 0:
			f = r.NormFloat64() * math.Pow(10, float64(r.IntN(60)-30))
		case 1:
			f = []float64{math.NaN(), math.Inf(1), math.Inf(-1)}[r.IntN(3)]
		}
		v.SetFloat(f)
	case reflect.String:
		s := encStrings[r.IntN(len(encStrings))]
		if r.IntN(3) == 0 {
			s += encStrings[r.IntN(len(encStrings))]
		}
		v.SetString(s)
	case reflect.Pointer:
		if r.IntN(3) > 0 {
			v.Set(reflect.New(v.Type().Elem()))
			g.fill(v.Elem(), depth+1)
		}
	case reflect.Slice:
		if r.IntN(4) == 0 {
			return // nil
		}
		n := r.IntN(4)
		v.Set(reflect.MakeSlice(v.Type(), n, n))
		for i := range n {
			g.fill(v.Index(i), depth+1)
		}
	case reflect.Array:
		for i := range v.Len() {
			g.fill(v.Index(i), depth+1)
		}
	case reflect.Map:
		if r.IntN(4) == 0 {
			return // nil
		}
		v.Set(reflect.MakeMap(v.Type()))
		for range r.IntN(5) {
			v.SetMapIndex(g.value(v.Type().Key(), depth+1), g.value(v.Type().Elem(), depth+1))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				g.fill(v.Field(i), depth+1)
			}
		}
	case reflect.Interface:
		choices := []reflect.Type{
			reflect.TypeFor[int](), reflect.TypeFor[string](), reflect.TypeFor[float64](), reflect.TypeFor[[]any](),
			reflect.TypeFor[map[string]any](), reflect.TypeFor[encSmall](), reflect.TypeFor[*encSmall](),
			reflect.TypeFor[Ref[int]](), reflect.TypeFor[encWithTime](), reflect.TypeFor[[]byte](),
		}
		if r.IntN(4) > 0 {
			v.Set(g.value(choices[r.IntN(len(choices))], depth+1))
		}
	}
}

// settable returns f, an unexported field of an addressable struct, as a
// value that can be set.
func settable(f reflect.Value) reflect.Value {
	return reflect.NewAt(f.Type(), f.Addr().UnsafePointer()).Elem()
}

// encCheck compares appendJSON of v with json.Marshal of it, and reports
// whether appendJSON encoded v itself.
func encCheck(t *testing.T, v reflect.Value) bool {
	t.Helper()
	var in any
	if v.IsValid() {
		in = v.Interface()
	}
	want, err := json.Marshal(in)
	got, ok := appendJSON([]byte("prefix"), v, nil)
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("%T: appendJSON encoded %s, json.Marshal failed: %v", in, got, err)
	}
	if !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("%T:\nappendJSON:   %s\njson.Marshal: prefix%s", in, got, want)
	}
	return true
}

// appendJSON writes what json.Marshal writes, for every value it does not
// leave to encoding/json.
func TestAppendJSONIsJSONMarshal(t *testing.T) {
	g := &encGen{r: rand.New(rand.NewPCG(1, 2))}
	types := []reflect.Type{
		reflect.TypeFor[encAll](), reflect.TypeFor[*encAll](), reflect.TypeFor[[]encAll](),
		reflect.TypeFor[map[string]encAll](), reflect.TypeFor[any](), reflect.TypeFor[encSmall](),
		reflect.TypeFor[Ref[encAll]](), reflect.TypeFor[string](), reflect.TypeFor[float32](),
	}
	encoded, left := 0, 0
	for i := range 3000 {
		typ := types[i%len(types)]
		if encCheck(t, g.value(typ, 0)) {
			encoded++
		} else {
			left++
		}
	}
	t.Logf("%d values encoded, %d left to encoding/json", encoded, left)
	if encoded < 1000 {
		t.Errorf("appendJSON encoded only %d of 3000 values itself", encoded)
	}
	if !encCheck(t, reflect.Value{}) {
		t.Error("appendJSON left nil to encoding/json")
	}
}

// Types with parts that only encoding/json encodes are left to it, as are
// values it rejects; plain types are not.
func TestAppendJSONLeavesTheRestToEncodingJSON(t *testing.T) {
	for _, v := range []any{
		encEmbeds{}, encStringOpt{}, encOddTag{}, reflect.New(encTwice).Elem().Interface(), encWithTime{}, encBytes{}, encRaw{}, encNumber{},
		[]any{time.Time{}}, math.NaN(), []float32{float32(math.Inf(1))}, map[bool]int{}, func() {}, make(chan int),
		map[string]any{"a": []any{complex(1, 2)}}, Ref[time.Time]{},
	} {
		if _, ok := appendJSON(nil, reflect.ValueOf(v), nil); ok {
			t.Errorf("appendJSON encoded %T itself", v)
		}
	}
	type node struct {
		Next *node
		R    Ref[int]
	}
	cycle := &node{}
	cycle.Next = cycle
	if _, ok := appendJSON(nil, reflect.ValueOf(cycle), nil); ok {
		t.Error("appendJSON encoded a cycle")
	}
	for _, v := range []any{encSmall{X: 1}, &encSmall{}, []Ref[int]{{}}, map[string]*Ref[string]{"a": nil}, strings.Repeat("x", 10)} {
		if !encCheck(t, reflect.ValueOf(v)) {
			t.Errorf("appendJSON left %T to encoding/json", v)
		}
	}
}

func FuzzAppendJSON(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3, 42} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		g := &encGen{r: rand.New(rand.NewPCG(seed, seed>>7))}
		for _, typ := range []reflect.Type{reflect.TypeFor[encAll](), reflect.TypeFor[any]()} {
			encCheck(t, g.value(typ, 0))
		}
	})
}

// floatCache writes what appendFloat writes, whether a float is in the
// cache, was pushed out of its slot by another, or was cached as the other
// width.
func TestFloatCacheIsAppendFloat(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	few := []float64{0, math.Copysign(0, -1), 0.1, 0.01, 1, -2.5, 1e-7, 3e21, 1e20, 123456789.123, math.MaxFloat64,
		math.SmallestNonzeroFloat64, float64(float32(0.1)), math.NaN(), math.Inf(1), math.Inf(-1)}
	var c floatCache
	for i := range 200000 {
		var f float64
		switch i % 4 {
		case 0, 1:
			f = few[r.IntN(len(few))]
		case 2:
			f = math.Float64frombits(r.Uint64())
		default:
			f = r.NormFloat64() * math.Pow(10, float64(r.IntN(50)-25))
		}
		bits := 64
		if r.IntN(3) == 0 {
			bits = 32
			f = float64(float32(f))
		}
		got, gotOK := c.append([]byte("x"), f, bits)
		want, wantOK := appendFloat([]byte("x"), f, bits)
		if gotOK != wantOK || !bytes.Equal(got, want) {
			t.Fatalf("floatCache.append(%v, %d) = %q, %v; appendFloat: %q, %v", f, bits, got, gotOK, want, wantOK)
		}
	}
}
