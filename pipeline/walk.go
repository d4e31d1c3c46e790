package pipeline

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/internal/field"
)

// The walk of a step's input for its Refs. What reflection finds of a type
// (which fields and elements can hold a Ref, and which types are Refs) is
// worked out once per type, in a refPlan; the walk of each value then
// follows its type's plan.

// walkKey identifies a pointer, map or slice on the walk's current path.
type walkKey struct {
	ptr uintptr
	typ reflect.Type
	len int
}

// maxWalkDepth bounds the walk like encoding/json bounds its own
// recursion; cycles are cut by the walk's path long before.
const maxWalkDepth = 1000

// walker is the state of the walk of one step's input.
type walker struct {
	n *node
	// ok is false once a Ref of the input is unusable.
	ok bool
	// found are the Refs found, each source once.
	found []foundRef
	// byID indexes found once it is long.
	byID map[int64]int
	// refs are the input's Refs in the order of their first placeholder
	// in its template, carved from the builder's chunk.
	refs []backends.Ref
	// onPath are the pointers, maps and slices on the current path: a
	// value that contains itself is walked once (encoding/json then
	// reports the cycle), so the walk is linear in the size of the
	// input's JSON.
	onPath []walkKey
}

// foundRef is one source found in a step's input.
type foundRef struct {
	id  int64
	src *source
	// uses is how often the source occurs; the JSON cannot hold more.
	uses int
	// index is the source's place in the step's Input.Refs, -1 before.
	index int
	// placed is how many of the occurrences have a placeholder.
	placed int
}

func (w *walker) reset(n *node) {
	w.n, w.ok = n, true
	w.found = w.found[:0]
	w.byID = nil
	w.refs = nil
	w.onPath = w.onPath[:0]
}

// place returns the index in the step's Input.Refs of s, the source of a
// Ref that the input's template is written with (appendJSON), adding it
// at its first occurrence. It refuses a source the walk did not find, or
// found less often: the input then holds a Ref that Sluice cannot see or
// a key it reserves, which input finds in the input's JSON.
func (b *builder) place(s *source) (int, bool) {
	w := &b.walk
	if !w.ok {
		// A Ref of the input is unusable, so it has no template: only
		// whether it encodes matters.
		return 0, true
	}
	f := w.find(s.id)
	if f == nil || f.placed == f.uses {
		return 0, false
	}
	f.placed++
	if f.index < 0 {
		if w.refs == nil {
			w.refs = b.refs.take(len(w.found))[:0]
		}
		f.index = len(w.refs)
		w.refs = w.refs[:f.index+1] // within the capacity taken above
		b.planRefInto(&w.refs[f.index], f.src)
	}
	return f.index, true
}

// unplace forgets what place gave, for a template written anew.
func (w *walker) unplace() {
	for i := range w.found {
		w.found[i].index, w.found[i].placed = -1, 0
	}
	w.refs = nil
}

// find returns the found source of id, or nil.
func (w *walker) find(id int64) *foundRef {
	if w.byID != nil {
		if i, ok := w.byID[id]; ok {
			return &w.found[i]
		}
		return nil
	}
	for i := range w.found {
		if w.found[i].id == id {
			return &w.found[i]
		}
	}
	return nil
}

// add records one occurrence of s.
func (w *walker) add(s *source) {
	if f := w.find(s.id); f != nil {
		f.uses++
		return
	}
	w.found = append(w.found, foundRef{id: s.id, src: s, uses: 1, index: -1})
	switch {
	case w.byID != nil:
		w.byID[s.id] = len(w.found) - 1
	case len(w.found) > 16:
		w.byID = make(map[int64]int, 2*len(w.found))
		for i, f := range w.found {
			w.byID[f.id] = i
		}
	}
}

// visitRef records s, found in the input at at and b.trail, and checks its
// use.
func (b *builder) visitRef(at *field.Lazy, s *source) {
	b.walk.add(s)
	if !b.useRef(b.walk.n, at, s) {
		b.walk.ok = false
	}
}

// walkAny walks v, of any type, for Refs.
func (b *builder) walkAny(v reflect.Value, at *field.Lazy, depth int) {
	if !v.IsValid() {
		return
	}
	if pl := refPlanOf(v.Type()); pl != nil {
		b.walkRefs(v, pl, at, depth)
	}
}

// walkRefs calls visitRef for every Ref with a source reachable from v, of
// the type of plan pl, through exported struct fields, pointers,
// interfaces, slices, arrays and maps. v is at at and below it b.trail,
// which the walk extends as it goes down and shortens as it comes back.
func (b *builder) walkRefs(v reflect.Value, pl *refPlan, at *field.Lazy, depth int) {
	if depth > maxWalkDepth {
		return
	}
	switch pl.kind {
	case planRef:
		if v.CanInterface() {
			if s := refSourceOf(v); s != nil {
				b.visitRef(at, s)
			}
		}
		return
	case planRefPtr:
		if v.IsNil() {
			return // a nil *Ref encodes as null: it refers to nothing
		}
		if v.CanInterface() {
			if s := refSourceOf(v.Elem()); s != nil {
				b.visitRef(at, s)
			}
		}
		return
	case planRefOther:
		if v.Kind() == reflect.Pointer && v.IsNil() {
			return
		}
		if v.CanInterface() {
			if s, _ := v.Interface().(refSource).refSrc(); s != nil {
				b.visitRef(at, s)
			}
		}
		return
	}
	w := &b.walk
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		if v.IsNil() {
			return
		}
		k := walkKey{ptr: v.Pointer(), typ: pl.typ}
		if v.Kind() == reflect.Slice {
			k.len = v.Len()
		}
		if slices.Contains(w.onPath, k) {
			return
		}
		w.onPath = append(w.onPath, k)
		b.walkParts(v, pl, at, depth)
		w.onPath = w.onPath[:len(w.onPath)-1]
		return
	}
	b.walkParts(v, pl, at, depth)
}

// walkParts walks the fields or elements of v, of the type of plan pl.
func (b *builder) walkParts(v reflect.Value, pl *refPlan, at *field.Lazy, depth int) {
	switch pl.kind {
	case planPtr:
		b.walkRefs(v.Elem(), pl.elem, at, depth+1)
	case planIface:
		if !v.IsNil() {
			b.walkAny(v.Elem(), at, depth+1)
		}
	case planStruct:
		for _, f := range pl.fields {
			if f.anon {
				b.walkRefs(v.Field(f.index), f.plan, at, depth+1)
				continue
			}
			b.trail = append(b.trail, field.ChildSeg(f.name))
			b.walkRefs(v.Field(f.index), f.plan, at, depth+1)
			b.trail = b.trail[:len(b.trail)-1]
		}
	case planList:
		for i := range v.Len() {
			b.trail = append(b.trail, field.IndexSeg(i))
			b.walkRefs(v.Index(i), pl.elem, at, depth+1)
			b.trail = b.trail[:len(b.trail)-1]
		}
	case planMap:
		type entry struct {
			key  reflect.Value
			name string
		}
		keys := v.MapKeys()
		entries := make([]entry, len(keys))
		for i, k := range keys {
			entries[i] = entry{k, fmt.Sprint(k)}
		}
		slices.SortFunc(entries, func(a, c entry) int { return cmp.Compare(a.name, c.name) })
		for _, e := range entries {
			b.trail = append(b.trail, field.KeySeg(e.name))
			b.walkRefs(v.MapIndex(e.key), pl.elem, at, depth+1)
			b.trail = b.trail[:len(b.trail)-1]
		}
	}
}

// refSourceOf returns the source of v, a Ref[T]: its first field.
func refSourceOf(v reflect.Value) *source {
	return (*source)(v.Field(0).UnsafePointer())
}

// refPlan is what the walk needs to know of a type that can hold a Ref.
// A nil *refPlan is a type that cannot.
type refPlan struct {
	typ  reflect.Type
	kind planKind
	// elem is the plan of the element of a pointer, slice, array or map.
	elem *refPlan
	// fields are a struct's fields that can hold a Ref, in order.
	fields []planField
}

type planKind uint8

const (
	planRef      planKind = iota + 1 // a Ref[T], whose first field is its source
	planRefPtr                       // a *Ref[T]
	planRefOther                     // another type with a Ref's methods (one that embeds a Ref)
	planPtr                          // a pointer
	planIface                        // an interface: the dynamic type's plan applies
	planStruct
	planList // a slice or an array
	planMap
)

// planField is a struct field that can hold a Ref.
type planField struct {
	index int
	name  string
	anon  bool // embedded: its fields are the struct's, at the same path
	plan  *refPlan
}

var (
	refPlans      sync.Map // reflect.Type -> *refPlan
	sourcePtrType = reflect.TypeFor[*source]()
	refTypePrefix = reflect.TypeFor[Ref[int]]().PkgPath()
)

// refPlanOf returns the plan of t, nil if a value of type t cannot hold a
// Ref.
func refPlanOf(t reflect.Type) *refPlan {
	if pl, ok := refPlans.Load(t); ok {
		return pl.(*refPlan)
	}
	built := map[reflect.Type]*refPlan{}
	pl := buildRefPlan(t, built)
	for t, p := range built {
		refPlans.LoadOrStore(t, p)
	}
	return pl
}

// buildRefPlan builds the plan of t and of the types it reaches that have
// none yet, recording each in built before its parts, so that a recursive
// type's plan refers to itself.
func buildRefPlan(t reflect.Type, built map[reflect.Type]*refPlan) *refPlan {
	if pl, ok := built[t]; ok {
		return pl
	}
	if pl, ok := refPlans.Load(t); ok {
		return pl.(*refPlan)
	}
	if !mayHoldRef(t) {
		built[t] = nil
		return nil
	}
	pl := &refPlan{typ: t}
	built[t] = pl
	if t.Implements(refSourceType) {
		switch {
		case isRefType(t):
			pl.kind = planRef
		case t.Kind() == reflect.Pointer && isRefType(t.Elem()):
			pl.kind = planRefPtr
		default:
			pl.kind = planRefOther
		}
		return pl
	}
	switch t.Kind() {
	case reflect.Pointer:
		pl.kind = planPtr
		pl.elem = buildRefPlan(t.Elem(), built)
	case reflect.Interface:
		pl.kind = planIface
	case reflect.Slice, reflect.Array:
		pl.kind = planList
		pl.elem = buildRefPlan(t.Elem(), built)
	case reflect.Map:
		pl.kind = planMap
		pl.elem = buildRefPlan(t.Elem(), built)
	case reflect.Struct:
		pl.kind = planStruct
		for i := range t.NumField() {
			f := t.Field(i)
			if (!f.IsExported() && !f.Anonymous) || !mayHoldRef(f.Type) {
				continue // nothing to walk
			}
			pl.fields = append(pl.fields, planField{index: i, name: f.Name, anon: f.Anonymous, plan: buildRefPlan(f.Type, built)})
		}
	}
	if pl.kind != planStruct && pl.kind != planIface && pl.elem == nil {
		// A pointer, list or map of what cannot hold a Ref cannot
		// either; mayHoldRef says so first, but be safe.
		built[t] = nil
		return nil
	}
	return pl
}

// isRefType reports whether t is a Ref[T].
func isRefType(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t.PkgPath() == refTypePrefix && strings.HasPrefix(t.Name(), "Ref[") &&
		t.NumField() == 2 && t.Field(0).Type == sourcePtrType
}

// arena hands out small slices carved from shared chunks: the plan's
// slices (names, Refs, templates) are many and small, and live as long as
// the plan. Each slice is capped at its length, so an append to one
// never writes into another.
type arena[T any] struct {
	buf []T
	// chunk is the length of a chunk, 1024 if zero; a slice of more
	// than an eighth of it is allocated alone.
	chunk int
}

// take returns a slice of n zero elements.
func (a *arena[T]) take(n int) []T {
	chunk := a.chunk
	if chunk == 0 {
		chunk = 1024
	}
	if n > chunk/8 {
		return make([]T, n)
	}
	if n > len(a.buf) {
		a.buf = make([]T, chunk)
	}
	s := a.buf[:n:n]
	a.buf = a.buf[n:]
	return s
}
