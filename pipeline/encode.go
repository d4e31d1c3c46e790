package pipeline

import (
	"encoding"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sluice-ml/sluice/internal/jsonrules"
)

// The JSON of a step's input, written as encoding/json writes it
// (json.Marshal: HTML-safe, map keys sorted), for the types whose
// encoding is plain: booleans, numbers, strings, pointers, interfaces,
// slices, arrays, maps with string or integer keys, structs without
// embedded fields, and Refs. What encoding/json works out for each value
// (its encoder, each field's name and options) is worked out here once
// per type, in an encPlan; encoding a value then only follows its plan.
// A type with anything else (a marshaler of its own, an embedded field,
// a ",string" or "omitzero" option, a []byte, json.Number, a float that
// is NaN or infinite…) is left to encoding/json: appendJSON gives up on
// the value, and the caller encodes it with encoding/json, which also
// reports the errors.

// encPlan is how values of one type are encoded.
type encPlan struct {
	kind encKind
	// elem is the plan of a pointer's, slice's, array's or map's
	// element, or of a Ref's value.
	elem *encPlan
	// fields are a struct's encoded fields, in order.
	fields []encField
	// mayFail is set when a value of the type may reach a part that
	// encoding/json has to encode (an interface's dynamic type aside):
	// the caller then leaves the whole value to encoding/json.
	mayFail bool
}

type encKind uint8

const (
	encOther encKind = iota // encoding/json encodes it
	encBool
	encInt
	encUint
	encFloat32
	encFloat64
	encString
	encPtr
	encIface
	encStruct
	encSlice
	encArray
	encMapString // a map whose keys are of a string kind
	encMapInt    // a map whose keys are of a signed integer kind
	encMapUint   // a map whose keys are of an unsigned integer kind
	encRef       // a Ref[T]: its token, or its constant value
)

// encField is one encoded field of a struct.
type encField struct {
	index     int
	key       string // `"name":`
	omitEmpty bool
	plan      *encPlan
}

var (
	encPlans      sync.Map // reflect.Type -> *encPlan
	marshalerType = reflect.TypeFor[json.Marshaler]()
	textType      = reflect.TypeFor[encoding.TextMarshaler]()
	numberType    = reflect.TypeFor[json.Number]()
)

// encPlanOf returns the plan of t.
func encPlanOf(t reflect.Type) *encPlan {
	if p, ok := encPlans.Load(t); ok {
		return p.(*encPlan)
	}
	built := map[reflect.Type]*encPlan{}
	p := buildEncPlan(t, built)
	for _, q := range built {
		q.mayFail = reachesOther(q, map[*encPlan]bool{})
	}
	for t, q := range built {
		encPlans.LoadOrStore(t, q)
	}
	return p
}

// reachesOther reports whether p, or a plan it reaches, is encOther.
func reachesOther(p *encPlan, seen map[*encPlan]bool) bool {
	if seen[p] {
		return false
	}
	seen[p] = true
	if p.kind == encOther {
		return true
	}
	if p.elem != nil && reachesOther(p.elem, seen) {
		return true
	}
	for _, f := range p.fields {
		if reachesOther(f.plan, seen) {
			return true
		}
	}
	return false
}

func buildEncPlan(t reflect.Type, built map[reflect.Type]*encPlan) *encPlan {
	if p, ok := built[t]; ok {
		return p
	}
	if p, ok := encPlans.Load(t); ok {
		return p.(*encPlan)
	}
	p := &encPlan{}
	built[t] = p
	switch {
	case isRefType(t):
		p.kind = encRef
		p.elem = buildEncPlan(t.Field(1).Type, built)
		return p
	case t.Kind() == reflect.Pointer && isRefType(t.Elem()):
		// A *Ref's MarshalJSON is the Ref's, and a nil one is null.
		p.kind = encPtr
		p.elem = buildEncPlan(t.Elem(), built)
		return p
	}
	if t.Implements(marshalerType) || t.Implements(textType) || t == numberType ||
		(t.Kind() != reflect.Pointer && (reflect.PointerTo(t).Implements(marshalerType) || reflect.PointerTo(t).Implements(textType))) {
		return p // encOther
	}
	switch t.Kind() {
	case reflect.Bool:
		p.kind = encBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.kind = encInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		p.kind = encUint
	case reflect.Float32:
		p.kind = encFloat32
	case reflect.Float64:
		p.kind = encFloat64
	case reflect.String:
		p.kind = encString
	case reflect.Interface:
		p.kind = encIface
	case reflect.Pointer:
		p.kind = encPtr
		p.elem = buildEncPlan(t.Elem(), built)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return p // base64, or the elements' own marshalers
		}
		p.kind = encSlice
		p.elem = buildEncPlan(t.Elem(), built)
	case reflect.Array:
		p.kind = encArray
		p.elem = buildEncPlan(t.Elem(), built)
	case reflect.Map:
		k := t.Key()
		if k.Implements(textType) || reflect.PointerTo(k).Implements(textType) {
			return p
		}
		switch k.Kind() {
		case reflect.String:
			p.kind = encMapString
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			p.kind = encMapInt
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			p.kind = encMapUint
		default:
			return p
		}
		p.elem = buildEncPlan(t.Elem(), built)
	case reflect.Struct:
		fields, ok := encFields(t, built)
		if !ok {
			return p
		}
		p.kind, p.fields = encStruct, fields
	}
	return p
}

// encFields returns the fields encoding/json encodes of struct type t, in
// its order, or false when t has what only encoding/json handles: an
// embedded field, a name given twice, a tag name that is not plain, or
// an option other than omitempty.
func encFields(t reflect.Type, built map[reflect.Type]*encPlan) ([]encField, bool) {
	var fields []encField
	seen := map[string]bool{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			return nil, false
		}
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		omitEmpty := false
		for opts != "" {
			var o string
			o, opts, _ = strings.Cut(opts, ",")
			switch o {
			case "omitempty":
				omitEmpty = true
			case "":
			default:
				return nil, false // string, omitzero, or unknown to us
			}
		}
		if name == "" {
			name = sf.Name
			if !plainName(name, true) {
				return nil, false
			}
		} else if !plainName(name, false) {
			return nil, false
		}
		if seen[name] {
			return nil, false
		}
		seen[name] = true
		fields = append(fields, encField{index: i, key: `"` + name + `":`, omitEmpty: omitEmpty, plan: buildEncPlan(sf.Type, built)})
	}
	return fields, true
}

// plainName reports whether name is a JSON key encoding/json writes as it
// is and takes from a tag as it is: ASCII letters, digits, '_' and '-'
// (and, for a Go field name, any letter or digit, which needs no
// escaping).
func plainName(name string, goName bool) bool {
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		case goName && c >= utf8.RuneSelf && c != '\u2028' && c != '\u2029':
		default:
			return false
		}
	}
	return name != ""
}

// maxEncDepth bounds appendJSON's recursion; a deeper value (perhaps a
// cycle, which encoding/json reports) is left to encoding/json.
const maxEncDepth = 500

// appendJSON appends the JSON of v, as json.Marshal writes it, to dst. It
// returns false when v has a part that only encoding/json encodes.
//
// With a placer, it writes a step's input template instead: each Ref with
// a source as the placeholder of the index placer.place gives it. It
// then also gives up on a Ref that place refuses and on a map key that
// starts with "$sluice", so that the caller can find such problems in the
// JSON as it does in encoding/json's.
func appendJSON(dst []byte, v reflect.Value, placer *builder) ([]byte, bool) {
	if !v.IsValid() {
		return append(dst, "null"...), true
	}
	return appendJSONOf(dst, v, encPlanOf(v.Type()), placer)
}

// appendJSONOf is appendJSON of v, whose type's plan is p (nil if v is
// the invalid Value).
func appendJSONOf(dst []byte, v reflect.Value, p *encPlan, placer *builder) ([]byte, bool) {
	if !v.IsValid() {
		return append(dst, "null"...), true
	}
	if p.mayFail {
		return dst, false
	}
	return appendValue(dst, v, p, 0, placer)
}

func appendValue(b []byte, v reflect.Value, p *encPlan, depth int, placer *builder) ([]byte, bool) {
	if depth > maxEncDepth {
		return b, false
	}
	switch p.kind {
	case encBool:
		return strconv.AppendBool(b, v.Bool()), true
	case encInt:
		return strconv.AppendInt(b, v.Int(), 10), true
	case encUint:
		return strconv.AppendUint(b, v.Uint(), 10), true
	case encFloat32, encFloat64:
		bits := 64
		if p.kind == encFloat32 {
			bits = 32
		}
		if placer != nil {
			return placer.floats.append(b, v.Float(), bits)
		}
		return appendFloat(b, v.Float(), bits)
	case encString:
		return appendString(b, v.String()), true
	case encRef:
		if s := refSourceOf(v); s != nil {
			if placer == nil {
				return appendRefToken(b, s.id), true
			}
			i, ok := placer.place(s)
			if !ok {
				return b, false
			}
			b = append(b, placeholderPrefix...)
			b = strconv.AppendInt(b, int64(i), 10)
			return append(b, '}'), true
		}
		return appendValue(b, v.Field(1), p.elem, depth+1, placer)
	case encPtr:
		if v.IsNil() {
			return append(b, "null"...), true
		}
		return appendValue(b, v.Elem(), p.elem, depth+1, placer)
	case encIface:
		if v.IsNil() {
			return append(b, "null"...), true
		}
		e := v.Elem()
		return appendValue(b, e, encPlanOf(e.Type()), depth+1, placer)
	case encStruct:
		b = append(b, '{')
		first := true
		for i := range p.fields {
			f := &p.fields[i]
			fv := v.Field(f.index)
			if f.omitEmpty && jsonrules.Empty(fv) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, f.key...)
			var ok bool
			if b, ok = appendValue(b, fv, f.plan, depth+1, placer); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	case encSlice:
		if v.IsNil() {
			return append(b, "null"...), true
		}
		return appendElems(b, v, p.elem, depth, placer)
	case encArray:
		return appendElems(b, v, p.elem, depth, placer)
	case encMapString, encMapInt, encMapUint:
		if v.IsNil() {
			return append(b, "null"...), true
		}
		return appendMap(b, v, p, depth, placer)
	}
	return b, false
}

func appendElems(b []byte, v reflect.Value, elem *encPlan, depth int, placer *builder) ([]byte, bool) {
	b = append(b, '[')
	for i := range v.Len() {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendValue(b, v.Index(i), elem, depth+1, placer); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

func appendMap(b []byte, v reflect.Value, p *encPlan, depth int, placer *builder) ([]byte, bool) {
	type entry struct {
		key string
		val reflect.Value
	}
	entries := make([]entry, 0, v.Len())
	for it := v.MapRange(); it.Next(); {
		var key string
		switch k := it.Key(); p.kind {
		case encMapString:
			key = k.String()
		case encMapInt:
			key = strconv.FormatInt(k.Int(), 10)
		default:
			key = strconv.FormatUint(k.Uint(), 10)
		}
		if placer != nil && strings.HasPrefix(key, "$sluice") {
			return b, false // perhaps a key Sluice reserves: the caller checks
		}
		entries = append(entries, entry{key, it.Value()})
	}
	slices.SortFunc(entries, func(x, y entry) int { return strings.Compare(x.key, y.key) })
	b = append(b, '{')
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, e.key)
		b = append(b, ':')
		var ok bool
		if b, ok = appendValue(b, e.val, p.elem, depth+1, placer); !ok {
			return b, false
		}
	}
	return append(b, '}'), true
}

// appendFloat writes f as encoding/json does (as ES6 does: %g with other
// exponent cutoffs, and no padding of the exponent); NaN and the
// infinities, which it rejects, are left to it.
func appendFloat(b []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// e-09 becomes e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// floatCache remembers the JSON of the last floats appendFloat wrote, by
// their bits, in a small table with one slot per hash: the floats of a
// pipeline's inputs (learning rates, grids, thresholds) are mostly a few
// values given to many steps, and writing one is several times slower
// than copying its text. The zero floatCache is empty; one is used by a
// single goroutine (a builder's).
type floatCache struct {
	slots [64]floatText
}

type floatText struct {
	bits uint64 // math.Float64bits of the float written
	f32  bool   // written as a float32
	n    uint8  // length of text; 0 for an empty slot
	text [30]byte
}

// append is appendFloat(b, f, bits), from the cache when f was written
// last in its slot.
func (c *floatCache) append(b []byte, f float64, bits int) ([]byte, bool) {
	u := math.Float64bits(f)
	e := &c.slots[(u*0x9e3779b97f4a7c15)>>58] // Fibonacci hashing: the top 6 bits
	f32 := bits == 32
	if e.n > 0 && e.bits == u && e.f32 == f32 {
		return append(b, e.text[:e.n]...), true
	}
	start := len(b)
	b, ok := appendFloat(b, f, bits)
	if ok && len(b)-start <= len(e.text) {
		e.bits, e.f32 = u, f32
		e.n = uint8(copy(e.text[:], b[start:]))
	}
	return b, ok
}

// appendString writes s as a JSON string as encoding/json does with HTML
// escaping: '"', '\\', control characters, '<', '>' and '&' escaped,
// invalid UTF-8 as U+FFFD, and U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
