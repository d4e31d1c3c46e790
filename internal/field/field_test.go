package field

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPathString(t *testing.T) {
	p := NewPath("pipeline").Child("tasks").Key("train").Child("resources", "mig")
	assert.Equal(t, "pipeline.tasks[train].resources.mig", p.String())
	assert.Equal(t, "pipeline.params[0]", NewPath("pipeline").Child("params").Index(0).String())
	assert.Equal(t, "", (*Path)(nil).String())
	assert.Equal(t, "a.b", Under(NewPath("a"), "b"))
	assert.Equal(t, "a[k]", Under(NewPath("a"), "[k]"))
	assert.Equal(t, "a", Under(NewPath("a"), ""))
	assert.Equal(t, "b", Under(nil, "b"))
}

func TestListKeepsEveryErrorReachable(t *testing.T) {
	var l List
	require.NoError(t, l.Err())
	l.Add(Required(NewPath("a"), "set it"), nil, Invalid(NewPath("b"), "x", "bad %d", 1))

	var inner List
	inner.Add(NotSupported(NewPath("mig"), "5g.40gb", []string{"3g.40gb"}))
	l.AddUnder(NewPath("p").Key("t").Child("resources"), inner.Err())

	err := fmt.Errorf("pipeline: compile: %w", l.Err())
	got := Errors(err)
	require.Len(t, got, 3)
	assert.Equal(t, "p[t].resources.mig", got[2].Field)
	assert.Equal(t, TypeNotSupported, got[2].Type)

	var fe *Error
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "a", fe.Field)
	assert.Equal(t, "pipeline: compile: a: Required: set it\nb: Invalid \"x\": bad 1\np[t].resources.mig: NotSupported \"5g.40gb\": supported values: \"3g.40gb\"", err.Error())
}

func TestLazyRendersAsPath(t *testing.T) {
	root := NewPath("pipeline").Child("tasks")
	for _, c := range []struct {
		lazy func() *Path
		want *Path
	}{
		{func() *Path { l := root.Lazy(); return l.Path() }, root},
		{func() *Path { l := root.LazyKey("train"); return l.Path() }, root.Key("train")},
		{func() *Path { l := root.LazyIndex(3); return l.Path() }, root.Index(3)},
		{func() *Path {
			l := root.LazyKey("train")
			in := l.Child("input")
			deps := in.Child("Deps")
			d := deps.Index(2)
			m := d.Key("k")
			return m.Path()
		}, root.Key("train").Child("input").Child("Deps").Index(2).Key("k")},
		{func() *Path { var l Lazy; c := l.Child("a"); return c.Path() }, (*Path)(nil).Child("a")},
		{func() *Path {
			// Past its capacity, a Lazy builds what it has and goes on.
			l := root.Lazy()
			for i := range 20 {
				c := l.Index(i)
				l = c.Child("x")
			}
			return l.Path()
		}, func() *Path {
			p := root
			for i := range 20 {
				p = p.Index(i).Child("x")
			}
			return p
		}()},
		{func() *Path { return (*Lazy)(nil).Path() }, nil},
	} {
		got := c.lazy()
		assert.Equal(t, c.want.String(), got.String())
	}
}

// Building a Lazy, however deep, allocates nothing: only Path does.
func TestLazyAllocatesNothingUntilUsed(t *testing.T) {
	root := NewPath("pipeline").Child("tasks")
	allocs := testing.AllocsPerRun(100, func() {
		l := root.LazyKey("train")
		in := l.Child("input")
		d := in.Index(7)
		k := d.Key("x")
		lazyUse(&k, false)
	})
	assert.Zero(t, allocs)
	var got *Path
	allocs = testing.AllocsPerRun(1, func() {
		l := root.LazyKey("train")
		in := l.Child("input")
		got = lazyUse(&in, true)
	})
	assert.Equal(t, "pipeline.tasks[train].input", got.String())
	assert.NotZero(t, allocs, "Path builds the path")
}

// lazyUse builds l's path when asked to, as a validator that reports a
// problem does; it is not inlined, as such a validator is not.
//
//go:noinline
func lazyUse(l *Lazy, build bool) *Path {
	if build {
		return l.Path()
	}
	return nil
}

// A recursion that passes down the address of each Lazy it makes keeps
// them all on the stack.
func TestLazyRecursionAllocatesNothing(t *testing.T) {
	root := NewPath("pipeline").Child("tasks")
	allocs := testing.AllocsPerRun(100, func() {
		l := root.LazyKey("train")
		lazyDescend(&l, 2, -1) // five elements: within a Lazy's capacity
	})
	assert.Zero(t, allocs)
	var got string
	l := root.LazyKey("train")
	lazyDescend(&l, 3, 3, func(p *Path) { got = p.String() })
	assert.Equal(t, "pipeline.tasks[train].x[1].x[2].x[3]", got)
}

// lazyDescend goes depth levels down from l, making a Lazy at each, and
// reports the path at level report (if any) to f.
func lazyDescend(l *Lazy, depth, report int, f ...func(*Path)) {
	if depth == 0 {
		return
	}
	level := 4 - depth
	c := l.Child("x")
	d := c.Index(level)
	if level == report {
		for _, g := range f {
			g(d.Path())
		}
	}
	lazyDescend(&d, depth-1, report, f...)
}
