package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// fakeBackend compiles a plan to one YAML document per step and, when
// runs is set, "runs" it by reporting the given final phase.
type fakeBackend struct {
	name     string
	final    backends.Phase
	runs     bool
	gotPlan  *backends.Plan
	canceled bool
}

type fakeArtifact struct{ docs [][]byte }

func (a fakeArtifact) Documents() [][]byte { return a.docs }
func (a fakeArtifact) As(any) bool         { return false }

func (f *fakeBackend) Name() string { return f.name }

func (f *fakeBackend) Compile(_ context.Context, plan *backends.Plan, _ *backends.CompileOptions) (backends.Artifact, error) {
	f.gotPlan = plan
	var docs [][]byte
	for _, s := range plan.Steps {
		b, err := yaml.Marshal(map[string]any{"kind": "Step", "name": s.Name, "dependsOn": s.DependsOn})
		if err != nil {
			return nil, err
		}
		docs = append(docs, b)
	}
	return fakeArtifact{docs}, nil
}

// runner is fakeBackend plus Submitter and Watcher.
type runner struct{ *fakeBackend }

func (r runner) Submit(context.Context, backends.Artifact, *backends.SubmitOptions) (string, error) {
	return "run-1", nil
}

func (r runner) Watch(_ context.Context, id string, o *backends.WatchOptions) (*backends.RunStatus, error) {
	st := &backends.RunStatus{RunID: id, Pipeline: r.gotPlan.Name, Phase: r.final}
	for _, s := range r.gotPlan.Steps {
		st.Steps = append(st.Steps, backends.StepStatus{Name: s.Name, Phase: r.final, Attempts: []backends.Attempt{{Number: 1, Phase: r.final}}})
	}
	if o.Progress != nil {
		o.Progress(st.Clone())
	}
	return st, nil
}

func exec(t *testing.T, p *pipeline.Pipeline, args []string, bs ...backends.Backend) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = pipeline.Exec(t.Context(), p, args, &out, &errb, bs...)
	return code, out.String(), errb.String()
}

func validPipeline() *pipeline.Pipeline {
	p := pipeline.New("churn", nil)
	pipeline.NewParam(p, "lr", 0.01)
	data := pipeline.Add(p, prep, PrepIn{Source: "s3://bucket/raw"})
	pipeline.Add(p, train, TrainIn{Data: data.Output()})
	return p
}

func TestExecLint(t *testing.T) {
	code, out, errs := exec(t, validPipeline(), []string{"lint"})
	assert.Equal(t, pipeline.ExitOK, code, errs)
	assert.Equal(t, "churn: valid, 2 steps\n", out)

	code, _, errs = exec(t, validPipeline(), []string{"lint", "-p", "lr=fast", "-p", "epochs=3"})
	assert.Equal(t, pipeline.ExitInvalid, code)
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	require.Len(t, lines, 2, errs)
	assert.True(t, strings.HasPrefix(lines[0], "pipeline.params[lr]: Invalid"), lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "pipeline.params[epochs]: NotFound"), lines[1])
}

func TestExecInvalidPipelineListsEveryProblemOnePerLine(t *testing.T) {
	p := pipeline.New("", nil)
	pipeline.Add(p, train.WithRetry(task.Retry{App: -1}), TrainIn{})
	pipeline.Add(p, train, TrainIn{})
	for _, args := range [][]string{{"lint"}, {"graph"}, {"compile", "-backend", "fake"}, {"run", "-backend", "fake"}} {
		code, out, errs := exec(t, p, args, runner{&fakeBackend{name: "fake", final: backends.PhaseSucceeded}})
		assert.Equal(t, pipeline.ExitInvalid, code, args)
		assert.Empty(t, out, args)
		assert.Equal(t, "pipeline.name: Required\n"+
			"pipeline.tasks[train].retry.app: Invalid\n"+
			"pipeline.tasks[train].name: Duplicate\n", stripDetails(errs), args)
	}
}

// stripDetails keeps "<field>: <type>" of each line.
func stripDetails(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		f, rest, _ := strings.Cut(line, ": ")
		typ, _, _ := strings.Cut(rest, " ")
		typ, _, _ = strings.Cut(typ, ":")
		b.WriteString(f + ": " + typ + "\n")
	}
	return b.String()
}

func TestExecCompile(t *testing.T) {
	fb := &fakeBackend{name: "fake"}
	code, out, errs := exec(t, validPipeline(), []string{"compile", "-backend", "fake", "-p", "lr=0.5"}, fb)
	require.Equal(t, pipeline.ExitOK, code, errs)
	assert.Equal(t, "dependsOn: null\nkind: Step\nname: prep\n---\ndependsOn:\n- prep\nkind: Step\nname: train\n", out)
	assert.JSONEq(t, "0.5", string(fb.gotPlan.Params[0].Value))

	code, out, errs = exec(t, validPipeline(), []string{"compile", "-backend", "fake", "-o", "json"}, fb)
	require.Equal(t, pipeline.ExitOK, code, errs)
	dec := json.NewDecoder(strings.NewReader(out))
	var n int
	for dec.More() {
		var doc map[string]any
		require.NoError(t, dec.Decode(&doc))
		n++
	}
	assert.Equal(t, 2, n)

	for _, args := range [][]string{
		{"compile"},
		{"compile", "-backend", "argo"},
		{"compile", "-backend", "fake", "-o", "xml"},
		{"compile", "-backend", "fake", "extra"},
		{"frobnicate"},
	} {
		code, _, errs := exec(t, validPipeline(), args, fb)
		assert.Equal(t, pipeline.ExitInvalid, code, "%v: %s", args, errs)
		assert.NotEmpty(t, errs, args)
	}
}

func TestExecGraph(t *testing.T) {
	code, out, _ := exec(t, validPipeline(), []string{"graph", "-format", "dot"})
	require.Equal(t, pipeline.ExitOK, code)
	assert.Equal(t, "digraph \"churn\" {\n  rankdir=TB;\n  node [shape=box];\n  \"prep\" [label=\"prep\"];\n  \"train\" [label=\"train\"];\n  \"prep\" -> \"train\";\n}\n", out)
	code, out, _ = exec(t, validPipeline(), []string{"graph"})
	require.Equal(t, pipeline.ExitOK, code)
	assert.Equal(t, "flowchart TD\n  s0[\"prep\"]\n  s1[\"train\"]\n  s0 --> s1\n", out)
	code, _, _ = exec(t, validPipeline(), []string{"graph", "-format", "png"})
	assert.Equal(t, pipeline.ExitInvalid, code)
}

func TestExecRun(t *testing.T) {
	ok := runner{&fakeBackend{name: "local", final: backends.PhaseSucceeded}}
	code, out, errs := exec(t, validPipeline(), nil, ok) // "run" on "local" is the default
	assert.Equal(t, pipeline.ExitOK, code, errs)
	assert.Contains(t, out, "run run-1 of churn: Succeeded")
	assert.Empty(t, errs, "quiet when stderr is not a terminal")

	report := filepath.Join(t.TempDir(), "report.json")
	failed := runner{&fakeBackend{name: "local", final: backends.PhaseFailed}}
	code, _, _ = exec(t, validPipeline(), []string{"run", "-report", report}, failed)
	assert.Equal(t, pipeline.ExitFailed, code)
	var st backends.RunStatus
	b, err := os.ReadFile(report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &st))
	assert.Equal(t, backends.PhaseFailed, st.Phase)

	compileOnly := &fakeBackend{name: "local"}
	code, _, errs = exec(t, validPipeline(), []string{"run"}, compileOnly)
	assert.Equal(t, pipeline.ExitInvalid, code)
	assert.Contains(t, errs, "cannot run pipelines")
}

func TestRunWithoutSubmitterIsUnsupported(t *testing.T) {
	_, err := pipeline.Run(t.Context(), validPipeline(), &fakeBackend{name: "x"}, nil)
	assert.ErrorIs(t, err, errors.ErrUnsupported)
}

func TestExecTaskInvocation(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "sub", "out.json")
	code, _, errs := exec(t, validPipeline(), []string{"task", "-step", "train", "-input", `{"Data":{"Rows":4},"LR":0.1}`, "-output-file", out})
	require.Equal(t, pipeline.ExitOK, code, errs)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	assert.JSONEq(t, `{"Loss":0.25}`, string(b))

	in := filepath.Join(dir, "in.json")
	require.NoError(t, os.WriteFile(in, []byte(`{"Source":"x"}`), 0o644))
	code, _, errs = exec(t, validPipeline(), []string{"task", "-step", "prep", "-input-file", in, "-output-file", out})
	require.Equal(t, pipeline.ExitOK, code, errs)

	failing := pipeline.New("f", nil)
	pipeline.Add(failing, task.New("boom", func(context.Context, struct{}) (struct{}, error) {
		return struct{}{}, errors.New("out of memory")
	}), struct{}{})
	code, _, errs = exec(t, failing, []string{"task", "-step", "boom", "-output-file", out})
	assert.Equal(t, pipeline.ExitFailed, code)
	assert.Contains(t, errs, "out of memory")

	lost := pipeline.New("l", nil)
	pipeline.Add(lost, task.New("fetch", func(context.Context, struct{}) (struct{}, error) {
		return struct{}{}, fmt.Errorf("dataset mount went away: %w", task.ErrInfrastructure)
	}), struct{}{})
	code, _, errs = exec(t, lost, []string{"task", "-step", "fetch", "-output-file", out})
	assert.Equal(t, backends.ExitInfrastructure, code, "an infrastructure failure has its own status: %s", errs)

	for _, args := range [][]string{
		{"task", "-step", "nope"},
		{"task", "-step", "train", "-input", "{not json"},
		{"task", "-step", "train", "-input", `{"Data":"wrong type"}`, "-output-file", out},
		{"task", "-step", "prep", "-input", "{}", "-input-file", in},
	} {
		// An input of the wrong shape is undecodable too: a malformed
		// invocation (2), not the task's failure (1), which would be
		// retried.
		code, _, errs := exec(t, validPipeline(), args)
		assert.Equal(t, pipeline.ExitInvalid, code, "%v: %s", args, errs)
	}
}

// A task run in a pod continues the trace the backend passed in
// TRACEPARENT.
func TestExecTaskContinuesTheTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	t.Setenv("TRACEPARENT", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")

	out := filepath.Join(t.TempDir(), "out.json")
	code, _, errs := exec(t, validPipeline(), []string{"task", "-step", "prep", "-input", `{"Source":"x"}`, "-output-file", out})
	require.Equal(t, pipeline.ExitOK, code, errs)

	spans := rec.Ended()
	require.Len(t, spans, 1)
	assert.Equal(t, "sluice.task", spans[0].Name())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[0].SpanContext().TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", spans[0].Parent().SpanID().String())
}

// A failed task's error goes to the termination-message file, exactly
// as the task returned it, when that file exists; the program never
// creates it.
func TestExecTaskWritesItsErrorToTheTerminationLog(t *testing.T) {
	dir := t.TempDir()
	tlog := filepath.Join(dir, "termination-log")
	require.NoError(t, os.WriteFile(tlog, nil, 0o666)) // as the kubelet makes it
	t.Setenv(backends.TerminationLogEnv, tlog)
	p := pipeline.New("f", nil)
	pipeline.Add(p, task.New("boom", func(context.Context, struct{}) (struct{}, error) {
		return struct{}{}, errors.New("boom attempt 1: out of memory")
	}), struct{}{})
	pipeline.Add(p, task.New("lost", func(context.Context, struct{}) (struct{}, error) {
		return struct{}{}, fmt.Errorf("dataset mount went away: %w", task.ErrInfrastructure)
	}), struct{}{})
	pipeline.Add(p, task.New("panics", func(context.Context, struct{}) (struct{}, error) {
		panic("index out of range")
	}), struct{}{})
	out := filepath.Join(dir, "out.json")
	for _, tc := range []struct {
		step string
		code int
		msg  string
	}{
		{"boom", pipeline.ExitFailed, "boom attempt 1: out of memory"},
		{"lost", backends.ExitInfrastructure, "dataset mount went away: infrastructure failure"},
		// A panic is the task's failure, as on the local backend (not
		// the Go runtime's exit status 2, a wrong invocation).
		{"panics", pipeline.ExitFailed, "panic: index out of range"},
	} {
		code, _, errs := exec(t, p, []string{"task", "-step", tc.step, "-output-file", out})
		assert.Equal(t, tc.code, code, "%s: %s", tc.step, errs)
		assert.Contains(t, errs, "f task "+tc.step+": "+tc.msg, "stderr keeps the line for the logs")
		b, err := os.ReadFile(tlog)
		require.NoError(t, err)
		assert.Equal(t, tc.msg, string(b), tc.step)
	}

	code, _, _ := exec(t, p, []string{"task", "-step", "nope"})
	assert.Equal(t, pipeline.ExitInvalid, code)
	b, _ := os.ReadFile(tlog)
	assert.Contains(t, string(b), `no Go task step "nope"`, "a wrong invocation says why too")

	missing := filepath.Join(dir, "no-such-log")
	t.Setenv(backends.TerminationLogEnv, missing)
	code, _, _ = exec(t, p, []string{"task", "-step", "boom", "-output-file", out})
	assert.Equal(t, pipeline.ExitFailed, code)
	assert.NoFileExists(t, missing, "the kubelet creates the file; the program never does")
}

// A task stopped from outside (the process got SIGTERM or SIGINT, which
// cancel Exec's context) exits 143, an infrastructure failure; a task
// that finishes anyway keeps its result, and one that ignores its
// context is given up on after the grace period.
func TestExecTaskStoppedBySignal(t *testing.T) {
	dir := t.TempDir()
	tlog := filepath.Join(dir, "termination-log")
	require.NoError(t, os.WriteFile(tlog, nil, 0o666))
	t.Setenv(backends.TerminationLogEnv, tlog)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	p := pipeline.New("s", nil)
	pipeline.Add(p, task.New("honours", func(ctx context.Context, _ struct{}) (struct{}, error) {
		started <- struct{}{}
		<-ctx.Done()
		return struct{}{}, fmt.Errorf("training interrupted: %w", ctx.Err())
	}), struct{}{})
	pipeline.Add(p, task.New("finishes", func(ctx context.Context, _ struct{}) (int, error) {
		started <- struct{}{}
		<-ctx.Done()
		return 7, nil // checkpointed and done
	}), struct{}{})
	pipeline.Add(p, task.New("ignores", func(ctx context.Context, _ struct{}) (struct{}, error) {
		started <- struct{}{}
		<-release
		return struct{}{}, nil
	}), struct{}{})
	out := filepath.Join(dir, "out.json")
	run := func(step string) (int, string) {
		ctx, cancel := context.WithCancelCause(t.Context())
		go func() {
			<-started
			cancel(errors.New("terminated signal received"))
		}()
		var errb bytes.Buffer
		code := pipeline.Exec(ctx, p, []string{"task", "-step", step, "-output-file", out}, io.Discard, &errb)
		return code, errb.String()
	}

	code, errs := run("honours")
	assert.Equal(t, backends.ExitTerminated, code, errs)
	b, _ := os.ReadFile(tlog)
	assert.Equal(t, "stopped (terminated signal received): training interrupted: context canceled", string(b))

	code, errs = run("finishes")
	assert.Equal(t, pipeline.ExitOK, code, errs)
	b, _ = os.ReadFile(out)
	assert.JSONEq(t, "7", string(b))

	t.Cleanup(pipeline.SetStopGrace(time.Millisecond))
	code, errs = run("ignores")
	assert.Equal(t, backends.ExitTerminated, code, errs)
	b, _ = os.ReadFile(tlog)
	assert.Contains(t, string(b), "stopped (terminated signal received): the task did not return within 1ms of being stopped")
}
