package serve

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/utils/ptr"

	"github.com/sluice-ml/sluice/internal/field"
)

func TestGateDecide(t *testing.T) {
	cand := func(auc float64) ModelVersion {
		return ModelVersion{Name: "churn", Version: 4, Metrics: map[string]float64{"auc": auc, "logloss": 1 - auc}}
	}
	live := &ModelVersion{Name: "churn", Version: 3, Metrics: map[string]float64{"auc": 0.90, "logloss": 0.10}}
	higher := Gate{Metric: "auc", Better: Higher}
	for _, tc := range []struct {
		name   string
		gate   Gate
		cand   ModelVersion
		live   *ModelVersion
		deploy bool
		reason string
	}{
		{"NoGate", Gate{}, cand(0.1), live, true, "no gate"},
		{"Better", higher, cand(0.91), live, true, "auc 0.91 beats churn v3's 0.9 (higher is better)"},
		{"Equal", higher, cand(0.90), live, false, "auc 0.9 does not beat churn v3's 0.9 (higher is better)"},
		{"Worse", higher, cand(0.85), live, false, "auc 0.85 does not beat churn v3's 0.9 (higher is better)"},
		{"LowerIsBetter", Gate{Metric: "logloss", Better: Lower}, cand(0.95), live, true, "logloss 0.050000000000000044 beats churn v3's 0.1 (lower is better)"},
		{"NotByEnough", Gate{Metric: "auc", Better: Higher, MinImprovement: 0.02}, cand(0.91), live, false, "auc 0.91 does not beat churn v3's 0.9 by more than 0.02 (higher is better)"},
		{"ByEnough", Gate{Metric: "auc", Better: Higher, MinImprovement: 0.02}, cand(0.93), live, true, "auc 0.93 beats churn v3's 0.9 by more than 0.02 (higher is better)"},
		{"FirstNoThreshold", higher, cand(0.5), nil, true, "first deploy (auc 0.5, no threshold)"},
		{"FirstReaches", Gate{Metric: "auc", Better: Higher, Threshold: ptr.To(0.8)}, cand(0.8), nil, true, "first deploy: auc 0.8 reaches the threshold 0.8"},
		{"FirstRefused", Gate{Metric: "auc", Better: Higher, Threshold: ptr.To(0.8)}, cand(0.7), nil, false, "first deploy refused: auc 0.7 does not reach the threshold 0.8"},
		{"LiveWithoutMetric", Gate{Metric: "auc", Better: Higher, Threshold: ptr.To(0.8)}, cand(0.85), &ModelVersion{Name: "churn", Version: 2}, true,
			`churn v2 has no "auc" to compare with; first deploy: auc 0.85 reaches the threshold 0.8`},
		{"SameVersion", higher, ModelVersion{Name: "churn", Version: 3}, live, false, "churn v3 is live already"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := tc.gate.Decide(tc.cand, tc.live)
			require.NoError(t, err)
			assert.Equal(t, tc.deploy, d.Deploy)
			assert.Equal(t, tc.reason, d.Reason)
		})
	}
	d, err := higher.Decide(cand(0.95), live)
	require.NoError(t, err)
	assert.Equal(t, Decision{Deploy: true, Reason: d.Reason, Metric: "auc", Candidate: 0.95, Live: ptr.To(0.90), LiveVersion: 3}, d)
	assert.Equal(t, "deploy: "+d.Reason, d.String())

	_, err = higher.Decide(ModelVersion{Name: "churn", Version: 5, Metrics: map[string]float64{"acc": 1}}, live)
	assert.ErrorContains(t, err, `churn v5 has no finite "auc" among its metrics [acc]`)
}

func TestGateCheck(t *testing.T) {
	p := field.NewPath("gate")
	assert.Empty(t, Gate{}.Check(p))
	assert.Empty(t, Gate{Metric: "auc", Better: Lower, MinImprovement: 0.1, Threshold: ptr.To(0.3)}.Check(p))
	var got []string
	for _, e := range (Gate{Metric: "auc", Better: "up", MinImprovement: -1}).Check(p) {
		got = append(got, e.Error())
	}
	assert.Equal(t, []string{
		`gate.better: NotSupported "up": supported values: "higher", "lower"`,
		`gate.minImprovement: Invalid -1: must be a finite number ≥ 0`,
	}, got)
	errs := Gate{Better: Higher}.Check(p)
	require.Len(t, errs, 1)
	assert.Contains(t, errs[0].Error(), "gate.metric: Required")
}
