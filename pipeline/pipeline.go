package pipeline

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// Pipeline is a graph of steps under construction. Build it with [New],
// [Add], [ForEach], [FanOut], [OnExit] and [NewParam]; no builder ever
// fails or panics on user content: problems are recorded and reported all
// at once by [Pipeline.Validate], which [Compile] and [Run] also call.
//
// A Pipeline is not safe for concurrent modification. Once built it may be
// compiled and run concurrently.
type Pipeline struct {
	name     string
	defaults Defaults
	pools    []resources.NodePool
	store    string
	nodes    []*node
	params   []*param
	exits    []*node
}

// Options configures a pipeline. The zero value is a pipeline with no
// defaults and no node pools.
type Options struct {
	// Defaults apply to every task that does not set its own.
	Defaults Defaults
	// NodePools are the node pools tasks may name in
	// resources.Profile.NodePool; a profile must fit the pool it names.
	NodePools []resources.NodePool
	// Artifacts is the root URL of the store the pipeline's artifacts go
	// to, such as s3://bucket/prefix?region=eu-west-1 (see package
	// artifact for the schemes, the layout and the credentials). Empty
	// means the backend's default: a directory under the user's cache
	// directory on the local backend, none on the cluster backends. The
	// run and compile flag -artifacts, and RunOptions.Artifacts, override it.
	Artifacts string
}

// Defaults are the pipeline-level settings a task inherits. There is no
// default image: the image holding the program that Go tasks run in is a
// cluster backend's setting (kubepod.Options.Image, the Pod field of
// argo.Options and kubejob.Options), next to the program's path in it;
// a task's own image (WithImage) wins over it.
type Defaults struct {
	// Resources is the base profile; a task's profile is merged over it
	// with [resources.Merge].
	Resources resources.Profile
	// Retry is the policy of tasks that set none.
	Retry task.Retry
	// Timeout bounds each attempt of tasks that set none, up to
	// task.MaxTimeout; zero is none.
	Timeout time.Duration
}

// New returns an empty pipeline named name. opts may be nil.
func New(name string, opts *Options) *Pipeline {
	p := &Pipeline{name: name}
	if opts != nil {
		p.defaults = opts.Defaults
		p.defaults.Resources = resources.Merge(resources.Profile{}, opts.Defaults.Resources)
		p.pools = slices.Clone(opts.NodePools)
		p.store = opts.Artifacts
	}
	return p
}

// Name returns the pipeline's name as given to New.
func (p *Pipeline) Name() string {
	if p == nil {
		return ""
	}
	return p.name
}

// Status returns a reference to the run's outcome. Only the exit handler
// (see [OnExit]) may read it; anywhere else it is a validation error.
func (p *Pipeline) Status() Ref[RunInfo] {
	mustPipeline(p, "Pipeline.Status")
	return Ref[RunInfo]{src: newSource(&source{kind: srcRun, pipe: p, typ: typeOf[RunInfo]()})}
}

// RunInfo is what the exit handler learns about the run: its phase and
// the steps that failed.
type RunInfo = backends.RunInfo

// node is one step of the graph.
type node struct {
	p     *Pipeline
	index int
	// name is the step's name: the task's name, or "<task>-<i>" for a
	// step made by FanOut.
	name   string
	spec   task.Spec
	invoke task.Invoker
	input  any
	after  []*node
	// badAfter records After arguments that were zero Steps.
	badAfter int
	when     []Cond
	forEach  *forEach
	exit     bool
	// fanIndex is the element index for a step made by FanOut, else -1.
	fanIndex int
	// checks are validation checks added with Step.Check (check.go).
	checks []func() error
	// summary renders the step's output for the run summary (Step.Summarize).
	summary func(info SummaryInfo, out json.RawMessage) (string, error)
}

type forEach struct {
	items       *source
	parallelism int
	limitSet    bool
	maxFailed   int     // Tolerate
	maxFailedF  float64 // TolerateFraction
}

// Dependency is something a step can be ordered after: a [Step] or a
// [Fan]. The interface is sealed.
type Dependency interface {
	depNodes() []*node
}

func (p *Pipeline) addNode(spec task.Spec, inv task.Invoker, input any) *node {
	n := &node{p: p, index: len(p.nodes), name: spec.Name, spec: spec, invoke: inv, input: input, fanIndex: -1}
	p.nodes = append(p.nodes, n)
	return n
}
