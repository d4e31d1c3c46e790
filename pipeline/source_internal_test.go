package pipeline

import (
	"context"
	"testing"

	"github.com/sluice-ml/sluice/task"
)

func srcTestWork(context.Context, int) (int, error) { return 0, nil }

// ownStep finds a step's node by the index its source records, and only
// when the node at that index is the source's: a step of another
// pipeline, at an index this one has or not, is not this pipeline's.
func TestOwnStep(t *testing.T) {
	tk := task.New("t", srcTestWork)
	p := New("p", nil)
	a := Add(p, tk.WithName("a"), 0)
	b := Add(p, tk.WithName("b"), 0)
	q := New("q", nil)
	qa := Add(q, tk.WithName("a"), 0)
	qb := Add(q, tk.WithName("b"), 0)
	qc := Add(q, tk.WithName("c"), 0)
	bld := &builder{p: p}
	for _, c := range []struct {
		s    *source
		want int
		ok   bool
	}{
		{a.Output().src, 0, true},
		{b.Output().src, 1, true},
		{Field[int](Step[struct{ X int }]{n: b.n}.Output(), "X").src, 1, true},
		{qa.Output().src, 0, false},
		{qb.Output().src, 0, false},
		{qc.Output().src, 0, false},
		{Step[int]{}.Output().src, 0, false},
		{&source{kind: srcStep, node: b.n, nodeIndex: 0}, 0, false},
		{&source{kind: srcStep, node: b.n, nodeIndex: -1}, 0, false},
	} {
		if got, ok := bld.ownStep(c.s); got != c.want || ok != c.ok {
			t.Errorf("ownStep(%s at %d) = %d, %v; want %d, %v", c.s.describe(), c.s.nodeIndex, got, ok, c.want, c.ok)
		}
	}
}
