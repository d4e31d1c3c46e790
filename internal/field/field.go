// Package field locates validation problems by a path such as
// "pipeline.tasks[train].resources.mig" and classifies them by type. It is
// shaped like k8s.io/apimachinery/pkg/util/validation/field, written for
// Sluice so that exported APIs can alias its Error type.
//
// # Paths
//
// A [Path] is built from the root down with Child, Key and Index; data
// packages report paths relative to their own value, and the owner
// re-roots them with [List.AddUnder].
//
// # Errors
//
// An [Error] has a [Type] (Required, Invalid, Duplicate, NotSupported,
// NotFound, Forbidden, TooLong, TooMany), the field, the bad value and a
// detail that says how to fix it. A [List] collects them in the order
// found and aggregates them with go-multierror in a deterministic, one
// problem per line format; [Errors] gets them back from any wrapped error.
package field

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-multierror"
)

// Path is an immutable location in a definition. The nil *Path is the root
// and renders as the empty string.
type Path struct {
	parent *Path
	name   string // set for a child
	key    string // set for a key or index
	isKey  bool
}

// NewPath returns a root path made of name and optional further children.
func NewPath(name string, more ...string) *Path {
	p := &Path{name: name}
	for _, m := range more {
		p = p.Child(m)
	}
	return p
}

// Child returns p extended by a named field.
func (p *Path) Child(name string, more ...string) *Path {
	c := &Path{parent: p, name: name}
	for _, m := range more {
		c = c.Child(m)
	}
	return c
}

// Key returns p extended by a map key or name: p[key].
func (p *Path) Key(key string) *Path { return &Path{parent: p, key: key, isKey: true} }

// Index returns p extended by a list index: p[i].
func (p *Path) Index(i int) *Path { return p.Key(strconv.Itoa(i)) }

// String renders the path, for example "pipeline.tasks[train].image".
func (p *Path) String() string {
	if p == nil {
		return ""
	}
	var elems []*Path
	for q := p; q != nil; q = q.parent {
		elems = append(elems, q)
	}
	var b strings.Builder
	for i := len(elems) - 1; i >= 0; i-- {
		e := elems[i]
		switch {
		case e.isKey:
			b.WriteString("[" + e.key + "]")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e.name)
		}
	}
	return b.String()
}

// Lazy is a path that is only built if it is used. A validation pass over
// thousands of values needs a value's path only to report a problem with
// it, which is rare; a Lazy costs no allocation until then. It is a plain
// value: a built root [Path] and up to a few elements below it, held in
// the Lazy itself (never a pointer to another Lazy, so that a recursion
// can pass the address of a Lazy it made down to itself and the compiler
// still keeps every one on the stack). A Lazy extended past its capacity
// builds the path it has so far, and goes on from there. [Lazy.Path]
// builds the *Path, which renders as the eagerly built one would. The
// zero Lazy is the nil root.
type Lazy struct {
	root  *Path
	elems [lazyElems]Segment
	n     int
}

// lazyElems is how many elements a Lazy holds beyond its root: a step's
// path (tasks[name].input) and a few levels of its input.
const lazyElems = 6

// Segment is one step of a path: a named field (.name), a map key or
// name ([name]) or a list index ([i]), as [Path.Child], [Path.Key] and
// [Path.Index] add; a walk that keeps its place as a list of them builds
// the *Path only when it needs one ([Extend]).
type Segment struct {
	name  string
	index int
}

const (
	segChild = -1
	segKey   = -2
)

// ChildSeg is the segment .name.
func ChildSeg(name string) Segment { return Segment{name: name, index: segChild} }

// KeySeg is the segment [key].
func KeySeg(key string) Segment { return Segment{name: key, index: segKey} }

// IndexSeg is the segment [i].
func IndexSeg(i int) Segment { return Segment{index: i} }

// Extend returns p extended by segs, in order.
func Extend(p *Path, segs []Segment) *Path {
	for _, e := range segs {
		switch e.index {
		case segChild:
			p = p.Child(e.name)
		case segKey:
			p = p.Key(e.name)
		default:
			p = p.Index(e.index)
		}
	}
	return p
}

// Lazy returns p as a Lazy.
func (p *Path) Lazy() Lazy { return Lazy{root: p} }

// LazyKey returns p[key] as a Lazy: p.Key(key), built when used.
func (p *Path) LazyKey(key string) Lazy {
	return Lazy{root: p, elems: [lazyElems]Segment{KeySeg(key)}, n: 1}
}

// LazyIndex returns p[i] as a Lazy: p.Index(i), built when used.
func (p *Path) LazyIndex(i int) Lazy {
	return Lazy{root: p, elems: [lazyElems]Segment{IndexSeg(i)}, n: 1}
}

// Child returns l extended by a named field, as [Path.Child] does.
func (l *Lazy) Child(name string) Lazy { return l.with(ChildSeg(name)) }

// Key returns l extended by a map key or name, as [Path.Key] does.
func (l *Lazy) Key(key string) Lazy { return l.with(KeySeg(key)) }

// Index returns l extended by a list index, as [Path.Index] does.
func (l *Lazy) Index(i int) Lazy { return l.with(IndexSeg(i)) }

func (l *Lazy) with(e Segment) Lazy {
	c := *l
	if c.n == lazyElems {
		c = Lazy{root: l.Path()}
	}
	c.elems[c.n] = e
	c.n++
	return c
}

// Path builds the path l stands for. A nil l is the nil root.
func (l *Lazy) Path() *Path {
	if l == nil {
		return nil
	}
	return Extend(l.root, l.elems[:l.n])
}

// String renders the path l stands for.
func (l *Lazy) String() string { return l.Path().String() }

// Under returns a path made of root followed by rel, a rendered relative path
// ("resources.mig"). It is how a package re-roots the errors of a standalone
// Validate under the owning field.
func Under(root *Path, rel string) string {
	switch {
	case rel == "":
		return root.String()
	case root == nil:
		return rel
	case strings.HasPrefix(rel, "["):
		return root.String() + rel
	default:
		return root.String() + "." + rel
	}
}

// Type classifies a validation problem. Tests match on Type and Field, never
// on message text.
type Type string

// The validation problem types.
const (
	TypeRequired     Type = "Required"     // a value is missing
	TypeInvalid      Type = "Invalid"      // a value is malformed or inconsistent
	TypeDuplicate    Type = "Duplicate"    // a value must be unique and is not
	TypeNotSupported Type = "NotSupported" // a value is not one of the allowed set
	TypeNotFound     Type = "NotFound"     // a reference names something that does not exist
	TypeForbidden    Type = "Forbidden"    // a value is not allowed in this combination
	TypeTooLong      Type = "TooLong"      // a value is longer than allowed
	TypeTooMany      Type = "TooMany"      // more values than allowed
)

// Error is one validation problem at one field.
type Error struct {
	// Type classifies the problem.
	Type Type
	// Field is the rendered path of the offending value.
	Field string
	// BadValue is the offending value, if there is one to show.
	BadValue any
	// Detail says what is wrong and how to fix it.
	Detail string
}

// Error renders e as "<field>: <type>[ <value>]: <detail>".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	b.WriteString(": ")
	b.WriteString(string(e.Type))
	if e.BadValue != nil {
		switch v := e.BadValue.(type) {
		case string:
			b.WriteString(" " + strconv.Quote(v))
		default:
			fmt.Fprintf(&b, " %v", v)
		}
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

func newError(t Type, p *Path, v any, detail string, args ...any) *Error {
	if len(args) > 0 {
		detail = fmt.Sprintf(detail, args...)
	}
	return &Error{Type: t, Field: p.String(), BadValue: v, Detail: detail}
}

// Required reports a missing value.
func Required(p *Path, detail string, args ...any) *Error {
	return newError(TypeRequired, p, nil, detail, args...)
}

// Invalid reports a malformed or inconsistent value.
func Invalid(p *Path, v any, detail string, args ...any) *Error {
	return newError(TypeInvalid, p, v, detail, args...)
}

// Duplicate reports a value that must be unique.
func Duplicate(p *Path, v any, detail string, args ...any) *Error {
	return newError(TypeDuplicate, p, v, detail, args...)
}

// NotFound reports a reference to something that does not exist.
func NotFound(p *Path, v any, detail string, args ...any) *Error {
	return newError(TypeNotFound, p, v, detail, args...)
}

// Forbidden reports a value that is not allowed in this combination.
func Forbidden(p *Path, detail string, args ...any) *Error {
	return newError(TypeForbidden, p, nil, detail, args...)
}

// TooLong reports a value longer than max.
func TooLong(p *Path, v any, max int) *Error {
	return newError(TypeTooLong, p, v, "must be at most %d characters", max)
}

// TooMany reports more values than allowed.
func TooMany(p *Path, n, max int) *Error {
	return newError(TypeTooMany, p, n, "must have at most %d items", max)
}

// NotSupported reports a value outside the allowed set, listing the set.
func NotSupported[T ~string](p *Path, v T, valid []T) *Error {
	q := make([]string, len(valid))
	for i, s := range valid {
		q[i] = strconv.Quote(string(s))
	}
	return newError(TypeNotSupported, p, string(v), "supported values: %s", strings.Join(q, ", "))
}

// List collects errors in the order they are found. The zero value is an
// empty list ready to use. It is not safe for concurrent use.
type List struct{ errs []*Error }

// Add appends errs, skipping nils.
func (l *List) Add(errs ...*Error) {
	for _, e := range errs {
		if e != nil {
			l.errs = append(l.errs, e)
		}
	}
}

// AddUnder appends every *Error found in err, re-rooted under root. It is
// used to fold a standalone Validate (relative paths) into a larger one.
func (l *List) AddUnder(root *Path, err error) {
	for _, e := range Errors(err) {
		c := *e
		c.Field = Under(root, e.Field)
		l.errs = append(l.errs, &c)
	}
}

// Len reports how many errors l holds.
func (l *List) Len() int { return len(l.errs) }

// Errors returns the collected errors.
func (l *List) Errors() []*Error { return l.errs }

// Err returns nil for an empty list, otherwise one error that wraps every
// collected *Error (reachable with errors.As and Errors) and renders one
// problem per line, in the order found.
func (l *List) Err() error {
	if len(l.errs) == 0 {
		return nil
	}
	var m *multierror.Error
	for _, e := range l.errs {
		m = multierror.Append(m, e)
	}
	m.ErrorFormat = OnePerLine
	return m
}

// OnePerLine is a multierror format: each error on its own line, no banner.
func OnePerLine(errs []error) string {
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Errors returns every *Error in err: err itself, the errors it wraps through
// Unwrap() error, and those of an aggregate with Unwrap() []error or
// WrappedErrors() []error (go-multierror).
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		switch x := err.(type) {
		case interface{ WrappedErrors() []error }:
			for _, c := range x.WrappedErrors() {
				walk(c)
			}
		case interface{ Unwrap() []error }:
			for _, c := range x.Unwrap() {
				walk(c)
			}
		default:
			walk(errors.Unwrap(err))
		}
	}
	walk(err)
	return out
}
