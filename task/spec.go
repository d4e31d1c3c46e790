package task

import (
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/sluice-ml/sluice/resources"
)

// Spec is the non-generic description of a task: what backends see. It is
// plain data; [Spec.Clone] returns a deep copy.
type Spec struct {
	// Name is the task's name as the user wrote it.
	Name string
	// Kind says whether the task is a Go function or a container.
	Kind Kind
	// Image is the container image. For a Go task it is an image holding the
	// pipeline's own binary; local backends do not need it.
	Image string
	// Command and Args are the container's command line (container tasks).
	// They may hold {{.Field}} placeholders naming fields of the input.
	Command []string
	Args    []string
	// Env are extra environment variables; values may hold placeholders.
	Env []EnvVar
	// Outputs says where a container task writes each output field.
	Outputs []Output
	// Resources is the task's own profile, before inheritance.
	Resources resources.Profile
	// Retry is the task's retry policy; nil inherits the pipeline default.
	Retry *Retry
	// Timeout bounds each attempt, up to [MaxTimeout]; zero inherits the
	// pipeline default.
	Timeout time.Duration
	// Cache is the task's cache policy.
	Cache Cache
	// Security is the task's own security settings for its pod on
	// Kubernetes backends ([Security]); nil keeps the backend's.
	Security *Security
	// Access is what the task's code does with the Kubernetes API of the
	// cluster it runs in ([Access], [Task.WithAccess]); nil for nothing.
	Access []Access
	// InputType and OutputType are the task's In and Out types.
	InputType, OutputType reflect.Type
}

// EnvVar is one environment variable of a container.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Output maps one output field (its JSON name) to the file a container
// task writes it to.
type Output struct {
	Field string `json:"field"`
	Path  string `json:"path"`
}

// Clone returns a deep copy of s.
func (s Spec) Clone() Spec {
	s.Command = slices.Clone(s.Command)
	s.Args = slices.Clone(s.Args)
	s.Env = slices.Clone(s.Env)
	s.Outputs = slices.Clone(s.Outputs)
	s.Resources = resources.Merge(resources.Profile{}, s.Resources)
	if s.Retry != nil {
		r := *s.Retry
		s.Retry = &r
	}
	s.Cache.ExcludeInputs = slices.Clone(s.Cache.ExcludeInputs)
	s.Security = s.Security.Clone()
	s.Access = cloneAccess(s.Access)
	return s
}

// Retry is a retry policy with separate budgets for the two ways an attempt
// can fail:
//
//   - an application failure (the task returned an error, exited non-zero,
//     or ran out of time) consumes the App budget;
//   - an infrastructure failure (the pod was preempted or evicted, or its
//     node was lost) consumes the Infra budget.
//
// So a spot preemption never uses up the retries meant for real bugs, and a
// bug is never retried as often as spot capacity needs.
type Retry struct {
	// App is how many times an application failure is retried: 0 to
	// [MaxRetries], and App + Infra at most MaxRetries.
	App int `json:"app,omitempty"`
	// Infra is how many times an infrastructure failure is retried: 0 to
	// [MaxRetries], and App + Infra at most MaxRetries.
	Infra int `json:"infra,omitempty"`
	// Backoff spaces the attempts; the zero value retries at once.
	Backoff Backoff `json:"backoff,omitempty"`
	// OnDemandFallback moves the last attempt allowed by the Infra budget
	// off spot/preemptible capacity onto on-demand nodes.
	OnDemandFallback bool `json:"onDemandFallback,omitempty"`
	// PendingTimeout, if positive, bounds how long an attempt may wait to
	// be placed on a node: a pod the scheduler still cannot place after
	// that long is stopped and the attempt counts as an infrastructure
	// failure ("unschedulable for D: <the scheduler's message>"), so the
	// Infra budget and OnDemandFallback apply, as for spot capacity that
	// never comes. Zero waits as long as it takes; at most [MaxTimeout].
	// Backends say in their package docs whether they support it (see
	// "# Retries" there).
	PendingTimeout time.Duration `json:"pendingTimeout,omitempty"`
}

// MaxAttempts is the most attempts the policy allows: one plus both budgets.
func (r Retry) MaxAttempts() int { return 1 + r.App + r.Infra }

// Backoff is an exponential backoff: the n-th retry (n from 1) waits
// Initial × Factor^(n-1), capped at Max.
type Backoff struct {
	// Initial is the first delay, 0 to [MaxBackoffDelay]; zero retries at
	// once.
	Initial time.Duration `json:"initial,omitempty"`
	// Factor multiplies the delay after each retry: 1 to
	// [MaxBackoffFactor], or zero for 2. Argo takes whole factors only.
	Factor float64 `json:"factor,omitempty"`
	// Max caps the delay: Initial to [MaxBackoffDelay]; zero means a cap
	// of MaxBackoffDelay.
	Max time.Duration `json:"max,omitempty"`
}

// Delay returns how long to wait before retry n (n ≥ 1): never negative,
// and at most Max, or [MaxBackoffDelay] when Max is zero, even for a
// backoff that Validate rejects.
func (b Backoff) Delay(n int) time.Duration {
	if b.Initial <= 0 || n < 1 {
		return 0
	}
	f := b.Factor
	if f == 0 {
		f = 2
	}
	if b.Max <= 0 || b.Max > MaxBackoffDelay {
		b.Max = MaxBackoffDelay
	}
	if b.Initial >= b.Max || !(f >= 1) { // !(f >= 1) also catches NaN
		return min(b.Initial, b.Max)
	}
	// Pow, not a loop: n may be large, and a factor of 1 (or just above)
	// never reaches the cap.
	d := float64(b.Initial) * math.Pow(f, float64(n-1))
	if d >= float64(b.Max) { // also +Inf
		return b.Max
	}
	return time.Duration(d)
}

// Cache is a task's cache policy. A cached result is reused when the task's
// spec, image, version and inputs (minus ExcludeInputs) are unchanged.
type Cache struct {
	// Enabled turns caching on for the task.
	Enabled bool `json:"enabled,omitempty"`
	// Version is part of the key; change it when the task's code changes in
	// a way the image reference does not show (a Go task run locally).
	Version string `json:"version,omitempty"`
	// ExcludeInputs names input fields (Go or JSON names) that do not
	// change the result, such as a log level, and stay out of the key.
	ExcludeInputs []string `json:"excludeInputs,omitempty"`
}

// jsonNames returns the JSON names of t's exported, non-ignored fields in
// declaration order, following encoding/json's rules for tags (embedded
// structs are flattened). A non-struct type has no fields.
func jsonNames(t reflect.Type) []string {
	var out []string
	for _, f := range jsonFields(t) {
		out = append(out, f.json)
	}
	return out
}

// JSONField is one key of a struct type as encoding/json names it. For
// the pipeline package and backend authors.
type JSONField struct {
	// Name is the JSON key, GoName the field's Go name.
	Name, GoName string
	Type         reflect.Type
}

// JSONFields returns the keys of struct type t (or a pointer to one) as
// encoding/json names them: exported fields, tag names, embedded
// structs flattened, "-" left out; nil for any other type.
func JSONFields(t reflect.Type) []JSONField {
	fs := jsonFields(t)
	out := make([]JSONField, len(fs))
	for i, f := range fs {
		out[i] = JSONField{Name: f.json, GoName: f.goName, Type: f.typ}
	}
	return out
}

type jsonField struct {
	goName, json string
	typ          reflect.Type
}

func jsonFields(t reflect.Type) []jsonField {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft)...)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{goName: f.Name, json: name, typ: f.Type})
	}
	return out
}

func jsonName(t reflect.Type, name string) string {
	if j, _, ok := FieldByName(t, name); ok {
		return j
	}
	return name
}
