package resources

import (
	"math/big"
	"strconv"
	"strings"

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

// The bounds of quantities, in base units (cores, bytes): from 1n, the
// finest precision Kubernetes keeps, to 8Ei (2⁶³), about the most an
// int64 holds. They are compared exactly, on the text: resource.Quantity
// silently clamps a binary quantity above 2⁶³−1 ("9Ei", "100Ei") to
// 2⁶³−1, and a float64 rounds 8Ei+1 down to 8Ei. CPU is bounded by 8Pi
// cores instead, so that its millicores, the unit schedulers count CPU
// in, fit in an int64 too.
var (
	minQuantity = resource.MustParse("1n")
	maxExact    = new(big.Rat).SetInt(new(big.Int).Lsh(big.NewInt(1), 63)) // 8Ei
	maxCPU      = resource.MustParse("8Pi")
)

// inRange reports whether q, parsed from s, is within [1n, 8Ei].
func inRange(q resource.Quantity, s string) bool {
	q = q.DeepCopy() // Cmp may rewrite q's internal form, which callers compare
	if q.Cmp(minQuantity) < 0 {
		return false
	}
	v, ok := exactValue(s)
	if !ok {
		return q.Cmp(resource.MustParse("8Ei")) <= 0
	}
	return v.Cmp(maxExact) <= 0
}

// exactValue is the value of the quantity s, before resource.Quantity
// clamps it. s has at most a two-digit exponent (see extremeExponent).
func exactValue(s string) (*big.Rat, bool) {
	i := strings.IndexFunc(s, func(r rune) bool { return !strings.ContainsRune("+-.0123456789", r) })
	if i < 0 {
		i = len(s)
	}
	num, suffix := s[:i], s[i:]
	v, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, false
	}
	pow := func(base, exp int64) *big.Rat {
		r := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(base), big.NewInt(max(exp, -exp)), nil))
		if exp < 0 {
			r.Inv(r)
		}
		return r
	}
	decimal := map[string]int64{"": 0, "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
	binary := map[string]int64{"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
	if e, ok := decimal[suffix]; ok {
		return v.Mul(v, pow(10, e)), true
	}
	if e, ok := binary[suffix]; ok {
		return v.Mul(v, pow(2, e)), true
	}
	if len(suffix) > 1 && (suffix[0] == 'e' || suffix[0] == 'E') {
		e, err := strconv.ParseInt(suffix[1:], 10, 64)
		if err != nil || e > 99 || e < -99 {
			return nil, false
		}
		return v.Mul(v, pow(10, e)), true
	}
	return nil, false
}

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
