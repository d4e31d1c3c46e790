package pipeline_test

import (
	"testing"
)

// Validating and lowering a valid pipeline allocates a share of the chunks
// its small slices (and the steps' DNS-1123 names) are carved from, well
// under one object per step. Field paths are built only for problems,
// resource profiles are resolved once per profile, what reflection finds
// of an input type is found once, and plain inputs are encoded without
// encoding/json. The bound is generous (1.4 per step at 2,000 steps when
// it was set, 0.38 since names share a buffer, with or without the race
// detector); building paths eagerly again, a map per step or
// encoding/json for plain inputs would cross it.
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
	if perStep > 8 {
		t.Errorf("Plan makes %.2f allocations per step, want at most 8", perStep)
	}
}
