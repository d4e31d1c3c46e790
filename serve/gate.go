package serve

import (
	"fmt"
	"math"
	"slices"

	"github.com/sluice-ml/sluice/internal/field"
)

// Better says which way a gate's metric improves.
type Better string

const (
	// Higher: a larger value is better (accuracy, AUC).
	Higher Better = "higher"
	// Lower: a smaller value is better (log loss, error rate, latency).
	Lower Better = "lower"
)

// Gate decides whether a new model version replaces the live one: only
// when it is better on a named metric, by at least MinImprovement; a
// target with nothing live takes it when it reaches Threshold. The zero
// Gate lets every version through (Metric empty).
type Gate struct {
	// Metric names the compared number, a key of ModelVersion.Metrics.
	// Empty: no gate, every version is deployed.
	Metric string `json:"metric,omitempty"`
	// Better is which way the metric improves: Higher or Lower.
	Better Better `json:"better,omitempty"`
	// MinImprovement is by how much (absolute, ≥ 0) the new value must
	// beat the live version's; 0 means strictly better.
	MinImprovement float64 `json:"minImprovement,omitempty"`
	// Threshold is the least good value a first deploy accepts (at least
	// it for Higher, at most it for Lower); nil accepts any value.
	Threshold *float64 `json:"threshold,omitempty"`
}

// Decision is what a gate decided, with the numbers it compared: the
// deploy step's output and a line of the run summary.
type Decision struct {
	// Deploy says whether the candidate goes out.
	Deploy bool `json:"deploy"`
	// Reason says why, in a sentence.
	Reason string `json:"reason"`
	// Metric and Candidate are the compared metric and the new version's
	// value of it.
	Metric    string  `json:"metric,omitempty"`
	Candidate float64 `json:"candidate,omitempty"`
	// Live is the live version's value, when a version is live.
	Live *float64 `json:"live,omitempty"`
	// LiveVersion is the live version's number (0: none).
	LiveVersion int `json:"liveVersion,omitempty"`
}

// String is the decision for people: "deploy: auc 0.912 beats v3's 0.904".
func (d Decision) String() string {
	if d.Deploy {
		return "deploy: " + d.Reason
	}
	return "keep: " + d.Reason
}

// Check reports what is wrong with g, at paths under path.
func (g Gate) Check(path *field.Path) []*field.Error {
	if g.Metric == "" {
		if g.Better != "" || g.MinImprovement != 0 || g.Threshold != nil {
			return []*field.Error{field.Required(path.Child("metric"), "the gate compares a metric: name it (a key of the model's Metrics), or leave the whole gate zero to deploy every version")}
		}
		return nil
	}
	var errs []*field.Error
	if g.Better != Higher && g.Better != Lower {
		errs = append(errs, field.NotSupported(path.Child("better"), g.Better, []Better{Higher, Lower}))
	}
	if math.IsNaN(g.MinImprovement) || math.IsInf(g.MinImprovement, 0) || g.MinImprovement < 0 {
		errs = append(errs, field.Invalid(path.Child("minImprovement"), g.MinImprovement, "must be a finite number ≥ 0"))
	}
	if g.Threshold != nil && (math.IsNaN(*g.Threshold) || math.IsInf(*g.Threshold, 0)) {
		errs = append(errs, field.Invalid(path.Child("threshold"), *g.Threshold, "must be a finite number"))
	}
	return errs
}

// Decide decides for candidate, given the live version (nil when the
// target serves nothing yet). A candidate without the metric, or with a
// value that is not a number, is an error: a gate that cannot compare
// must not let a model through.
func (g Gate) Decide(candidate ModelVersion, live *ModelVersion) (Decision, error) {
	if live != nil && live.Name == candidate.Name && live.Version == candidate.Version && candidate.Version != 0 {
		return Decision{Metric: g.Metric, LiveVersion: live.Version, Reason: fmt.Sprintf("%s is live already", live)}, nil
	}
	if g.Metric == "" {
		return Decision{Deploy: true, Reason: "no gate"}, nil
	}
	if errs := g.Check(field.NewPath("gate")); len(errs) > 0 {
		return Decision{}, fmt.Errorf("serve: %v", errs[0])
	}
	v, ok := candidate.Metrics[g.Metric]
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
		return Decision{}, fmt.Errorf("serve: gate: %s has no finite %q among its metrics %v; record it when registering the model", candidate, g.Metric, metricNames(candidate.Metrics))
	}
	d := Decision{Metric: g.Metric, Candidate: v}
	better := func(a, b float64) bool { // a beats b by more than MinImprovement
		if g.Better == Higher {
			return a-b > g.MinImprovement
		}
		return b-a > g.MinImprovement
	}
	if live == nil {
		switch {
		case g.Threshold == nil:
			d.Deploy, d.Reason = true, fmt.Sprintf("first deploy (%s %g, no threshold)", g.Metric, v)
		case (g.Better == Higher && v >= *g.Threshold) || (g.Better == Lower && v <= *g.Threshold):
			d.Deploy, d.Reason = true, fmt.Sprintf("first deploy: %s %g reaches the threshold %g", g.Metric, v, *g.Threshold)
		default:
			d.Reason = fmt.Sprintf("first deploy refused: %s %g does not reach the threshold %g", g.Metric, v, *g.Threshold)
		}
		return d, nil
	}
	d.LiveVersion = live.Version
	lv, ok := live.Metrics[g.Metric]
	if !ok || math.IsNaN(lv) || math.IsInf(lv, 0) {
		// Nothing to compare with: the live version was registered
		// without the metric. Judge the candidate as a first deploy.
		nd, err := g.Decide(candidate, nil)
		nd.LiveVersion = live.Version
		nd.Reason = fmt.Sprintf("%s has no %q to compare with; %s", live, g.Metric, nd.Reason)
		return nd, err
	}
	d.Live = &lv
	by := ""
	if g.MinImprovement > 0 {
		by = fmt.Sprintf(" by more than %g", g.MinImprovement)
	}
	if better(v, lv) {
		d.Deploy, d.Reason = true, fmt.Sprintf("%s %g beats %s's %g%s (%s is better)", g.Metric, v, live, lv, by, g.Better)
	} else {
		d.Reason = fmt.Sprintf("%s %g does not beat %s's %g%s (%s is better)", g.Metric, v, live, lv, by, g.Better)
	}
	return d, nil
}

func metricNames(m map[string]float64) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}
