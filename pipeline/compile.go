package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sluice-ml/sluice/backends"
)

// CompileOptions controls [Compile]. The zero value (or nil) compiles with
// every parameter at its default.
type CompileOptions struct {
	// Params overrides parameter defaults, name to text as given with
	// -p name=value: strings as is, anything else as JSON ("0.01",
	// "true", "[1,2]"). An override that names no parameter or does not
	// parse is a validation error.
	Params map[string]string
	// BeforeEmit, if set, is called once with the backend-native object
	// before it is rendered: the escape hatch for fields Sluice does not
	// model. Each backend's package doc lists the types as accepts.
	BeforeEmit func(as func(target any) bool) error
	// Artifacts, if set, overrides the pipeline's artifact store
	// (Options.Artifacts) for this compile: the root URL the compiled
	// run's artifacts go to.
	Artifacts string
}

// Plan validates p (with the given parameter overrides) and lowers it to
// the backend-neutral plan every backend compiles. Most programs never
// call it: [Compile] and [Run] do. It is useful to inspect what a backend
// will see, and to test backends. The Plan is read only, as every Plan is:
// steps with equal resource profiles share one Resolved (its maps and
// pointers), so a change to one step's would show in the others'.
func (p *Pipeline) Plan(params map[string]string) (*backends.Plan, error) {
	if p == nil {
		return nil, misuse("Plan of a nil *Pipeline; create one with pipeline.New")
	}
	plan, err := p.build(params)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %q is invalid:\n%w", p.name, err)
	}
	return plan, nil
}

// Compile validates p, lowers it to a [backends.Plan] and has b compile it.
// A validation failure returns an error holding every problem (see
// [FieldErrors]) and b is not called. opts may be nil.
func Compile(ctx context.Context, p *Pipeline, b backends.Backend, opts *CompileOptions) (backends.Artifact, error) {
	if err := checkPipelineAndBackend("Compile", p, b); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &CompileOptions{}
	}
	ctx, span := tracer().Start(ctx, "sluice.compile", trace.WithAttributes(
		attribute.String("sluice.pipeline", p.name),
		attribute.String("sluice.backend", backends.NameOf(b)),
	))
	defer span.End()
	art, err := compile(ctx, p, b, opts)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "compile failed")
	}
	return art, err
}

func compile(ctx context.Context, p *Pipeline, b backends.Backend, opts *CompileOptions) (backends.Artifact, error) {
	plan, err := p.Plan(opts.Params)
	if err != nil {
		return nil, err
	}
	if opts.Artifacts != "" {
		if err := artifact.CheckRoot(opts.Artifacts); err != nil {
			return nil, fmt.Errorf("pipeline: %q: artifacts: %w", p.name, err)
		}
		plan.Artifacts = opts.Artifacts
	}
	if l, ok := b.(backends.Linter); ok {
		// What the backend cannot compile, every problem at once as
		// field errors: the lint command prints the same.
		if err := l.Lint(plan); err != nil {
			return nil, fmt.Errorf("pipeline: compile %q with %s: %w", p.name, backends.NameOf(b), err)
		}
	}
	art, err := b.Compile(ctx, plan, &backends.CompileOptions{BeforeEmit: opts.BeforeEmit})
	if err != nil {
		return nil, fmt.Errorf("pipeline: compile %q with %s: %w", p.name, backends.NameOf(b), err)
	}
	return art, nil
}

// RunOptions controls [Run]. The zero value (or nil) runs with default
// parameters and reports no progress.
type RunOptions struct {
	// Params overrides parameter defaults, as in [CompileOptions].
	Params map[string]string
	// BeforeEmit is passed to the backend's Compile, as in
	// [CompileOptions].
	BeforeEmit func(as func(target any) bool) error
	// RunID asks the backend for this run id (see backends.SubmitOptions).
	RunID string
	// Scheduled, if set, is the time the run is for, what [RunScheduled]
	// gives its steps: to backfill an earlier day's run (see
	// backends.SubmitOptions).
	Scheduled time.Time
	// Progress, if set, is called with each new status of the run.
	Progress func(*backends.RunStatus)
	// Artifacts, if set, overrides the pipeline's artifact store, as in
	// [CompileOptions].
	Artifacts string
}

// ErrRunFailed is wrapped by the error [Run] returns when the run itself
// ended in failure or was canceled (as opposed to failing to start).
var ErrRunFailed = errors.New("pipeline: run failed")

// Run compiles p for b, submits it and waits for the run to end. b must
// implement [backends.Submitter]; without it the error wraps
// errors.ErrUnsupported. If b also implements [backends.Watcher], Run waits
// and returns the final status; otherwise it returns once submitted, with
// the status Pending.
//
// When ctx is canceled during the run and b implements
// [backends.Canceler], Run cancels the run, waits for it to stop (the exit
// handler still runs) and returns its final status.
//
// The error is nil only for a run that succeeded; a run that failed or was
// canceled returns its status and an error wrapping [ErrRunFailed].
func Run(ctx context.Context, p *Pipeline, b backends.Backend, opts *RunOptions) (*backends.RunStatus, error) {
	if err := checkPipelineAndBackend("Run", p, b); err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &RunOptions{}
	}
	ctx, span := tracer().Start(ctx, "sluice.run", trace.WithAttributes(
		attribute.String("sluice.pipeline", p.name),
		attribute.String("sluice.backend", backends.NameOf(b)),
	))
	defer span.End()
	st, err := run(ctx, p, b, opts)
	if st != nil {
		span.SetAttributes(attribute.String("sluice.run_id", st.RunID), attribute.String("sluice.phase", string(st.Phase)))
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "run failed")
	}
	return st, err
}

func run(ctx context.Context, p *Pipeline, b backends.Backend, opts *RunOptions) (*backends.RunStatus, error) {
	sub, ok := b.(backends.Submitter)
	if !ok {
		return nil, fmt.Errorf("pipeline: backend %s cannot run pipelines, only compile them: %w", backends.NameOf(b), errors.ErrUnsupported)
	}
	art, err := Compile(ctx, p, b, &CompileOptions{Params: opts.Params, BeforeEmit: opts.BeforeEmit, Artifacts: opts.Artifacts})
	if err != nil {
		return nil, err
	}
	id, err := sub.Submit(ctx, art, &backends.SubmitOptions{RunID: opts.RunID, Scheduled: opts.Scheduled})
	if err != nil {
		return nil, fmt.Errorf("pipeline: submit %q to %s: %w", p.name, backends.NameOf(b), err)
	}
	w, ok := b.(backends.Watcher)
	if !ok {
		return &backends.RunStatus{RunID: id, Pipeline: p.name, Phase: backends.PhasePending}, nil
	}
	wo := &backends.WatchOptions{Progress: opts.Progress}
	st, err := w.Watch(ctx, id, wo)
	if err != nil && ctx.Err() != nil {
		if c, ok := b.(backends.Canceler); ok {
			bg := context.WithoutCancel(ctx)
			if cerr := c.Cancel(bg, id); cerr != nil {
				return st, fmt.Errorf("pipeline: cancel run %s: %w", id, cerr)
			}
			st, err = w.Watch(bg, id, wo)
		}
	}
	if err != nil {
		return st, fmt.Errorf("pipeline: watch run %s: %w", id, err)
	}
	if st.Phase != backends.PhaseSucceeded {
		msg := st.Message
		if msg == "" {
			msg = string(st.Phase)
		}
		return st, fmt.Errorf("%w: %s", ErrRunFailed, msg)
	}
	return st, nil
}

const instrumentationName = "github.com/sluice-ml/sluice/pipeline"

// tracer returns the tracer of the global provider, a no-op until the
// application installs one; the library never configures exporters.
func tracer() trace.Tracer { return otel.Tracer(instrumentationName) }
