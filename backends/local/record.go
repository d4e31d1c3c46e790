package local

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/task"
)

// Record is what a local run of a plan would do: the document a local
// artifact renders, and the dry-run record. Inputs show each reference as
// a string "${ref}": a step's output or a field of it ("${prep}",
// "${eval.Accuracy}"), a parameter ("${params.lr}", whose value is under
// Params), the fan-out element ("${item}") or the run's outcome
// ("${run}"); constants show as themselves and collected lists as lists.
//
// Record and its parts (RecordStep, RecordParam, RecordForEach,
// RecordResources, RecordRetry) are for users' tests that look at what a
// dry run would do (through Artifact.As); writing a backend needs none of
// them.
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
	// PendingTimeout is recorded but never fires locally (see "# Retries
	// and timeouts" in the package doc).
	PendingTimeout string `json:"pendingTimeout,omitempty"`
}

func newRecord(plan *backends.Plan) *Record {
	rec := &Record{Pipeline: plan.Name, Steps: make([]RecordStep, 0, len(plan.Steps))}
	for _, p := range plan.Params {
		rec.Params = append(rec.Params, RecordParam{Name: p.Name, Type: p.Type, Value: slices.Clone(p.Value)})
	}
	for i := range plan.Steps {
		rec.Steps = append(rec.Steps, recordStep(&plan.Steps[i], false))
	}
	if plan.Exit != nil {
		rs := recordStep(plan.Exit, false)
		rec.Exit = &rs
	}
	return rec
}

// planRenders is newRecord(plan).renders(), without the record: each step's
// is a view (see recordStep), checked and dropped.
func planRenders(plan *backends.Plan) bool {
	ok := yamlText(plan.Name)
	for _, p := range plan.Params {
		ok = ok && yamlText(p.Name) && yamlText(p.Type) && yamlJSON(p.Value)
	}
	chunks := numChunks(len(plan.Steps))
	fails := make([]bool, chunks)
	forChunks(len(plan.Steps), chunks, func(k, lo, hi int) {
		for i := lo; i < hi && !fails[k]; i++ {
			rs := recordStep(&plan.Steps[i], true)
			fails[k] = !rs.renders()
		}
	})
	for _, failed := range fails {
		ok = ok && !failed
	}
	if ok && plan.Exit != nil {
		rs := recordStep(plan.Exit, true)
		ok = rs.renders()
	}
	return ok
}

// recordStep returns the record of s. A view is equal to it but shares
// the slices and maps it copies from s, and takes s's input template as it
// is when it has no refs, which rendering leaves unchanged: so it is
// made without copies, and must not outlive s or be changed.
func recordStep(s *backends.Step, view bool) RecordStep {
	t := s.Task
	clone := slices.Clone[[]string]
	if view {
		clone = func(x []string) []string { return x }
	}
	rs := RecordStep{
		Name:      s.Name,
		Kind:      t.Kind,
		Image:     t.Image,
		Command:   clone(t.Command),
		Args:      clone(t.Args),
		Env:       t.Env,
		Outputs:   t.Outputs,
		DependsOn: clone(s.DependsOn),
		Resources: recordResources(s, view),
		Retry:     recordRetry(t.Retry),
	}
	if !view {
		rs.Env, rs.Outputs = slices.Clone(t.Env), slices.Clone(t.Outputs)
	}
	if s.When != nil {
		rs.When = s.When.String()
	}
	if s.ForEach != nil {
		rs.ForEach = &RecordForEach{Items: s.ForEach.Items.String(), Parallelism: s.ForEach.Parallelism}
	}
	if in := s.Input; view && len(in.Refs) == 0 && len(in.Template) > 0 && !bytes.Contains(in.Template, placeholderPrefix) {
		rs.Input = in.Template
	} else if text, err := in.Render(func(i int) (string, error) { return refText(in.Refs[i]), nil }); err != nil {
		rs.Input, _ = json.Marshal("invalid input template: " + err.Error())
	} else if text != "" {
		rs.Input = json.RawMessage(text)
	}
	if t.Timeout > 0 {
		rs.Timeout = t.Timeout.String()
	}
	if s.Cache.Enabled {
		c := s.Cache
		c.ExcludeInputs = clone(c.ExcludeInputs)
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

// recordResources returns s's resolved resources, copied unless view (see
// recordStep).
func recordResources(s *backends.Step, view bool) *RecordResources {
	r := s.Resolved
	if len(r.Requests) == 0 && len(r.Limits) == 0 && len(r.Placement.NodeSelector) == 0 && len(r.Placement.Tolerations) == 0 {
		return nil
	}
	if view {
		return &RecordResources{Requests: r.Requests, Limits: r.Limits, NodeSelector: r.Placement.NodeSelector, Tolerations: r.Placement.Tolerations}
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
	if r.PendingTimeout > 0 {
		rr.PendingTimeout = r.PendingTimeout.String()
	}
	return rr
}

// compiled is what Compile returns: the plan to run and its record.
//
// Rendering the record as YAML costs tens of microseconds a step, far more
// than running a no-op Go task, and a run never reads it. So Compile
// renders it only when it cannot prove that rendering succeeds (to return
// the error) or when BeforeEmit could have kept the record to change it
// later; otherwise the record is rendered on first use: by Documents, or by
// As before it hands out the record, so the document is always the record
// as Compile left it. Making the record costs a few allocations a step,
// about as much as running a no-op task: Compile makes it only for
// BeforeEmit or to render it, and otherwise on first use too (see rec),
// from the plan, which nothing changes meanwhile: As makes it before it
// hands out the plan, and Submit only reads the plan.
type compiled struct {
	plan     *backends.Plan
	checked  *Backend // whose Compile checked plan, which Submit need not check again
	recOnce  sync.Once
	record   *Record     // see rec
	compiled atomic.Bool // Compile returned it: As renders before handing out the record

	once sync.Once
	doc  []byte
	err  error
}

// rec returns the record, made on first use unless set.
func (a *compiled) rec() *Record {
	a.recOnce.Do(func() {
		if a.record == nil {
			a.record = newRecord(a.plan)
		}
	})
	return a.record
}

func (a *compiled) render() error {
	a.once.Do(func() {
		// yaml.Marshal is json.Marshal, then JSONToYAML, which parses
		// the JSON as YAML: jsonToYAML renders what YAML cannot read.
		j, err := json.Marshal(a.rec())
		var doc []byte
		if err == nil {
			doc, err = jsonToYAML(j)
		}
		if err != nil {
			a.err = fmt.Errorf("local: render the run record: %w", err)
			return
		}
		a.doc = doc
	})
	return a.err
}

// Documents returns the run record as one YAML document.
func (a *compiled) Documents() [][]byte {
	if err := a.render(); err != nil {
		// Unreachable: Compile rendered the record unless it proved
		// rendering succeeds (see renders).
		return [][]byte{[]byte("# " + err.Error() + "\n")}
	}
	return [][]byte{slices.Clone(a.doc)}
}

// As sets *target for a **backends.Plan (the plan Submit runs) or a
// **Record (the record Documents renders).
func (a *compiled) As(target any) bool {
	switch t := target.(type) {
	case **backends.Plan:
		a.rec() // as the plan is, should it be changed after all
		*t = a.plan
	case **Record:
		if a.compiled.Load() {
			a.render() // before the record can change; it cannot fail
		}
		*t = a.rec()
	default:
		return false
	}
	return true
}

// renders reports, conservatively and in time linear in the record's size,
// that rendering rec cannot fail. sigs.k8s.io/yaml encodes it as JSON
// (which fails on invalid raw JSON and on NaN or infinite floats), then
// parses that as YAML (which fails on characters YAML does not allow, on
// mapping keys longer than 1024 bytes and on nesting deeper than 10 000)
// and emits YAML. A false result only means Compile renders at once.
func (rec *Record) renders() bool {
	ok := yamlText(rec.Pipeline)
	for _, p := range rec.Params {
		ok = ok && yamlText(p.Name) && yamlText(p.Type) && yamlJSON(p.Value)
	}
	for i := range rec.Steps {
		ok = ok && rec.Steps[i].renders()
	}
	return ok && (rec.Exit == nil || rec.Exit.renders())
}

func (s *RecordStep) renders() bool {
	ok := yamlText(s.Name) && yamlText(string(s.Kind)) && yamlText(s.Image) &&
		yamlText(s.When) && yamlText(s.Timeout) && yamlJSON(s.Input)
	for _, list := range [...][]string{s.Command, s.Args, s.DependsOn} {
		for _, x := range list {
			ok = ok && yamlText(x)
		}
	}
	for _, e := range s.Env {
		ok = ok && yamlText(e.Name) && yamlText(e.Value)
	}
	for _, o := range s.Outputs {
		ok = ok && yamlText(o.Field) && yamlText(o.Path)
	}
	if s.ForEach != nil {
		ok = ok && yamlText(s.ForEach.Items)
	}
	if r := s.Retry; r != nil {
		ok = ok && !math.IsNaN(r.BackoffFactor) && !math.IsInf(r.BackoffFactor, 0) &&
			yamlText(r.BackoffInitial) && yamlText(r.BackoffMax) && yamlText(r.PendingTimeout)
	}
	if c := s.Cache; c != nil {
		ok = ok && yamlText(c.Version)
		for _, x := range c.ExcludeInputs {
			ok = ok && yamlText(x)
		}
	}
	if r := s.Resources; r != nil {
		for _, l := range [...]corev1.ResourceList{r.Requests, r.Limits} {
			for name := range l { // quantities render as ASCII
				ok = ok && yamlKey(string(name))
			}
		}
		for k, v := range r.NodeSelector {
			ok = ok && yamlKey(k) && yamlText(v)
		}
		for _, t := range r.Tolerations {
			ok = ok && yamlText(t.Key) && yamlText(string(t.Operator)) && yamlText(t.Value) && yamlText(string(t.Effect))
		}
	}
	return ok
}

// maxYAMLKey bounds, in bytes before JSON escaping, the mapping keys
// renders accepts: JSON escaping makes a byte at most 6, and YAML allows
// keys of 1024.
const maxYAMLKey = 160

// yamlText reports whether s, encoded as a JSON string, holds only
// characters YAML allows. encoding/json escapes control characters below
// U+0020 and turns invalid UTF-8 into U+FFFD, but leaves DEL, the C1
// controls (NEL among them) and U+FFFE and U+FFFF as they are.
func yamlText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x7f {
			return yamlRunes(s[i:])
		}
	}
	return true
}

func yamlRunes(s string) bool {
	for _, r := range s {
		if !yamlRune(r) {
			return false
		}
	}
	return true
}

// yamlRune reports whether YAML allows r, and not as a line break (NEL,
// LS and PS are line breaks to YAML 1.1, which breaks a mapping key); the
// RuneError of invalid UTF-8 is allowed because encoding/json replaces it.
func yamlRune(r rune) bool {
	switch {
	case r < 0x7f:
		return true
	case r == 0x2028, r == 0x2029:
		return false
	case r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000:
		return true
	}
	return false
}

func yamlKey(s string) bool { return len(s) <= maxYAMLKey && yamlText(s) }

// yamlJSON reports whether raw JSON (copied as is, not re-encoded) renders:
// valid UTF-8 JSON with only characters YAML allows, no escape YAML lacks
// (\/ and \uD800 to \uDFFF, even in pairs), object keys of at most
// maxYAMLKey bytes and nesting at most 1000 deep. Empty is fine: fields
// holding it are omitted or rendered as null.
func yamlJSON(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return true
	}
	if !json.Valid(raw) || !utf8.Valid(raw) {
		return false
	}
	depth, start := 0, -1 // start: where the string being read began
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if start >= 0 { // in a string
			switch {
			case c == '\\':
				i++ // valid JSON: an escape follows
				switch raw[i] {
				case '/':
					return false
				case 'u':
					if h := raw[i+1]; (h == 'd' || h == 'D') && raw[i+2] >= '8' {
						return false // \uD800 to \uDFFF: raw[i+2] is a hex digit
					}
				}
			case c == '"':
				if i-start > maxYAMLKey && isKey(raw[i+1:]) {
					return false
				}
				start = -1
			case c >= 0x7f:
				r, n := utf8.DecodeRune(raw[i:])
				if !yamlRune(r) {
					return false
				}
				i += n - 1
			}
			continue
		}
		switch c {
		case '"':
			start = i
		case '{', '[':
			if depth++; depth > 1000 {
				return false
			}
		case '}', ']':
			depth--
		}
	}
	return true
}

// isKey reports whether the JSON after a string starts with a colon, that
// is whether the string was an object key.
func isKey(rest []byte) bool {
	for _, c := range rest {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == ':'
	}
	return false
}
