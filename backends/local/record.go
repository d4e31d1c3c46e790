package local

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/task"
)

// Record is what a local run of a plan would do: the document a local
// artifact renders, and the dry-run record. Inputs show each reference as
// a string "${ref}": a step's output or a field of it ("${prep}",
// "${eval.Accuracy}"), a parameter ("${params.lr}", whose value is under
// Params), the fan-out element ("${item}") or the run's outcome
// ("${run}"); constants show as themselves and collected lists as lists.
type Record struct {
	Pipeline string        `json:"pipeline"`
	Params   []RecordParam `json:"params,omitempty"`
	// Steps are in plan order: the order a sequential run starts them.
	Steps []RecordStep `json:"steps"`
	// Exit is the exit handler, run last.
	Exit *RecordStep `json:"exit,omitempty"`
}

// RecordParam is a parameter and the value a run uses.
type RecordParam struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// RecordStep is one step of a [Record].
type RecordStep struct {
	Name      string         `json:"name"`
	Kind      task.Kind      `json:"kind"`
	Image     string         `json:"image,omitempty"`
	Command   []string       `json:"command,omitempty"`
	Args      []string       `json:"args,omitempty"`
	Env       []task.EnvVar  `json:"env,omitempty"`
	Outputs   []task.Output  `json:"outputs,omitempty"`
	DependsOn []string       `json:"dependsOn,omitempty"`
	When      string         `json:"when,omitempty"`
	ForEach   *RecordForEach `json:"forEach,omitempty"`
	// Input is the step's input with run-time values as "${ref}".
	Input     json.RawMessage  `json:"input,omitempty"`
	Resources *RecordResources `json:"resources,omitempty"`
	Retry     *RecordRetry     `json:"retry,omitempty"`
	// Timeout bounds each attempt, as a Go duration ("1h0m0s").
	Timeout string      `json:"timeout,omitempty"`
	Cache   *task.Cache `json:"cache,omitempty"`
}

// RecordForEach is a dynamic fan-out: the list and the cap on instances
// running at once (zero: none).
type RecordForEach struct {
	Items       string `json:"items"`
	Parallelism int    `json:"parallelism,omitempty"`
}

// RecordResources are a step's resolved resources. A local run honors
// only the requests, and only against Options.Capacity.
type RecordResources struct {
	Requests     corev1.ResourceList `json:"requests,omitempty"`
	Limits       corev1.ResourceList `json:"limits,omitempty"`
	NodeSelector map[string]string   `json:"nodeSelector,omitempty"`
	Tolerations  []corev1.Toleration `json:"tolerations,omitempty"`
}

// RecordRetry is a retry policy, durations as Go durations.
type RecordRetry struct {
	App              int     `json:"app,omitempty"`
	Infra            int     `json:"infra,omitempty"`
	BackoffInitial   string  `json:"backoffInitial,omitempty"`
	BackoffFactor    float64 `json:"backoffFactor,omitempty"`
	BackoffMax       string  `json:"backoffMax,omitempty"`
	OnDemandFallback bool    `json:"onDemandFallback,omitempty"`
}

func newRecord(plan *backends.Plan) *Record {
	rec := &Record{Pipeline: plan.Name, Steps: []RecordStep{}}
	for _, p := range plan.Params {
		rec.Params = append(rec.Params, RecordParam{Name: p.Name, Type: p.Type, Value: slices.Clone(p.Value)})
	}
	for i := range plan.Steps {
		rec.Steps = append(rec.Steps, recordStep(&plan.Steps[i]))
	}
	if plan.Exit != nil {
		rs := recordStep(plan.Exit)
		rec.Exit = &rs
	}
	return rec
}

func recordStep(s *backends.Step) RecordStep {
	t := s.Task
	rs := RecordStep{
		Name:      s.Name,
		Kind:      t.Kind,
		Image:     t.Image,
		Command:   slices.Clone(t.Command),
		Args:      slices.Clone(t.Args),
		Env:       slices.Clone(t.Env),
		Outputs:   slices.Clone(t.Outputs),
		DependsOn: slices.Clone(s.DependsOn),
		Resources: recordResources(s),
		Retry:     recordRetry(t.Retry),
	}
	if s.When != nil {
		rs.When = s.When.String()
	}
	if s.ForEach != nil {
		rs.ForEach = &RecordForEach{Items: s.ForEach.Items.String(), Parallelism: s.ForEach.Parallelism}
	}
	in, err := s.Input.Render(func(i int) (string, error) { return refText(s.Input.Refs[i]), nil })
	switch {
	case err != nil:
		rs.Input, _ = json.Marshal("invalid input template: " + err.Error())
	case in != "":
		rs.Input = json.RawMessage(in)
	}
	if t.Timeout > 0 {
		rs.Timeout = t.Timeout.String()
	}
	if s.Cache.Enabled {
		c := s.Cache
		c.ExcludeInputs = slices.Clone(c.ExcludeInputs)
		rs.Cache = &c
	}
	return rs
}

// refText is the JSON shown for a ref in a record: constants as
// themselves, collected lists as lists, anything else as "${ref}".
func refText(r backends.Ref) string {
	switch r.Kind {
	case backends.RefConst:
		if v, err := backends.Select(r.Value, r.Path); err == nil {
			return string(v)
		}
	case backends.RefCollect:
		if len(r.Path) == 0 {
			parts := make([]string, len(r.Elems))
			for i, e := range r.Elems {
				parts[i] = refText(e)
			}
			return "[" + strings.Join(parts, ",") + "]"
		}
	}
	b, _ := json.Marshal("${" + r.String() + "}")
	return string(b)
}

func recordResources(s *backends.Step) *RecordResources {
	r := s.Resolved
	if len(r.Requests) == 0 && len(r.Limits) == 0 && len(r.Placement.NodeSelector) == 0 && len(r.Placement.Tolerations) == 0 {
		return nil
	}
	rr := &RecordResources{
		Requests:     r.Requests.DeepCopy(),
		Limits:       r.Limits.DeepCopy(),
		NodeSelector: maps.Clone(r.Placement.NodeSelector),
	}
	for _, t := range r.Placement.Tolerations {
		rr.Tolerations = append(rr.Tolerations, *t.DeepCopy())
	}
	return rr
}

func recordRetry(r *task.Retry) *RecordRetry {
	if r == nil || *r == (task.Retry{}) {
		return nil
	}
	rr := &RecordRetry{App: r.App, Infra: r.Infra, OnDemandFallback: r.OnDemandFallback}
	if r.Backoff.Initial > 0 {
		rr.BackoffInitial = r.Backoff.Initial.String()
	}
	rr.BackoffFactor = r.Backoff.Factor
	if r.Backoff.Max > 0 {
		rr.BackoffMax = r.Backoff.Max.String()
	}
	return rr
}

// artifact is what Compile returns: the plan to run and its record.
type artifact struct {
	plan   *backends.Plan
	record *Record
	doc    []byte
}

func (a *artifact) render() error {
	doc, err := yaml.Marshal(a.record)
	if err != nil {
		return fmt.Errorf("local: render the run record: %w", err)
	}
	a.doc = doc
	return nil
}

// Documents returns the run record as one YAML document.
func (a *artifact) Documents() [][]byte { return [][]byte{slices.Clone(a.doc)} }

// As sets *target for a **backends.Plan (the plan Submit runs) or a
// **Record (the record Documents renders).
func (a *artifact) As(target any) bool {
	switch t := target.(type) {
	case **backends.Plan:
		*t = a.plan
	case **Record:
		*t = a.record
	default:
		return false
	}
	return true
}
