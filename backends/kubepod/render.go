package kubepod

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-ml/sluice/internal/jsonrules"
)

// Render writes obj, an API object, as YAML: what sigs.k8s.io/yaml writes
// for it (keys sorted, so the output is deterministic), without what the
// Go types marshal although it says nothing: the status, null values
// (such as the creation timestamp), empty "resources", "metadata",
// "inputs", "outputs" and "arguments" objects, and empty names. Labels,
// annotations, node selectors and data are written as they are.
//
// Unlike sigs.k8s.io/yaml, Render does not fold long lines: a scalar is
// written on one line however long it is (a string with line breaks is
// still a literal block), so that long expressions stay readable and can
// be searched for. Otherwise the output is byte for byte what
// sigs.k8s.io/yaml (go-yaml v2) writes for the same pruned object.
//
// Render walks obj once, by reflection, as encoding/json would (field
// names, omitempty, embedded structs, json.Marshaler and
// encoding.TextMarshaler), and writes each scalar in the style go-yaml
// chooses for it. An error names the path of the field it comes from.
//
// The output is deterministic, also where go-yaml's is not: its order of
// a map's keys is not transitive for some keys with digits ("1e3" <
// "09" < "12:30" < "1e3"), so that it changes with the map's iteration
// order; Render sorts such keys from their byte order. Two keys of a map
// that encoding/json writes alike (a MarshalText that gives two keys the
// same text) are an error.
func Render(obj any) ([]byte, error) {
	e := getEmitter()
	defer putEmitter(e)
	if err := e.document(obj); err != nil {
		return nil, err
	}
	if n := len(e.buf); n > pooledBuffer && cap(e.buf)-n <= n/4 {
		// A large document whose buffer it nearly fills: the buffer
		// becomes the result, rather than a copy of it beside a buffer
		// the pool would keep until two collections later.
		out := e.buf
		e.buf = nil
		return out, nil
	}
	return bytes.Clone(e.buf), nil
}

// pooledBuffer is the largest buffer an emitter keeps in the pool: a
// larger one, grown for an outlier, would stay in memory for nothing.
const pooledBuffer = 1 << 20

// RenderTo writes what Render returns for obj to w. It renders into a
// buffer it reuses across calls, so that a caller that writes documents
// out does not allocate one each.
func RenderTo(w io.Writer, obj any) error {
	e := getEmitter()
	defer putEmitter(e)
	if err := e.document(obj); err != nil {
		return err
	}
	_, err := w.Write(e.buf)
	return err
}

// Emitters are reused, for their buffers: a document is written once,
// into a buffer that has grown to the size of the documents before it,
// and Render copies it out.
func getEmitter() *emitter {
	e := emitters.Get().(*emitter)
	if e.buf == nil {
		e.buf = make([]byte, 0, 64<<10)
	}
	e.buf = e.buf[:0]
	return e
}

func putEmitter(e *emitter) {
	if cap(e.buf) > pooledBuffer {
		e.buf = nil // let it go; the next use starts a small one
	}
	for i := range e.entries {
		clear(e.entries[i][:cap(e.entries[i])]) // let go of the values
	}
	emitters.Put(e)
}

var emitters = sync.Pool{New: func() any { return &emitter{buf: make([]byte, 0, 64<<10)} }}

// emptyObject reports whether k is a key whose empty object Render
// leaves out.
func emptyObject(k string) bool {
	switch k {
	case "resources", "metadata", "inputs", "outputs", "arguments":
		return true
	}
	return false
}

// stringMap reports whether k is the key of a user-written string map,
// which Render writes as it is (a label "name" may be empty): nothing
// below it is left out, and its numbers are what go-yaml writes for a
// json.Number.
func stringMap(k string) bool {
	switch k {
	case "labels", "annotations", "nodeSelector", "matchLabels", "data":
		return true
	}
	return false
}

// maxDepth bounds the nesting Render follows, which catches cycles.
const maxDepth = 10000

// An emitter writes one YAML document. Its state is go-yaml's emitter's
// (column, whitespace and indention; the indent is passed down), so that
// it lays out blocks and scalars as go-yaml does, without go-yaml's event
// queue: the walk writes each node as it meets it. What the pruning may
// leave out (a null, an empty name or object) is written and taken back
// (see mark and reset) when the walk finds out.
type emitter struct {
	buf        []byte
	column     int
	whitespace bool
	indention  bool
	depth      int
	entries    [][]mapEntry // reused, per map depth
	mapDepth   int
	scratch    []byte
}

func (e *emitter) document(obj any) error {
	e.column, e.whitespace, e.indention, e.depth, e.mapDepth = 0, true, true, 0, 0
	v := reflect.ValueOf(obj)
	if !v.IsValid() {
		e.plainScalar("null")
	} else if _, err := e.node(planOf(v.Type()), v, ctx{indent: -1, top: true}); err != nil {
		var pe *pathError
		if errors.As(err, &pe) {
			return pe
		}
		return &pathError{err: err}
	}
	e.writeIndent(-1)
	return nil
}

// ctx is where a node goes.
type ctx struct {
	// indent is go-yaml's indent when the node starts: -1 at the root,
	// the indent of the keys of the mapping or of the items of the
	// sequence the node is in.
	indent int
	// mapping: the node is a mapping's value (a sequence there is not
	// indented past its key).
	mapping bool
	// top: the node is the document (its "status" is left out).
	top bool
	// raw: the node is under a user string map: nothing is left out.
	raw bool
	// dropNull, dropEmptyString, dropEmptyObject: the node is a value of
	// a mapping, left out if null, if "" (its key is "name") or if an
	// empty object (its key is one of the emptyObjects).
	dropNull, dropEmptyString, dropEmptyObject bool
	// quoted: the field's tag has the ",string" option.
	quoted bool
}

func (c ctx) scalarIndent() int {
	if c.indent < 0 {
		return 2
	}
	return c.indent + 2
}

// child is the context of a node inside the node of c.
func (c ctx) child(indent int, mapping bool) ctx {
	return ctx{indent: indent, mapping: mapping, raw: c.raw}
}

// mark is the emitter's state at a point of the output.
type mark struct {
	n                     int
	column                int
	whitespace, indention bool
}

func (e *emitter) mark() mark { return mark{len(e.buf), e.column, e.whitespace, e.indention} }

func (e *emitter) reset(m mark) {
	e.buf, e.column, e.whitespace, e.indention = e.buf[:m.n], m.column, m.whitespace, m.indention
}

// node writes v, whose plan is p, in context c. It reports dropped when v
// is left out (see ctx), having written nothing.
func (e *emitter) node(p *plan, v reflect.Value, c ctx) (dropped bool, err error) {
	if p.marshal != 0 {
		switch p.marshal {
		case marshalAddrJSON:
			if v.CanAddr() {
				return e.marshalJSON(v.Addr(), v.Type(), c)
			}
			if p.json {
				return e.marshalJSON(v, v.Type(), c)
			}
			if p.text {
				return e.marshalText(v, c)
			}
		case marshalJSON:
			return e.marshalJSON(v, v.Type(), c)
		case marshalAddrText:
			if v.CanAddr() {
				return e.marshalText(v.Addr(), c)
			}
			if p.text {
				return e.marshalText(v, c)
			}
		case marshalText:
			return e.marshalText(v, c)
		}
	}
	switch p.kind {
	case kindString:
		s := v.String()
		if c.quoted {
			// encoding/json writes the string's JSON form as a string.
			b, err := json.Marshal(s)
			if err != nil {
				return false, err
			}
			return e.str(string(b), c), nil
		}
		return e.str(validUTF8(s), c), nil
	case kindBool:
		if c.quoted {
			return e.str(strconv.FormatBool(v.Bool()), c), nil
		}
		if v.Bool() {
			e.plainScalar("true")
		} else {
			e.plainScalar("false")
		}
		return false, nil
	case kindInt:
		b := strconv.AppendInt(e.scratch[:0], v.Int(), 10)
		e.scratch = b
		if c.quoted {
			return e.str(string(b), c), nil
		}
		e.plainBytes(b)
		return false, nil
	case kindUint:
		u := v.Uint()
		b := strconv.AppendUint(e.scratch[:0], u, 10)
		e.scratch = b
		if c.quoted {
			return e.str(string(b), c), nil
		}
		if c.raw && u > math.MaxInt64 {
			return e.number(string(b), c), nil
		}
		e.plainBytes(b)
		return false, nil
	case kindFloat:
		f := v.Float()
		bits := 64
		if v.Kind() == reflect.Float32 {
			bits = 32
		}
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return false, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, bits))
		}
		s := jsonFloat(f, bits)
		if c.quoted {
			return e.str(s, c), nil
		}
		return e.number(s, c), nil
	case kindNumber:
		s := v.String()
		if s == "" {
			s = "0"
		}
		if !isValidNumber(s) {
			return false, fmt.Errorf("json: invalid number literal %q", s)
		}
		if c.quoted {
			return e.str(s, c), nil
		}
		return e.number(s, c), nil
	case kindInterface:
		if v.IsNil() {
			return e.null(c), nil
		}
		v = v.Elem()
		c.quoted = false
		return e.deeper(planOf(v.Type()), v, c)
	case kindPointer:
		if v.IsNil() {
			return e.null(c), nil
		}
		return e.deeper(p.elem, v.Elem(), c)
	case kindStruct:
		return e.structNode(p, v, c)
	case kindMap:
		if v.IsNil() {
			return e.null(c), nil
		}
		return e.mapNode(p, v, c)
	case kindSlice:
		if v.IsNil() {
			return e.null(c), nil
		}
		return e.seqNode(p, v, c)
	case kindArray:
		return e.seqNode(p, v, c)
	case kindBytes:
		if v.IsNil() {
			return e.null(c), nil
		}
		return e.str(base64.StdEncoding.EncodeToString(v.Bytes()), c), nil
	}
	return false, fmt.Errorf("json: unsupported type: %s", v.Type())
}

// deeper is node one level down a pointer or interface.
func (e *emitter) deeper(p *plan, v reflect.Value, c ctx) (bool, error) {
	if e.depth++; e.depth > maxDepth {
		return false, fmt.Errorf("json: unsupported value: encountered a cycle via %s (or nesting deeper than %d)", v.Type(), maxDepth)
	}
	d, err := e.node(p, v, c)
	e.depth--
	return d, err
}

// null writes a null, unless it is left out.
func (e *emitter) null(c ctx) bool {
	if c.dropNull && !c.raw {
		return true
	}
	e.plainScalar("null")
	return false
}

// emptyObject writes an empty mapping, unless it is left out.
func (e *emitter) emptyObject(c ctx) bool {
	if c.dropEmptyObject && !c.raw {
		return true
	}
	e.indicator("{", true, true, false)
	e.indicator("}", false, false, false)
	return false
}

// str writes a string scalar, unless it is left out.
func (e *emitter) str(s string, c ctx) bool {
	if s == "" && c.dropEmptyString && !c.raw {
		return true
	}
	e.scalar(s, c.scalarIndent(), false)
	return false
}

// number writes the JSON number s as the YAML scalar Render always wrote
// for it: go-yaml's form of the Go value the number decodes to (an int,
// else a uint64, else a float64; under a string map go-yaml's form of a
// json.Number: an int64, else a float64), or s as a string when none
// holds it.
func (e *emitter) number(s string, c ctx) bool {
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		e.plainBytes(strconv.AppendInt(e.scratch[:0], i, 10))
		return false
	}
	if !c.raw {
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			e.plainBytes(strconv.AppendUint(e.scratch[:0], u, 10))
			return false
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		e.plainBytes(strconv.AppendFloat(e.scratch[:0], f, 'g', -1, 64))
		return false
	}
	return e.str(s, c)
}

// jsonFloat is encoding/json's text of a float.
func jsonFloat(f float64, bits int) string {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b := strconv.AppendFloat(nil, f, format, -1, bits)
	if format == 'e' {
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return string(b)
}

var marshalerType = reflect.TypeFor[json.Marshaler]()

// marshalJSON writes what m's MarshalJSON returns, as Render always did:
// decoded, then written with the same rules as any value.
func (e *emitter) marshalJSON(m reflect.Value, t reflect.Type, c ctx) (bool, error) {
	if m.Kind() == reflect.Pointer && m.IsNil() {
		return e.null(c), nil
	}
	jm, ok := reflect.TypeAssert[json.Marshaler](m)
	if !ok {
		return e.null(c), nil
	}
	b, err := jm.MarshalJSON()
	if err != nil {
		return false, fmt.Errorf("json: error calling MarshalJSON for type %s: %w", t, err)
	}
	return e.jsonValue(b, t, c)
}

// jsonValue writes the JSON value b, returned by the MarshalJSON of t.
func (e *emitter) jsonValue(b []byte, t reflect.Type, c ctx) (bool, error) {
	b = trimJSONSpace(b)
	if len(b) > 0 {
		switch b[0] {
		case '"':
			if s, ok := e.unquoteJSON(b); ok {
				return e.str(s, c), nil
			}
		case 'n':
			if string(b) == "null" {
				return e.null(c), nil
			}
		case 't':
			if string(b) == "true" {
				e.plainScalar("true")
				return false, nil
			}
		case 'f':
			if string(b) == "false" {
				e.plainScalar("false")
				return false, nil
			}
		case '{', '[':
		default:
			if isValidNumber(string(b)) {
				return e.number(string(b), c), nil
			}
		}
	}
	if !json.Valid(b) {
		return false, fmt.Errorf("json: error calling MarshalJSON for type %s: invalid JSON: %.40q", t, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return false, fmt.Errorf("json: error calling MarshalJSON for type %s: %w", t, err)
	}
	if x == nil {
		return e.null(c), nil
	}
	v := reflect.ValueOf(x)
	c.quoted = false
	return e.deeper(planOf(v.Type()), v, c)
}

func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// unquoteJSON decodes the JSON string b when it is simple: escapes of
// the Basic Multilingual Plane outside the surrogates, and valid UTF-8.
// It decodes into e.scratch.
func (e *emitter) unquoteJSON(b []byte) (string, bool) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return "", false
	}
	in := b[1 : len(b)-1]
	esc := false
	for i := 0; i < len(in); i++ {
		switch c := in[i]; {
		case c < 0x20 || c == '"':
			return "", false
		case c == '\\':
			esc = true
			i++ // checked below
		case c >= utf8.RuneSelf:
			esc = true
		}
	}
	if !esc {
		return string(in), true
	}
	if !utf8.Valid(in) {
		return "", false
	}
	out := e.scratch[:0]
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i++; i == len(in) {
			return "", false
		}
		switch in[i] {
		case '"', '\\', '/':
			out = append(out, in[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 >= len(in) {
				return "", false
			}
			var r rune
			for _, h := range in[i+1 : i+5] {
				switch {
				case h >= '0' && h <= '9':
					r = r<<4 | rune(h-'0')
				case h >= 'a' && h <= 'f':
					r = r<<4 | rune(h-'a'+10)
				case h >= 'A' && h <= 'F':
					r = r<<4 | rune(h-'A'+10)
				default:
					return "", false
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				return "", false
			}
			out = utf8.AppendRune(out, r)
			i += 4
		default:
			return "", false
		}
	}
	e.scratch = out
	return string(out), true
}

// marshalText writes what m's MarshalText returns, as a string.
func (e *emitter) marshalText(m reflect.Value, c ctx) (bool, error) {
	if m.Kind() == reflect.Pointer && m.IsNil() {
		return e.null(c), nil
	}
	tm, ok := reflect.TypeAssert[encoding.TextMarshaler](m)
	if !ok {
		return e.null(c), nil
	}
	b, err := tm.MarshalText()
	if err != nil {
		return false, fmt.Errorf("json: error calling MarshalText for type %s: %w", m.Type(), err)
	}
	return e.str(validUTF8(string(b)), c), nil
}

// validUTF8 is s as encoding/json writes it: each byte that is not part
// of valid UTF-8 replaced by U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// structNode writes a struct as a block mapping of its fields, in
// go-yaml's order of their names, without those left out.
func (e *emitter) structNode(p *plan, v reflect.Value, c ctx) (bool, error) {
	indent := c.indent + 2
	if c.indent < 0 {
		indent = 0
	}
	written := 0
Fields:
	for i := range p.fields {
		f := &p.fields[i]
		var fv reflect.Value
		if len(f.index) == 1 {
			fv = v.Field(f.index[0])
		} else {
			fv = v
			for _, x := range f.index {
				if fv.Kind() == reflect.Pointer {
					if fv.IsNil() {
						continue Fields
					}
					fv = fv.Elem()
				}
				fv = fv.Field(x)
			}
		}
		if f.omitEmpty && jsonrules.Empty(fv) || f.omitZero && f.isZero(fv) {
			continue
		}
		if c.top && f.name == "status" {
			continue
		}
		if !c.raw {
			// What is left out anyway, before writing its key.
			switch fv.Kind() {
			case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
				if fv.IsNil() && f.plan.key != keyUnsupported {
					continue
				}
			case reflect.String:
				if f.flags&flagName != 0 && fv.Len() == 0 && f.plan.marshal == 0 && f.plan.kind == kindString && !f.quoted {
					continue
				}
			}
		}
		m := e.mark()
		e.writeIndent(indent)
		if f.key != nil {
			e.buf = append(e.buf, f.key...)
			e.column += f.keyColumns
			e.whitespace, e.indention = false, false
		} else {
			e.key(f.name, indent)
		}
		cc := ctx{indent: indent, mapping: true, raw: c.raw || f.flags&flagStringMap != 0, quoted: f.quoted}
		if !c.raw {
			cc.dropNull = true
			cc.dropEmptyString = f.flags&flagName != 0
			cc.dropEmptyObject = f.flags&flagEmptyObject != 0
		}
		d, err := e.node(f.plan, fv, cc)
		if err != nil {
			return false, at(err, f.name)
		}
		if d {
			e.reset(m)
			continue
		}
		written++
	}
	if written == 0 {
		return e.emptyObject(c), nil
	}
	return false, nil
}

// mapEntry is a map's entry, its key as encoding/json writes it (raw:
// before invalid UTF-8 is replaced).
type mapEntry struct {
	key, raw string
	v        reflect.Value
}

func anyDigits(entries []mapEntry) bool {
	for _, en := range entries {
		for i := 0; i < len(en.key); i++ {
			if c := en.key[i]; c >= '0' && c <= '9' || c >= utf8.RuneSelf {
				return true
			}
		}
	}
	return false
}

// lastOfEach keeps, of the entries whose keys encoding/json writes alike
// once it has replaced invalid UTF-8, the one a decode of its output
// keeps: the last in the order it writes them, of their raw keys.
func lastOfEach(entries []mapEntry) []mapEntry {
	slices.SortFunc(entries, func(a, b mapEntry) int { return strings.Compare(a.raw, b.raw) })
	last := make(map[string]int, len(entries))
	for i, en := range entries {
		last[en.key] = i
	}
	out := entries[:0]
	for i, en := range entries {
		if last[en.key] == i {
			out = append(out, en)
		}
	}
	return out
}

// mapNode writes a map as a block mapping, its keys in go-yaml's order.
func (e *emitter) mapNode(p *plan, v reflect.Value, c ctx) (bool, error) {
	if e.depth++; e.depth > maxDepth {
		return false, fmt.Errorf("json: unsupported value: encountered a cycle via %s (or nesting deeper than %d)", v.Type(), maxDepth)
	}
	defer func() { e.depth-- }()
	if p.key == keyUnsupported {
		return false, fmt.Errorf("json: unsupported type: %s", v.Type())
	}
	if v.Len() == 0 {
		return e.emptyObject(c), nil
	}
	if e.mapDepth == len(e.entries) {
		e.entries = append(e.entries, nil)
	}
	entries := e.entries[e.mapDepth][:0]
	e.mapDepth++
	defer func() { e.mapDepth-- }()
	it := v.MapRange()
	coerced := false
	for it.Next() {
		k, err := p.keyString(it.Key())
		if err != nil {
			return false, fmt.Errorf("json: encoding error for type %q: %q", v.Type().String(), err.Error())
		}
		vk := validUTF8(k)
		coerced = coerced || len(vk) != len(k)
		entries = append(entries, mapEntry{key: vk, raw: k, v: it.Value()})
	}
	if coerced {
		entries = lastOfEach(entries)
	} else if len(entries) > 2 && anyDigits(entries) {
		// go-yaml's order is not transitive for some keys with digits
		// ("1e3" < "09" < "12:30" < "1e3"): it sorts them in the order
		// the map gives them, at random; this sorts them from one order.
		slices.SortFunc(entries, func(a, b mapEntry) int { return strings.Compare(a.raw, b.raw) })
	}
	slices.SortFunc(entries, func(a, b mapEntry) int { return keyCompare(a.key, b.key) })
	e.entries[e.mapDepth-1] = entries
	indent := c.indent + 2
	if c.indent < 0 {
		indent = 0
	}
	written := 0
	for i := range entries {
		k, ev := entries[i].key, entries[i].v
		if c.top && k == "status" {
			continue
		}
		if i > 0 && k == entries[i-1].key {
			// Two keys that encoding/json writes alike, in no set order
			// (MarshalText gives both the same text).
			return false, at(fmt.Errorf("json: two keys of %s written as %q", v.Type(), k), k)
		}
		if !c.raw {
			switch ev.Kind() {
			case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
				if ev.IsNil() && p.elem.key != keyUnsupported {
					continue
				}
			}
		}
		m := e.mark()
		e.writeIndent(indent)
		e.key(k, indent)
		cc := ctx{indent: indent, mapping: true, raw: c.raw || stringMap(k)}
		if !c.raw {
			cc.dropNull = true
			cc.dropEmptyString = k == "name"
			cc.dropEmptyObject = emptyObject(k)
		}
		d, err := e.node(p.elem, ev, cc)
		if err != nil {
			return false, at(err, k)
		}
		if d {
			e.reset(m)
			continue
		}
		written++
	}
	if written == 0 {
		return e.emptyObject(c), nil
	}
	return false, nil
}

// seqNode writes a slice or an array as a block sequence.
func (e *emitter) seqNode(p *plan, v reflect.Value, c ctx) (bool, error) {
	n := v.Len()
	if n == 0 {
		e.indicator("[", true, true, false)
		e.indicator("]", false, false, false)
		return false, nil
	}
	if e.depth++; e.depth > maxDepth {
		return false, fmt.Errorf("json: unsupported value: encountered a cycle via %s (or nesting deeper than %d)", v.Type(), maxDepth)
	}
	defer func() { e.depth-- }()
	// go-yaml's indent of a block sequence: not past its key.
	indent := c.indent + 2
	switch {
	case c.indent < 0:
		indent = 0
	case c.mapping && !e.indention:
		indent = c.indent
	}
	for i := range n {
		e.writeIndent(indent)
		e.indicator("-", true, false, true)
		if _, err := e.node(p.elem, v.Index(i), c.child(indent, false)); err != nil {
			return false, atIndex(err, i)
		}
	}
	return false, nil
}

// key writes a mapping's key k and its ":" at indent, as go-yaml does:
// a simple key, or, when k is long or holds a line break, a complex one
// ("? k" and ":" on the next line).
func (e *emitter) key(k string, indent int) {
	a := analyze(k)
	if !a.multiline && len(k) <= 128 {
		e.scalarAnalyzed(k, a, indent+2, true)
		e.indicator(":", false, false, false)
		return
	}
	e.indicator("?", true, false, true)
	e.scalarAnalyzed(k, a, indent+2, false)
	e.writeIndent(indent)
	e.indicator(":", true, false, true)
}

// pathError is an error of Render, with the path of the field it comes
// from.
type pathError struct {
	path []string // innermost first
	err  error
}

func (p *pathError) Error() string {
	var b strings.Builder
	b.WriteString("kubepod: render")
	if len(p.path) > 0 {
		b.WriteByte(' ')
		for i := len(p.path) - 1; i >= 0; i-- {
			s := p.path[i]
			if i == len(p.path)-1 && s[0] == '.' {
				s = s[1:]
			}
			b.WriteString(s)
		}
	}
	b.WriteString(": ")
	b.WriteString(p.err.Error())
	return b.String()
}

func (p *pathError) Unwrap() error { return p.err }

func at(err error, key string) error {
	seg := "." + key
	for _, r := range key {
		if !(r == '_' || r == '-' || r == '/' || unicode.IsLetter(r) || unicode.IsDigit(r)) {
			seg = "[" + strconv.Quote(key) + "]"
			break
		}
	}
	if key == "" {
		seg = `[""]`
	}
	return atSegment(err, seg)
}

func atIndex(err error, i int) error { return atSegment(err, "["+strconv.Itoa(i)+"]") }

func atSegment(err error, seg string) error {
	var pe *pathError
	if errors.As(err, &pe) {
		pe.path = append(pe.path, seg)
		return pe
	}
	return &pathError{path: []string{seg}, err: err}
}

// Output, as go-yaml's emitter writes it.

// writeIndent starts a line at indent, unless the output is there.
func (e *emitter) writeIndent(indent int) {
	if indent < 0 {
		indent = 0
	}
	if !e.indention || e.column > indent || (e.column == indent && !e.whitespace) {
		e.buf = append(e.buf, '\n')
		e.column = 0
	}
	for e.column < indent {
		n := min(indent-e.column, len(spaces))
		e.buf = append(e.buf, spaces[:n]...)
		e.column += n
	}
	e.whitespace, e.indention = true, true
}

var spaces = bytes.Repeat([]byte{' '}, 256)

// indicator writes an indicator (ASCII).
func (e *emitter) indicator(s string, needWhitespace, isWhitespace, isIndention bool) {
	if needWhitespace && !e.whitespace {
		e.buf = append(e.buf, ' ')
		e.column++
	}
	e.buf = append(e.buf, s...)
	e.column += len(s)
	e.whitespace = isWhitespace
	e.indention = e.indention && isIndention
}

// plainScalar writes a plain scalar that needs no check (a number, a
// bool, null).
func (e *emitter) plainScalar(s string) {
	if !e.whitespace {
		e.buf = append(e.buf, ' ')
		e.column++
	}
	e.buf = append(e.buf, s...)
	e.column += len(s)
	e.whitespace, e.indention = false, false
}

func (e *emitter) plainBytes(b []byte) {
	if !e.whitespace {
		e.buf = append(e.buf, ' ')
		e.column++
	}
	e.buf = append(e.buf, b...)
	e.column += len(b)
	e.whitespace, e.indention = false, false
}

type scalarStyle uint8

const (
	plainStyle scalarStyle = iota
	singleQuotedStyle
	doubleQuotedStyle
	literalStyle
)

// scalar writes the string s, whose lines (if any) go at indent, in the
// style go-yaml chooses for it; simpleKey: s is a simple key.
func (e *emitter) scalar(s string, indent int, simpleKey bool) {
	e.scalarAnalyzed(s, analyze(s), indent, simpleKey)
}

func (e *emitter) scalarAnalyzed(s string, a analysis, indent int, simpleKey bool) {
	switch styleOf(s, a, simpleKey) {
	case plainStyle:
		if !e.whitespace {
			e.buf = append(e.buf, ' ')
			e.column++
		}
		e.buf = append(e.buf, s...)
		e.column += a.columns
		e.whitespace, e.indention = false, false
	case singleQuotedStyle:
		e.singleQuoted(s, a, indent)
	case doubleQuotedStyle:
		e.doubleQuoted(s)
	case literalStyle:
		e.literal(s, indent)
	}
}

// styleOf is the style go-yaml writes the string s in: go-yaml's
// encoder asks for a literal block if s has a "\n", for a plain scalar if
// that would read back as the same string, for a double-quoted one
// otherwise; its emitter then falls back from plain to single-quoted to
// double-quoted, and from literal to double-quoted, where the style
// cannot hold s.
func styleOf(s string, a analysis, simpleKey bool) scalarStyle {
	var style scalarStyle
	switch {
	case strings.IndexByte(s, '\n') >= 0:
		style = literalStyle
	case plainIsString(s) && !isBase60Float(s):
		style = plainStyle
	default:
		style = doubleQuotedStyle
	}
	if simpleKey && a.multiline {
		style = doubleQuotedStyle
	}
	if style == plainStyle {
		if !a.blockPlain || len(s) == 0 && simpleKey {
			style = singleQuotedStyle
		}
	}
	if style == singleQuotedStyle && !a.singleQuoted {
		style = doubleQuotedStyle
	}
	if style == literalStyle && (!a.block || simpleKey) {
		style = doubleQuotedStyle
	}
	return style
}

// analysis is what go-yaml's emitter finds out about a scalar
// (yaml_emitter_analyze_scalar), in block context.
type analysis struct {
	multiline, blockPlain, singleQuoted, block bool
	columns                                    int // its characters
}

func analyze(s string) analysis {
	if len(s) == 0 {
		return analysis{blockPlain: true, singleQuoted: true}
	}
	var (
		blockIndicators, lineBreaks, special                                  bool
		leadingSpace, leadingBreak, trailingSpace, trailingBreak              bool
		breakSpace, spaceBreak, previousSpace, previousBreak, precededByBlank bool
		columns                                                               int
	)
	if len(s) >= 3 && (s[:3] == "---" || s[:3] == "...") {
		blockIndicators = true
	}
	precededByBlank = true
	for i, w := 0, 0; i < len(s); i += w {
		c := s[i]
		w = width(c)
		columns++
		followedByBlank := i+w >= len(s) || s[i+w] == ' ' || s[i+w] == '\t'
		if i == 0 {
			switch c {
			case '#', ',', '[', ']', '{', '}', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`':
				blockIndicators = true
			case '?', ':', '-':
				if followedByBlank {
					blockIndicators = true
				}
			}
		} else {
			switch c {
			case ':':
				if followedByBlank {
					blockIndicators = true
				}
			case '#':
				if precededByBlank {
					blockIndicators = true
				}
			}
		}
		if !isPrintable(s, i) {
			special = true
		}
		if c == ' ' {
			if i == 0 {
				leadingSpace = true
			}
			if i+w == len(s) {
				trailingSpace = true
			}
			if previousBreak {
				breakSpace = true
			}
			previousSpace, previousBreak = true, false
		} else if isBreak(s, i) {
			lineBreaks = true
			if i == 0 {
				leadingBreak = true
			}
			if i+w == len(s) {
				trailingBreak = true
			}
			if previousSpace {
				spaceBreak = true
			}
			previousSpace, previousBreak = false, true
		} else {
			previousSpace, previousBreak = false, false
		}
		precededByBlank = c == ' ' || c == '\t' || c == 0 || isBreak(s, i)
	}
	a := analysis{multiline: lineBreaks, blockPlain: true, singleQuoted: true, block: true, columns: columns}
	if leadingSpace || leadingBreak || trailingSpace || trailingBreak {
		a.blockPlain = false
	}
	if trailingSpace {
		a.block = false
	}
	if breakSpace {
		a.blockPlain, a.singleQuoted = false, false
	}
	if spaceBreak || special {
		a.blockPlain, a.singleQuoted, a.block = false, false, false
	}
	if lineBreaks || blockIndicators {
		a.blockPlain = false
	}
	return a
}

// width is the length of the UTF-8 sequence that starts with b.
func width(b byte) int {
	switch {
	case b&0x80 == 0x00:
		return 1
	case b&0xE0 == 0xC0:
		return 2
	case b&0xF0 == 0xE0:
		return 3
	case b&0xF8 == 0xF0:
		return 4
	}
	return 1 // not the start of a character: never in valid UTF-8
}

// isPrintable is go-yaml's: not every printable character is (a tab, a
// character beyond the Basic Multilingual Plane and U+FEFF are not).
func isPrintable(s string, i int) bool {
	b := s[i]
	return b == 0x0A ||
		b >= 0x20 && b <= 0x7E ||
		b == 0xC2 && s[i+1] >= 0xA0 ||
		b > 0xC2 && b < 0xED ||
		b == 0xED && s[i+1] < 0xA0 ||
		b == 0xEE ||
		b == 0xEF && !(s[i+1] == 0xBB && s[i+2] == 0xBF) && !(s[i+1] == 0xBF && (s[i+2] == 0xBE || s[i+2] == 0xBF))
}

// isBreak: CR, LF, NEL, LS or PS.
func isBreak(s string, i int) bool {
	b := s[i]
	return b == '\r' || b == '\n' ||
		b == 0xC2 && s[i+1] == 0x85 ||
		b == 0xE2 && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9)
}

// writeChar copies the character at s[*i].
func (e *emitter) writeChar(s string, i *int) {
	w := width(s[*i])
	e.buf = append(e.buf, s[*i:*i+w]...)
	e.column++
	*i += w
}

// writeBreak copies the line break at s[*i].
func (e *emitter) writeBreak(s string, i *int) {
	if s[*i] == '\n' {
		e.buf = append(e.buf, '\n')
		*i++
	} else {
		e.writeChar(s, i)
	}
	e.column = 0
}

// singleQuoted writes s single-quoted, its lines (if any) at indent;
// go-yaml would fold it at 80 columns, this does not.
func (e *emitter) singleQuoted(s string, a analysis, indent int) {
	e.indicator("'", true, false, false)
	if !a.multiline && strings.IndexByte(s, '\'') < 0 {
		e.buf = append(e.buf, s...)
		e.column += a.columns
	} else {
		breaks := false
		for i := 0; i < len(s); {
			switch {
			case s[i] == ' ':
				e.buf = append(e.buf, ' ')
				e.column++
				i++
			case isBreak(s, i):
				if !breaks && s[i] == '\n' {
					e.buf = append(e.buf, '\n')
					e.column = 0
				}
				e.writeBreak(s, &i)
				e.indention, breaks = true, true
			default:
				if breaks {
					e.writeIndent(indent)
				}
				if s[i] == '\'' {
					e.buf = append(e.buf, '\'')
					e.column++
				}
				e.writeChar(s, &i)
				e.indention, breaks = false, false
			}
		}
	}
	e.indicator("'", false, false, false)
	e.whitespace, e.indention = false, false
}

// doubleQuoted writes s double-quoted, with go-yaml's escapes; go-yaml
// would fold it at 80 columns, this does not.
func (e *emitter) doubleQuoted(s string) {
	e.indicator(`"`, true, false, false)
	// go-yaml escapes every character of a string that starts with a BOM.
	bom := len(s) >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF
	for i := 0; i < len(s); {
		c := s[i]
		if bom || !isPrintable(s, i) || isBreak(s, i) || c == '"' || c == '\\' {
			r, w := utf8.DecodeRuneInString(s[i:])
			i += w
			e.buf = append(e.buf, '\\')
			e.column++
			var x byte
			switch r {
			case 0x00:
				x = '0'
			case 0x07:
				x = 'a'
			case 0x08:
				x = 'b'
			case 0x09:
				x = 't'
			case 0x0A:
				x = 'n'
			case 0x0B:
				x = 'v'
			case 0x0C:
				x = 'f'
			case 0x0D:
				x = 'r'
			case 0x1B:
				x = 'e'
			case 0x22:
				x = '"'
			case 0x5C:
				x = '\\'
			case 0x85:
				x = 'N'
			case 0xA0:
				x = '_'
			case 0x2028:
				x = 'L'
			case 0x2029:
				x = 'P'
			}
			if x != 0 {
				e.buf = append(e.buf, x)
				e.column++
				continue
			}
			digits := 8
			switch {
			case r <= 0xFF:
				e.buf, digits = append(e.buf, 'x'), 2
			case r <= 0xFFFF:
				e.buf, digits = append(e.buf, 'u'), 4
			default:
				e.buf = append(e.buf, 'U')
			}
			for k := (digits - 1) * 4; k >= 0; k -= 4 {
				e.buf = append(e.buf, "0123456789ABCDEF"[(r>>uint(k))&0x0F])
			}
			e.column += 1 + digits
			continue
		}
		e.writeChar(s, &i)
	}
	e.indicator(`"`, false, false, false)
	e.whitespace, e.indention = false, false
}

// literal writes s as a literal block, its lines at indent.
func (e *emitter) literal(s string, indent int) {
	e.indicator("|", true, false, false)
	if s[0] == ' ' || isBreak(s, 0) {
		e.indicator("2", false, false, false) // go-yaml's best_indent
	}
	// The chomping indicator: "-" for no final break, "+" for more than
	// one (or a string that is one).
	i := len(s) - 1
	for s[i]&0xC0 == 0x80 {
		i--
	}
	switch {
	case !isBreak(s, i):
		e.indicator("-", false, false, false)
	case i == 0:
		e.indicator("+", false, false, false)
	default:
		i--
		for s[i]&0xC0 == 0x80 {
			i--
		}
		if isBreak(s, i) {
			e.indicator("+", false, false, false)
		}
	}
	e.buf = append(e.buf, '\n')
	e.column = 0
	e.indention, e.whitespace = true, true
	breaks := true
	for i := 0; i < len(s); {
		if isBreak(s, i) {
			e.writeBreak(s, &i)
			e.indention, breaks = true, true
			continue
		}
		if breaks {
			e.writeIndent(indent)
		}
		// The rest of the line.
		j := i
		for j < len(s) && s[j] != '\n' && s[j] != '\r' && s[j] != 0xC2 && s[j] != 0xE2 {
			j++
		}
		if j > i {
			e.buf = append(e.buf, s[i:j]...)
			e.column += utf8.RuneCountInString(s[i:j])
			i = j
		} else {
			e.writeChar(s, &i)
		}
		e.indention, breaks = false, false
	}
}

// Resolution: what go-yaml reads a plain scalar as.

// plainIsString reports whether go-yaml reads s, written plain, as the
// string s (resolve in go-yaml's resolve.go gives !!str).
func plainIsString(s string) bool {
	if s == "" {
		return false // null
	}
	var hint byte
	switch c := s[0]; {
	case c == '+' || c == '-':
		hint = 'S'
	case c >= '0' && c <= '9':
		hint = 'D'
	case c == '.':
		hint = '.'
	case strings.IndexByte("yYnNtTfFoO~", c) >= 0:
		hint = 'M'
	default:
		return true
	}
	if resolvesInTable(s) {
		return false
	}
	switch hint {
	case 'M':
		return true
	case '.':
		_, err := strconv.ParseFloat(s, 64)
		return err != nil
	}
	if _, ok := parseTimestamp(s); ok {
		return false
	}
	plain := strings.ReplaceAll(s, "_", "")
	// What the parsers below could accept, so that a string of other
	// characters costs no parse (and no error).
	for i := 0; i < len(plain); i++ {
		if strings.IndexByte("+-0123456789abcdefABCDEFxXoO.", plain[i]) < 0 {
			return true
		}
	}
	if _, err := strconv.ParseInt(plain, 0, 64); err == nil {
		return false
	}
	if _, err := strconv.ParseUint(plain, 0, 64); err == nil {
		return false
	}
	if yamlStyleFloat.MatchString(plain) {
		if _, err := strconv.ParseFloat(plain, 64); err == nil {
			return false
		}
	}
	if strings.HasPrefix(plain, "0b") {
		if _, err := strconv.ParseInt(plain[2:], 2, 64); err == nil {
			return false
		}
		if _, err := strconv.ParseUint(plain[2:], 2, 64); err == nil {
			return false
		}
	} else if strings.HasPrefix(plain, "-0b") {
		if _, err := strconv.ParseInt("-"+plain[3:], 2, 64); err == nil {
			return false
		}
	}
	return true
}

// resolvesInTable: go-yaml's table of bools, nulls, infinities and NaNs
// (YAML 1.1), and the merge key.
func resolvesInTable(s string) bool {
	switch s {
	case "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON",
		"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF",
		"", "~", "null", "Null", "NULL",
		".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF",
		"<<":
		return true
	}
	return false
}

var yamlStyleFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)

// isBase60Float: go-yaml quotes YAML 1.1's base 60 floats.
func isBase60Float(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	if !(c == '+' || c == '-' || c >= '0' && c <= '9') || strings.IndexByte(s, ':') < 0 {
		return false
	}
	return base60float.MatchString(s)
}

var base60float = regexp.MustCompile(`^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`)

var timestampFormats = []string{
	"2006-1-2T15:4:5.999999999Z07:00",
	"2006-1-2t15:4:5.999999999Z07:00",
	"2006-1-2 15:4:5.999999999",
	"2006-1-2",
}

// parseTimestamp is go-yaml's.
func parseTimestamp(s string) (time.Time, bool) {
	i := 0
	for ; i < len(s); i++ {
		if c := s[i]; c < '0' || c > '9' {
			break
		}
	}
	if i != 4 || i == len(s) || s[i] != '-' {
		return time.Time{}, false
	}
	for _, format := range timestampFormats {
		if t, err := time.Parse(format, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// isValidNumber is encoding/json's check of a JSON number.
func isValidNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	default:
		return false
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}

// Key order.

// keyCompare orders keys as go-yaml's encoder sorts a map's string keys:
// character by character, letters after other characters, and runs of
// digits by their numeric value (so "a9" before "a10").
func keyCompare(a, b string) int {
	if keyLess(a, b) {
		return -1
	}
	if keyLess(b, a) {
		return 1
	}
	return strings.Compare(a, b)
}

func keyLess(a, b string) bool {
	for i := 0; i < len(a); i++ {
		if a[i] >= utf8.RuneSelf {
			return runesLess([]rune(a), []rune(b))
		}
	}
	for i := 0; i < len(b); i++ {
		if b[i] >= utf8.RuneSelf {
			return runesLess([]rune(a), []rune(b))
		}
	}
	return asciiLess(a, b)
}

func asciiLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func asciiDigit(c byte) bool  { return c >= '0' && c <= '9' }

// asciiLess is runesLess for ASCII strings.
func asciiLess(a, b string) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] == b[i] {
			continue
		}
		al, bl := asciiLetter(a[i]), asciiLetter(b[i])
		if al && bl {
			return a[i] < b[i]
		}
		if al || bl {
			return bl
		}
		var an, bn int64
		if a[i] == '0' || b[i] == '0' {
			for j := i - 1; j >= 0 && asciiDigit(a[j]); j-- {
				if a[j] != '0' {
					an, bn = 1, 1
					break
				}
			}
		}
		ai, bi := i, i
		for ; ai < len(a) && asciiDigit(a[ai]); ai++ {
			an = an*10 + int64(a[ai]-'0')
		}
		for ; bi < len(b) && asciiDigit(b[bi]); bi++ {
			bn = bn*10 + int64(b[bi]-'0')
		}
		if an != bn {
			return an < bn
		}
		if ai != bi {
			return ai < bi
		}
		return a[i] < b[i]
	}
	return len(a) < len(b)
}

// runesLess is go-yaml's keyList.Less for two strings.
func runesLess(ar, br []rune) bool {
	for i := 0; i < len(ar) && i < len(br); i++ {
		if ar[i] == br[i] {
			continue
		}
		al, bl := unicode.IsLetter(ar[i]), unicode.IsLetter(br[i])
		if al && bl {
			return ar[i] < br[i]
		}
		if al || bl {
			return bl
		}
		var ai, bi int
		var an, bn int64
		if ar[i] == '0' || br[i] == '0' {
			for j := i - 1; j >= 0 && unicode.IsDigit(ar[j]); j-- {
				if ar[j] != '0' {
					an, bn = 1, 1
					break
				}
			}
		}
		for ai = i; ai < len(ar) && unicode.IsDigit(ar[ai]); ai++ {
			an = an*10 + int64(ar[ai]-'0')
		}
		for bi = i; bi < len(br) && unicode.IsDigit(br[bi]); bi++ {
			bn = bn*10 + int64(br[bi]-'0')
		}
		if an != bn {
			return an < bn
		}
		if ai != bi {
			return ai < bi
		}
		return ar[i] < br[i]
	}
	return len(ar) < len(br)
}

// Plans: what the walk needs to know of a type, found once per type.

type kind uint8

const (
	kindUnsupported kind = iota
	kindBool
	kindInt
	kindUint
	kindFloat
	kindString
	kindNumber // json.Number
	kindBytes  // []byte, as base64
	kindInterface
	kindPointer
	kindStruct
	kindMap
	kindSlice
	kindArray
)

// How encoding/json marshals a type (newTypeEncoder): through
// MarshalJSON of its pointer when addressable, else of the value, else
// through MarshalText.
const (
	marshalAddrJSON = 1 + iota
	marshalJSON
	marshalAddrText
	marshalText
)

type mapKey uint8

const (
	keyString mapKey = iota
	keyText
	keyInt
	keyUint
	keyUnsupported
)

type plan struct {
	kind    kind
	marshal uint8
	// json, text: the type itself implements json.Marshaler,
	// encoding.TextMarshaler (the fallbacks of marshalAddrJSON and
	// marshalAddrText when the value is not addressable).
	json, text bool
	elem       *plan
	key        mapKey
	fields     []fieldPlan // in go-yaml's order of their names
}

const (
	flagName = 1 << iota
	flagEmptyObject
	flagStringMap
)

type fieldPlan struct {
	name                string
	index               []int
	plan                *plan
	omitEmpty, omitZero bool
	isZero              func(reflect.Value) bool
	quoted              bool
	flags               uint8
	// key is the field's key and its ":" as written (nil for a complex
	// key), keyColumns its characters.
	key        []byte
	keyColumns int
}

func (p *plan) keyString(k reflect.Value) (string, error) {
	switch p.key {
	case keyString:
		return k.String(), nil
	case keyText:
		if k.Kind() == reflect.Pointer && k.IsNil() {
			return "", nil
		}
		tm, _ := reflect.TypeAssert[encoding.TextMarshaler](k)
		b, err := tm.MarshalText()
		return string(b), err
	case keyInt:
		return strconv.FormatInt(k.Int(), 10), nil
	case keyUint:
		return strconv.FormatUint(k.Uint(), 10), nil
	}
	return "", fmt.Errorf("json: unsupported type: %s", k.Type())
}

var (
	plans  sync.Map // reflect.Type → *plan
	planMu sync.Mutex

	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	numberType        = reflect.TypeFor[json.Number]()
)

func planOf(t reflect.Type) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	planMu.Lock()
	defer planMu.Unlock()
	building := map[reflect.Type]*plan{}
	p := buildPlan(t, building)
	for t, p := range building {
		plans.Store(t, p)
	}
	return p
}

func buildPlan(t reflect.Type, building map[reflect.Type]*plan) *plan {
	if p, ok := plans.Load(t); ok {
		return p.(*plan)
	}
	if p, ok := building[t]; ok {
		return p
	}
	p := &plan{}
	building[t] = p
	if t.Kind() != reflect.Interface {
		ptr := reflect.PointerTo(t)
		p.json, p.text = t.Implements(marshalerType), t.Implements(textMarshalerType)
		switch {
		case t.Kind() != reflect.Pointer && ptr.Implements(marshalerType):
			p.marshal = marshalAddrJSON
		case p.json:
			p.marshal = marshalJSON
		case t.Kind() != reflect.Pointer && ptr.Implements(textMarshalerType):
			p.marshal = marshalAddrText
		case p.text:
			p.marshal = marshalText
		}
	}
	switch t.Kind() {
	case reflect.Bool:
		p.kind = kindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		p.kind = kindInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		p.kind = kindUint
	case reflect.Float32, reflect.Float64:
		p.kind = kindFloat
	case reflect.String:
		p.kind = kindString
		if t == numberType {
			p.kind = kindNumber
		}
	case reflect.Interface:
		p.kind = kindInterface
	case reflect.Pointer:
		p.kind = kindPointer
		p.elem = buildPlan(t.Elem(), building)
	case reflect.Struct:
		p.kind = kindStruct
		p.fields = structFields(t, building)
	case reflect.Map:
		p.kind = kindMap
		p.elem = buildPlan(t.Elem(), building)
		switch k := t.Key(); {
		case k.Kind() == reflect.String:
			p.key = keyString
		case k.Implements(textMarshalerType):
			p.key = keyText
		case k.Kind() >= reflect.Int && k.Kind() <= reflect.Int64:
			p.key = keyInt
		case k.Kind() >= reflect.Uint && k.Kind() <= reflect.Uintptr:
			p.key = keyUint
		default:
			p.key = keyUnsupported
		}
	case reflect.Slice:
		p.kind = kindSlice
		if t.Elem().Kind() == reflect.Uint8 {
			ep := reflect.PointerTo(t.Elem())
			if !ep.Implements(marshalerType) && !ep.Implements(textMarshalerType) {
				p.kind = kindBytes
				break
			}
		}
		p.elem = buildPlan(t.Elem(), building)
	case reflect.Array:
		p.kind = kindArray
		p.elem = buildPlan(t.Elem(), building)
	default:
		p.kind = kindUnsupported
	}
	return p
}

// structFields are the fields encoding/json writes for the struct type t
// (typeFields in encoding/json: embedded structs, tags, and the rules
// that pick one field of a name), in go-yaml's order of their names.
func structFields(t reflect.Type, building map[reflect.Type]*plan) []fieldPlan {
	type found struct {
		fieldPlan
		typ    reflect.Type
		tagged bool
	}
	type embedded struct {
		index []int
		typ   reflect.Type
	}
	current, next := []embedded{}, []embedded{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	var fields []found
	for len(next) > 0 {
		current, next = next, current[:0]
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, f := range current {
			if visited[f.typ] {
				continue
			}
			visited[f.typ] = true
			for i := 0; i < f.typ.NumField(); i++ {
				sf := f.typ.Field(i)
				if sf.Anonymous {
					ft := sf.Type
					if ft.Kind() == reflect.Pointer {
						ft = ft.Elem()
					}
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				if !isValidTag(name) {
					name = ""
				}
				index := append(slices.Clone(f.index), i)
				ft := sf.Type
				if ft.Name() == "" && ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				quoted := false
				if hasOption(opts, "string") {
					switch ft.Kind() {
					case reflect.Bool,
						reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
						reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
						reflect.Float32, reflect.Float64,
						reflect.String:
						quoted = true
					}
				}
				if name != "" || !sf.Anonymous || ft.Kind() != reflect.Struct {
					tagged := name != ""
					if name == "" {
						name = sf.Name
					}
					fd := found{
						fieldPlan: fieldPlan{
							name:      name,
							index:     index,
							omitEmpty: hasOption(opts, "omitempty"),
							omitZero:  hasOption(opts, "omitzero"),
							quoted:    quoted,
						},
						typ:    sf.Type,
						tagged: tagged,
					}
					if fd.omitZero {
						fd.isZero = isZeroFunc(sf.Type)
					}
					fields = append(fields, fd)
					if count[f.typ] > 1 {
						fields = append(fields, fields[len(fields)-1])
					}
					continue
				}
				nextCount[ft]++
				if nextCount[ft] == 1 {
					next = append(next, embedded{index: index, typ: ft})
				}
			}
		}
	}
	slices.SortFunc(fields, func(a, b found) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := len(a.index) - len(b.index); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.index, b.index)
	})
	var out []fieldPlan
	for i, advance := 0, 0; i < len(fields); i += advance {
		name := fields[i].name
		for advance = 1; i+advance < len(fields) && fields[i+advance].name == name; advance++ {
		}
		if advance > 1 && len(fields[i].index) == len(fields[i+1].index) && fields[i].tagged == fields[i+1].tagged {
			continue // no dominant field: encoding/json writes none
		}
		f := fields[i].fieldPlan
		f.plan = buildPlan(fields[i].typ, building)
		if f.name == "name" {
			f.flags |= flagName
		}
		if emptyObject(f.name) {
			f.flags |= flagEmptyObject
		}
		if stringMap(f.name) {
			f.flags |= flagStringMap
		}
		if a := analyze(f.name); !a.multiline && len(f.name) <= 128 {
			k := &emitter{whitespace: true, indention: true}
			k.scalarAnalyzed(f.name, a, 2, true)
			k.indicator(":", false, false, false)
			f.key, f.keyColumns = k.buf, k.column
		}
		out = append(out, f)
	}
	slices.SortStableFunc(out, func(a, b fieldPlan) int { return keyCompare(a.name, b.name) })
	return out
}

func hasOption(opts, o string) bool {
	for opts != "" {
		var name string
		name, opts, _ = strings.Cut(opts, ",")
		if name == o {
			return true
		}
	}
	return false
}

func isValidTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

type isZeroer interface{ IsZero() bool }

var isZeroerType = reflect.TypeFor[isZeroer]()

// isZeroFunc is encoding/json's test of omitzero for a field of type t.
func isZeroFunc(t reflect.Type) func(reflect.Value) bool {
	switch {
	case t.Kind() == reflect.Interface && t.Implements(isZeroerType):
		return func(v reflect.Value) bool {
			return v.IsNil() || (v.Elem().Kind() == reflect.Pointer && v.Elem().IsNil()) || v.Interface().(isZeroer).IsZero()
		}
	case t.Kind() == reflect.Pointer && t.Implements(isZeroerType):
		return func(v reflect.Value) bool { return v.IsNil() || v.Interface().(isZeroer).IsZero() }
	case t.Implements(isZeroerType):
		return func(v reflect.Value) bool { return v.Interface().(isZeroer).IsZero() }
	case reflect.PointerTo(t).Implements(isZeroerType):
		return func(v reflect.Value) bool {
			if !v.CanAddr() {
				v2 := reflect.New(v.Type()).Elem()
				v2.Set(v)
				v = v2
			}
			return v.Addr().Interface().(isZeroer).IsZero()
		}
	}
	return reflect.Value.IsZero
}
