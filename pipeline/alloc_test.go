package pipeline_test

import (
	"testing"
)

// Validating and lowering a valid pipeline allocates a few objects per
// step: its names, its input's template and Refs, carved from shared
// chunks, and the JSON encoding of its input. Field paths are built only
// for problems, resource profiles are resolved once per profile, and
// what reflection finds of an input type is found once. The bound is
// generous (about twice the count when it was set); building paths
// eagerly again, or a map per step, would cross it.
func TestPlanAllocationsPerStep(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 2,000-task pipeline")
	}
	const n = 2000
	p := newBenchDAG(n).pipeline()
	if _, err := p.Plan(nil); err != nil {
		t.Fatal(err)
	}
	perStep := testing.AllocsPerRun(3, func() {
		if _, err := p.Plan(nil); err != nil {
			t.Fatal(err)
		}
	}) / n
	t.Logf("%.2f allocations per step", perStep)
	if perStep > 12 {
		t.Errorf("Plan makes %.2f allocations per step, want at most 12", perStep)
	}
}
