package backends

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	"strconv"

	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// Plan is a validated, backend-neutral pipeline: what package pipeline hands
// every backend. Package pipeline guarantees, for every Plan it produces:
//
//   - Name and every Step.Name are DNS-1123 labels (lowercase alphanumerics
//     and '-', at most 63 characters) and step names are unique;
//   - Steps are in a topological order: every name in DependsOn, every step
//     a Ref or Condition names, and a ForEach's items all refer to earlier
//     steps; ties are broken by the order steps were added;
//   - each Step's Task.Resources is the merged profile (pipeline defaults,
//     then task overrides) and Resolved is that profile resolved against
//     NodePools; Retry is never nil and Timeout is the effective timeout;
//   - every Param has a Default that decodes as its Type, and Value is the
//     default or the override given at compile time;
//   - Exit, when set, is not part of Steps and has no dependencies.
//
// A Plan is plain data. Backends must not modify it.
type Plan struct {
	// Name is the pipeline's DNS-1123 name; DisplayName is as written.
	Name, DisplayName string
	// Params are the pipeline's run-time parameters, in declaration order.
	Params []Param
	// Steps are the pipeline's steps in topological order.
	Steps []Step
	// Exit is the exit handler, run after all steps whatever their outcome;
	// nil when there is none.
	Exit *Step
	// NodePools are the node pools the pipeline declared, which each
	// step's Resolved placement was resolved against; a backend that
	// takes per-pool settings checks their names against it (local's
	// Options.Pools).
	NodePools []resources.NodePool
	// Artifacts is the root URL of the run's artifact store (see package
	// artifact), "" when the pipeline and the run named none: then the
	// local backend uses artifact.DefaultRoot and the cluster backends
	// have no store, so tasks that write artifacts fail and outputs must
	// fit in-band.
	Artifacts string
}

// Step returns the step named name (Steps or Exit), or nil.
func (p *Plan) Step(name string) *Step {
	for i := range p.Steps {
		if p.Steps[i].Name == name {
			return &p.Steps[i]
		}
	}
	if p.Exit != nil && p.Exit.Name == name {
		return p.Exit
	}
	return nil
}

// Param is a typed run-time parameter of a Plan.
type Param struct {
	// Name is the parameter's name as declared: a C identifier-like string.
	Name string
	// Type is the parameter's Go type, for example "float64".
	Type string
	// Default is the declared default, as JSON.
	Default json.RawMessage
	// Value is the value to run with, as JSON: the default or an override.
	Value json.RawMessage
	// Text reports that every value of the parameter is a JSON string
	// (its type's kind is string), so a backend may keep it as plain
	// text: Argo stores it without JSON quotes.
	Text bool
}

// Step is one node of a Plan.
type Step struct {
	// Name is the step's unique DNS-1123 name; DisplayName is the name the
	// user gave the task.
	Name, DisplayName string
	// Task is the task's description with inheritance applied: Image,
	// Retry and Timeout are the effective values, Resources the merged
	// profile.
	Task task.Spec
	// Resolved is Task.Resources turned into pod requirements.
	Resolved resources.Resolved
	// Invoke runs a Go task in process (local backends, the in-pod
	// invocation mode); nil for container tasks.
	Invoke task.Invoker
	// Input is the step's input, with references to values that only exist
	// at run time.
	Input Input
	// DependsOn names the earlier steps this one waits for, sorted: data
	// dependencies, condition dependencies and explicit ordering (After).
	DependsOn []string
	// When, if not nil, is evaluated once DependsOn are done; the step is
	// skipped when it is false. A step that depends on a skipped step is
	// skipped too, without evaluating When.
	When *Condition
	// ForEach, if not nil, makes this a dynamic fan-out: the step runs once
	// per element of a list known only at run time, and its output is the
	// list of the instances' outputs in element order.
	ForEach *ForEach
	// Cache is the effective cache policy (see [task.Cache]).
	Cache task.Cache
}

// ForEach is a dynamic fan-out over a run-time list.
type ForEach struct {
	// Items refers to the list; it is a StepOutput or Param ref.
	Items Ref
	// Parallelism caps how many instances run at once; zero is no cap.
	Parallelism int
	// MaxFailed and MaxFailedFraction are the fan-out's failure
	// tolerance: the step still succeeds when at most MaxFailed
	// instances, or the fraction MaxFailedFraction of them (rounded
	// down), whichever is more, failed; its output then lists the
	// successful instances' outputs. Zero tolerates none. See package
	// runstate.
	MaxFailed         int
	MaxFailedFraction float64
}

// RefKind says what a [Ref] refers to.
type RefKind string

const (
	// RefStep is the output of step Step (the whole list for a ForEach
	// step).
	RefStep RefKind = "step"
	// RefParam is the value of parameter Param.
	RefParam RefKind = "param"
	// RefItem is the current element of the enclosing ForEach.
	RefItem RefKind = "item"
	// RefCollect is a list whose elements are Elems, in order.
	RefCollect RefKind = "collect"
	// RefRun is the run's outcome, a [RunInfo]; only the exit handler
	// uses it.
	RefRun RefKind = "run"
	// RefConst is a constant, Value.
	RefConst RefKind = "const"
)

// Ref is a reference to a value known at run time.
type Ref struct {
	Kind  RefKind
	Step  string          // RefStep
	Param string          // RefParam
	Elems []Ref           // RefCollect
	Value json.RawMessage // RefConst
	Meta  Meta            // RefMeta
	// Path selects a field of the value by JSON names, outermost first.
	Path []string
}

// String renders r for messages and graphs: "train", "train.Accuracy",
// "params.lr", "item", "runID", "[a, b]".
func (r Ref) String() string {
	var s string
	switch r.Kind {
	case RefStep:
		s = r.Step
	case RefParam:
		s = "params." + r.Param
	case RefItem:
		s = "item"
	case RefRun:
		s = "run"
	case RefConst:
		s = string(r.Value)
	case RefMeta:
		s = string(r.Meta)
	case RefCollect:
		var b bytes.Buffer
		b.WriteByte('[')
		for i, e := range r.Elems {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(e.String())
		}
		b.WriteByte(']')
		s = b.String()
	}
	for _, p := range r.Path {
		s += "." + p
	}
	return s
}

// Input is a step's input: a compact JSON document in which some values are
// placeholders for [Ref]s. Placeholder i is the JSON object
// {"$sluice":i} and stands for Refs[i]. Backends resolve it with
// [Input.Resolve] or splice their own expressions in with [Input.Render].
type Input struct {
	Template json.RawMessage
	Refs     []Ref
}

// placeholderPrefix starts every placeholder in an Input template. It
// cannot occur inside a JSON string of compact JSON because its quotes
// would be escaped there.
const placeholderPrefix = `{"$sluice":`

// Placeholder returns the placeholder text for Refs[i].
func Placeholder(i int) string { return placeholderPrefix + strconv.Itoa(i) + "}" }

// Render returns the template with each placeholder replaced by
// repl(index). It lets a backend splice in its own expression syntax, for
// example an Argo parameter reference.
func (in Input) Render(repl func(i int) (string, error)) (string, error) {
	t := in.Template
	var b bytes.Buffer
	for {
		k := bytes.Index(t, []byte(placeholderPrefix))
		if k < 0 {
			b.Write(t)
			return b.String(), nil
		}
		b.Write(t[:k])
		t = t[k+len(placeholderPrefix):]
		end := bytes.IndexByte(t, '}')
		if end < 0 {
			return "", fmt.Errorf("backends: malformed input template")
		}
		i, err := strconv.Atoi(string(t[:end]))
		if err != nil || i < 0 || i >= len(in.Refs) {
			return "", fmt.Errorf("backends: input template names ref %q of %d", t[:end], len(in.Refs))
		}
		s, err := repl(i)
		if err != nil {
			return "", err
		}
		b.WriteString(s)
		t = t[end+1:]
	}
}

// Resolve returns the input as concrete JSON, with each ref replaced by the
// JSON value value(ref) returns.
func (in Input) Resolve(value func(Ref) (json.RawMessage, error)) (json.RawMessage, error) {
	s, err := in.Render(func(i int) (string, error) {
		v, err := value(in.Refs[i])
		return string(v), err
	})
	return json.RawMessage(s), err
}

// Select returns the field of v at path (JSON names), for Ref.Path.
func Select(v json.RawMessage, path []string) (json.RawMessage, error) {
	for _, p := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil {
			return nil, fmt.Errorf("backends: select %q: value is not an object", p)
		}
		f, ok := obj[p]
		if !ok {
			return json.RawMessage("null"), nil
		}
		v = f
	}
	return v, nil
}

// Condition is a boolean expression over run-time values, kept as data so
// every backend can translate it (Argo renders it as a when expression).
type Condition struct {
	// Op is one of "==", "!=", "<", "<=", ">", ">=" (comparing Ref with
	// Value), "and", "or", "not" (over Args), or "true" (Ref is true).
	Op string
	// Ref is the compared value.
	Ref *Ref
	// Value is the JSON constant compared against, unless Other is set;
	// nil is the constant null.
	Value json.RawMessage
	// Other, if set, is the run-time value compared against.
	Other *Ref
	// Args are the operands of "and", "or" and "not".
	Args []Condition
}

// String renders c, for example "eval.Accuracy >= 0.9".
func (c Condition) String() string {
	switch c.Op {
	case "and", "or":
		var b bytes.Buffer
		b.WriteByte('(')
		for i, a := range c.Args {
			if i > 0 {
				b.WriteString(" " + c.Op + " ")
			}
			b.WriteString(a.String())
		}
		b.WriteByte(')')
		return b.String()
	case "not":
		if len(c.Args) == 1 {
			return "not " + c.Args[0].String()
		}
		return "not ?"
	case "true":
		return c.Ref.String()
	default:
		if c.Other != nil {
			return c.Ref.String() + " " + c.Op + " " + c.Other.String()
		}
		return c.Ref.String() + " " + c.Op + " " + string(c.Value)
	}
}

// Refs returns every ref c reads.
func (c Condition) Refs() []Ref {
	var out []Ref
	if c.Ref != nil {
		out = append(out, *c.Ref)
	}
	if c.Other != nil {
		out = append(out, *c.Other)
	}
	for _, a := range c.Args {
		out = append(out, a.Refs()...)
	}
	return out
}

// CacheKeyParts are what a step's cache key is computed from. Every backend
// that caches computes the same key from the same parts, so a result
// cached by one run is recognised by the next wherever it runs.
type CacheKeyParts struct {
	// Task is the task's name; Kind, Image, Command, Args, Env and
	// Outputs are its spec.
	Task    string        `json:"task"`
	Kind    task.Kind     `json:"kind"`
	Image   string        `json:"image,omitempty"`
	Command []string      `json:"command,omitempty"`
	Args    []string      `json:"args,omitempty"`
	Env     []task.EnvVar `json:"env,omitempty"`
	Outputs []task.Output `json:"outputs,omitempty"`
	// Version is the cache policy's version.
	Version string `json:"version,omitempty"`
	// Input is the resolved input as canonical JSON (object keys sorted),
	// without the top-level fields the policy excludes.
	Input json.RawMessage `json:"input"`
}

// Key returns the cache key: the hex SHA-256 of the parts' JSON encoding.
func (k CacheKeyParts) Key() string {
	b, _ := json.Marshal(k)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// NewCacheKeyParts returns the cache key parts of step s run with the
// resolved input. Excluded inputs may be named by Go or JSON name.
func NewCacheKeyParts(s *Step, input json.RawMessage) (CacheKeyParts, error) {
	t := s.Task
	exclude := make([]string, len(s.Cache.ExcludeInputs))
	for i, x := range s.Cache.ExcludeInputs {
		exclude[i] = x
		if j, _, ok := task.FieldByName(t.InputType, x); ok {
			exclude[i] = j
		}
	}
	// Artifacts count by their bytes (digest), not by where they are.
	dec := json.NewDecoder(bytes.NewReader(artifact.Canonical(input)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return CacheKeyParts{}, fmt.Errorf("cache key: input: %w", err)
	}
	if obj, ok := v.(map[string]any); ok {
		for _, x := range exclude {
			delete(obj, x)
		}
	}
	in, err := json.Marshal(v)
	if err != nil {
		return CacheKeyParts{}, fmt.Errorf("cache key: input: %w", err)
	}
	return CacheKeyParts{
		Task: t.Name, Kind: t.Kind, Image: t.Image,
		Command: t.Command, Args: t.Args, Env: t.Env, Outputs: t.Outputs,
		Version: s.Cache.Version, Input: in,
	}, nil
}
