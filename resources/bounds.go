package resources

import (
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/sluice-ml/sluice/internal/field"
)

// MaxGPUs bounds Profile.GPUs and Capacity.GPUs: the most whole GPUs one
// node offers today (16 on HGX-2/DGX-2 class systems; most GPU nodes have
// 8), so a request for more could never be placed as one pod, with or
// without a node pool. MIG slices have their own bound (see
// Profile.MIGCount).
const MaxGPUs = 16

// checkGPUCount reports a whole-GPU count outside [0, MaxGPUs] at p; zero
// says what zero means for that field.
func checkGPUCount(l *field.List, p *field.Path, n int, zero string) {
	if n < 0 || n > MaxGPUs {
		l.Add(field.Invalid(p, n, "must be between 0 and %d (the most GPUs a node offers); %s", MaxGPUs, zero))
	}
}

// The exact bounds of quantities, in base units (cores, bytes): from 1n,
// the finest precision Kubernetes keeps, to 8Ei, the most an int64 holds
// (compared exactly, not through a float64, which rounds 8Ei+1 down to
// 8Ei). CPU is bounded by 8Pi cores instead, so that its millicores, the
// unit schedulers count CPU in, fit in an int64 too.
var (
	minQuantity = resource.MustParse("1n")
	maxQuantity = resource.MustParse("8Ei")
	maxCPU      = resource.MustParse("8Pi")
)

// checkCPU reports a parsed CPU quantity q (the text s) above maxCPU at p
// and returns q, or nil when it is out of range.
func checkCPU(l *field.List, p *field.Path, s string, q *resource.Quantity) *resource.Quantity {
	if q == nil {
		return nil
	}
	if x := q.DeepCopy(); x.Cmp(maxCPU) > 0 { // Cmp may rewrite x's internal form
		l.Add(field.Invalid(p, s, "is out of range: must be between 1n and 8Pi cores, so that its millicores fit in 64 bits"))
		return nil
	}
	return q
}
