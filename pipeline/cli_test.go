package pipeline_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

// userCache points the user's cache directory at a fresh temporary one
// for the test, so that the run command's default cache never writes to
// the real one, and returns it.
func userCache(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "xdg"))
	t.Setenv("HOME", filepath.Join(dir, "home"))
	t.Setenv("LocalAppData", filepath.Join(dir, "appdata"))
	got, err := os.UserCacheDir()
	require.NoError(t, err)
	return got
}

// TestExecMisuse runs the program's commands wrongly: each case must exit
// with the status a script or a backend can rely on and say what was
// wrong.
func TestExecMisuse(t *testing.T) {
	userCache(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.json")
	require.NoError(t, os.WriteFile(in, []byte(`{}`), 0o644))
	out := filepath.Join(dir, "out.json")
	withContainer := func() *pipeline.Pipeline {
		p := validPipeline()
		pipeline.Add(p, task.Container[struct{}, struct{}]("shell", "alpine:3").WithCommand("true"), struct{}{})
		return p
	}
	compileOnly := &fakeBackend{name: "paper"}
	for _, tc := range []struct {
		name     string
		p        *pipeline.Pipeline // nil: validPipeline()
		nilP     bool
		args     []string
		wantCode int
		wantErr  string // in stderr
	}{
		{name: "UnknownCommand", args: []string{"deploy"}, wantCode: 2, wantErr: `unknown command "deploy"`},
		{name: "NilPipeline", nilP: true, args: []string{"lint"}, wantCode: 2, wantErr: "nil *Pipeline"},
		{name: "RunUnknownFlag", args: []string{"run", "-fast"}, wantCode: 2, wantErr: "flag provided but not defined: -fast"},
		{name: "RunUnexpectedArgument", args: []string{"run", "now"}, wantCode: 2, wantErr: "unexpected arguments: now"},
		{name: "RunBackendNotLinked", args: []string{"run", "-backend", "argo"}, wantCode: 2, wantErr: `backend "argo" is not linked`},
		{name: "RunOnACompileOnlyBackend", args: []string{"run", "-backend", "paper"}, wantCode: 2, wantErr: "cannot run pipelines"},
		{name: "RunParamWithoutValue", args: []string{"run", "-p", "lr"}, wantCode: 2, wantErr: `want name=value, got "lr"`},
		{name: "RunUnknownParam", args: []string{"run", "-p", "rate=1"}, wantCode: 2, wantErr: "pipeline.params[rate]"},
		{name: "RunCacheDirAndNoCache", args: []string{"run", "-cache-dir", dir, "-no-cache"}, wantCode: 2, wantErr: "give -cache-dir or -no-cache, not both"},
		{name: "RunCacheDirOffTheMachine", args: []string{"run", "-backend", "paper", "-cache-dir", dir}, wantCode: 2, wantErr: "for backends that run on this machine"},
		{name: "RunReportInAMissingDir", args: []string{"run", "-report", filepath.Join(dir, "no", "such", "r.json")}, wantCode: 2, wantErr: "cannot write the report there"},
		{name: "RunReportIsADirectory", args: []string{"run", "-report", dir}, wantCode: 2, wantErr: "it is a directory"},
		{name: "CompileWithoutBackend", args: []string{"compile"}, wantCode: 2, wantErr: "-backend is required"},
		{name: "CompileUnknownFormat", args: []string{"compile", "-backend", "local", "-o", "xml"}, wantCode: 2, wantErr: `-o "xml"`},
		{name: "GraphUnknownFormat", args: []string{"graph", "-format", "png"}, wantCode: 2},
		{name: "LintBadParamValue", args: []string{"lint", "-p", "lr=fast"}, wantCode: 2, wantErr: "pipeline.params[lr]"},
		{name: "ArtifactsWithoutSubcommand", args: []string{"artifacts"}, wantCode: 2},

		// The task mode is a protocol: every malformed invocation is 2,
		// never 1, which a backend would retry as the task's failure.
		{name: "TaskHelp", args: []string{"task", "-h"}, wantCode: 2, wantErr: "malformed invocation"},
		{name: "TaskUnknownFlag", args: []string{"task", "-step", "prep", "-verbose"}, wantCode: 2, wantErr: "malformed invocation"},
		{name: "TaskUnexpectedArgument", args: []string{"task", "-step", "prep", "extra"}, wantCode: 2, wantErr: "unexpected arguments: extra"},
		{name: "TaskWithoutStep", args: []string{"task"}, wantCode: 2, wantErr: `no Go task step "" (Go task steps: prep, train)`},
		{name: "TaskUnknownStep", args: []string{"task", "-step", "nope"}, wantCode: 2, wantErr: `no Go task step "nope"`},
		{name: "TaskContainerStep", p: withContainer(), args: []string{"task", "-step", "shell"}, wantCode: 2, wantErr: `no Go task step "shell"`},
		{name: "TaskInputNotJSON", args: []string{"task", "-step", "prep", "-input", "{", "-output-file", out}, wantCode: 2, wantErr: "not valid JSON"},
		{name: "TaskInputOfTheWrongShape", args: []string{"task", "-step", "train", "-input", `{"Data":"x"}`, "-output-file", out}, wantCode: 2, wantErr: "decode input"},
		{name: "TaskInputAndInputFile", args: []string{"task", "-step", "prep", "-input", "{}", "-input-file", in}, wantCode: 2, wantErr: "not both"},
		{name: "TaskMissingInputFile", args: []string{"task", "-step", "prep", "-input-file", filepath.Join(dir, "none.json")}, wantCode: 2, wantErr: "no such file"},
		{name: "TaskOutputFileUnder" + "AFile", args: []string{"task", "-step", "prep", "-output-file", filepath.Join(in, "out.json")}, wantCode: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if p == nil && !tc.nilP {
				p = validPipeline()
			}
			code, _, errs := exec(t, p, tc.args, local.New(nil), compileOnly)
			assert.Equal(t, tc.wantCode, code, "stderr: %s", errs)
			assert.Contains(t, errs, tc.wantErr)
		})
	}
}

func TestExecHelpListsParametersAndRunFlags(t *testing.T) {
	p := validPipeline()
	pipeline.NewParam(p, "tag", "nightly")

	code, stdout, _ := exec(t, p, []string{"help"}, local.New(nil))
	require.Equal(t, pipeline.ExitOK, code)
	code, _, runHelp := exec(t, p, []string{"run", "-h"}, local.New(nil))
	require.Equal(t, pipeline.ExitOK, code)

	for name, text := range map[string]string{"help": stdout, "run -h": runHelp} {
		for _, want := range []string{"-run-id", "-report", "-artifacts", "-cache-dir", "-no-cache", "-q"} {
			assert.Contains(t, text, want, name)
		}
		assert.Regexp(t, `(?m)^  lr +float64 +default 0\.01$`, text, name)
		assert.Regexp(t, `(?m)^  tag +string +default "nightly"$`, text, name)
	}
}

// counter is a cached Go task that counts its calls.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) task() task.Task[struct{}, int] {
	return task.New("count", func(context.Context, struct{}) (int, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.n++
		return c.n, nil
	}).WithCache(task.Cache{Enabled: true})
}

func (c *counter) calls() int { c.mu.Lock(); defer c.mu.Unlock(); return c.n }

func TestExecRunCache(t *testing.T) {
	for _, tc := range []struct {
		name      string
		flags     []string
		wantCalls int
		wantDir   func(userCache, flagDir string) string // "": none
	}{
		{"DefaultsToTheUserCacheDir", nil, 1, func(u, _ string) string { return filepath.Join(u, "sluice", "cache") }},
		{"CacheDirFlag", []string{"-cache-dir", "FLAG"}, 1, func(_, f string) string { return f }},
		{"NoCache", []string{"-no-cache"}, 2, func(string, string) string { return "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uc := userCache(t)
			flagDir := filepath.Join(t.TempDir(), "flag-cache")
			var args []string
			for _, f := range tc.flags {
				args = append(args, strings.ReplaceAll(f, "FLAG", flagDir))
			}
			var c counter
			p := pipeline.New("cached", nil)
			pipeline.Add(p, c.task(), struct{}{})
			b := local.New(nil)

			for range 2 {
				code, _, errs := exec(t, p, append([]string{"run"}, args...), b)
				require.Equal(t, pipeline.ExitOK, code, errs)
			}

			assert.Equal(t, tc.wantCalls, c.calls())
			want := tc.wantDir(uc, flagDir)
			for _, d := range []string{filepath.Join(uc, "sluice", "cache"), flagDir} {
				if d == want {
					assert.DirExists(t, d)
				} else {
					assert.NoDirExists(t, d)
				}
			}
		})
	}
}

func TestExecRunStreamsTaskOutput(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh")
	}
	userCache(t)
	p := pipeline.New("loud", nil)
	pipeline.Add(p, task.Container[struct{}, struct{}]("fail", "alpine:3").
		WithCommand("/bin/sh", "-c", "echo 'reading data.csv' ; echo 'data.csv: no such file' >&2; exit 1"), struct{}{})

	code, _, errs := exec(t, p, []string{"run"}, local.New(nil))
	assert.Equal(t, pipeline.ExitFailed, code)
	assert.Contains(t, errs, "[fail] reading data.csv\n")
	assert.Contains(t, errs, "[fail] data.csv: no such file\n")

	code, _, errs = exec(t, p, []string{"run", "-q"}, local.New(nil))
	assert.Equal(t, pipeline.ExitFailed, code)
	assert.NotContains(t, errs, "[fail]")
	assert.Contains(t, errs, "exit status 1; its output ends: data.csv: no such file", "the failure still says why")

	var own syncBuffer
	code, _, errs = exec(t, p, []string{"run"}, local.New(&local.Options{Log: &own}))
	assert.Equal(t, pipeline.ExitFailed, code)
	assert.NotContains(t, errs, "[fail]", "the program's own log wins")
	assert.Contains(t, own.String(), "[fail] data.csv: no such file\n")
}

func TestExecRunChecksTheReportBeforeRunning(t *testing.T) {
	userCache(t)
	var c counter
	p := pipeline.New("reported", nil)
	pipeline.Add(p, c.task(), struct{}{})
	dir := t.TempDir()

	code, _, errs := exec(t, p, []string{"run", "-report", filepath.Join(dir, "missing", "r.json")}, local.New(nil))
	assert.Equal(t, pipeline.ExitInvalid, code, errs)
	assert.Equal(t, 0, c.calls(), "nothing ran")

	report := filepath.Join(dir, "r.json")
	code, _, errs = exec(t, p, []string{"run", "-no-cache", "-report", report}, local.New(nil))
	require.Equal(t, pipeline.ExitOK, code, errs)
	b, err := os.ReadFile(report)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"phase": "Succeeded"`)
	entries, _ := os.ReadDir(dir)
	assert.Len(t, entries, 1, "the check left nothing behind")
}

// TestExecSecondInterruptStopsWaiting interrupts a run whose task ignores
// its context: the first interrupt cancels and waits, the second stops
// waiting, says what may still be running and exits 130.
func TestExecSecondInterruptStopsWaiting(t *testing.T) {
	userCache(t)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // lets the abandoned run end
	p := pipeline.New("stuck", nil)
	pipeline.Add(p, task.New("deaf", func(context.Context, struct{}) (struct{}, error) {
		<-release
		return struct{}{}, nil
	}), struct{}{})
	running := make(chan struct{})
	var once sync.Once
	t.Cleanup(pipeline.SetProgressHook(func(st *backends.RunStatus) {
		if s := st.Step("deaf"); s != nil && s.Phase == backends.PhaseRunning {
			once.Do(func() { close(running) })
		}
	}))
	sigs := make(chan os.Signal, 2)
	go func() {
		<-running
		sigs <- os.Interrupt
		sigs <- os.Interrupt
	}()
	var stdout, stderr syncBuffer

	code := pipeline.ExecSignals(p, nil, &stdout, &stderr, sigs, local.New(nil))

	assert.Equal(t, pipeline.ExitInterrupted, code, stderr.String())
	assert.Contains(t, stderr.String(), "stuck: interrupt signal received: stopping the run")
	assert.Contains(t, stderr.String(), "interrupted again: not waiting any more for run stuck-")
	assert.Contains(t, stderr.String(), "these were running or about to start, and may still be: deaf")
	assert.Empty(t, stdout.String())
}

// TestExecFirstInterruptCancels checks that one interrupt cancels the run
// and waits for it to end, with the exit handler.
func TestExecFirstInterruptCancels(t *testing.T) {
	userCache(t)
	p := pipeline.New("polite", nil)
	started := make(chan struct{})
	pipeline.Add(p, task.New("listens", func(ctx context.Context, _ struct{}) (struct{}, error) {
		close(started)
		<-ctx.Done()
		return struct{}{}, ctx.Err()
	}), struct{}{})
	sigs := make(chan os.Signal, 1)
	go func() {
		<-started
		sigs <- os.Interrupt
	}()
	var stdout, stderr syncBuffer

	code := pipeline.ExecSignals(p, nil, &stdout, &stderr, sigs, local.New(nil))

	assert.Equal(t, pipeline.ExitFailed, code, stderr.String())
	assert.Contains(t, stdout.String(), "Canceled")
	assert.NotContains(t, stderr.String(), "interrupted again")
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestWriteSummaryShowsRetriesByReason(t *testing.T) {
	infra, app, ok := backends.Attempt{Reason: backends.ReasonInfra}, backends.Attempt{Reason: backends.ReasonApp}, backends.Attempt{}
	inst := func(as ...backends.Attempt) backends.StepStatus {
		return backends.StepStatus{Phase: backends.PhaseSucceeded, Attempts: as}
	}
	st := &backends.RunStatus{RunID: "r-1", Pipeline: "p", Phase: backends.PhaseFailed, Steps: []backends.StepStatus{
		{Name: "once", Phase: backends.PhaseSucceeded, Attempts: []backends.Attempt{ok}},
		{Name: "flaky", Phase: backends.PhaseSucceeded, Attempts: []backends.Attempt{infra, app, ok}},
		{Name: "broken", Phase: backends.PhaseFailed, Attempts: []backends.Attempt{app}, Message: "boom"},
		{Name: "sweep", Phase: backends.PhaseSucceeded, Instances: []backends.StepStatus{inst(infra, infra, ok), inst(ok), inst(infra, ok)}},
		{Name: "calm", Phase: backends.PhaseSucceeded, Instances: []backends.StepStatus{inst(ok), inst(ok)}},
	}}
	var b strings.Builder

	pipeline.WriteSummary(&b, st)

	assert.Equal(t, `run r-1 of p: Failed
  once    Succeeded  attempts=1
  flaky   Succeeded  attempts=3 · retries: infra 1, app 1
  broken  Failed     attempts=1  boom
  sweep   Succeeded  instances=3 · retries: infra 3, app 0
  calm    Succeeded  instances=2
`, b.String())
}

// stuckCluster is a backend whose runs never stop once canceled, as a
// cluster's may not while its pods terminate.
type stuckCluster struct {
	fakeBackend
	release chan struct{}
}

func (s *stuckCluster) Submit(context.Context, backends.Artifact, *backends.SubmitOptions) (string, error) {
	return "c-1", nil
}

func (s *stuckCluster) Watch(ctx context.Context, id string, o *backends.WatchOptions) (*backends.RunStatus, error) {
	st := &backends.RunStatus{RunID: id, Pipeline: "churn", Phase: backends.PhaseRunning, Steps: []backends.StepStatus{
		{Name: "prep", Phase: backends.PhaseSucceeded},
		{Name: "train", Phase: backends.PhaseRunning},
	}}
	if o.Progress != nil {
		o.Progress(st.Clone())
	}
	select {
	case <-ctx.Done():
		return st, ctx.Err()
	case <-s.release:
		return st, nil
	}
}

func (s *stuckCluster) Cancel(context.Context, string) error { return nil }

func TestExecSecondInterruptOnAClusterBackend(t *testing.T) {
	b := &stuckCluster{fakeBackend: fakeBackend{name: "cluster"}, release: make(chan struct{})}
	t.Cleanup(func() { close(b.release) })
	reported := make(chan struct{})
	var once sync.Once
	t.Cleanup(pipeline.SetProgressHook(func(*backends.RunStatus) { once.Do(func() { close(reported) }) }))
	sigs := make(chan os.Signal, 2)
	go func() {
		<-reported
		sigs <- os.Interrupt
		sigs <- os.Interrupt
	}()
	var stdout, stderr syncBuffer

	code := pipeline.ExecSignals(validPipeline(), []string{"-backend", "cluster"}, &stdout, &stderr, sigs, b)

	assert.Equal(t, pipeline.ExitInterrupted, code, stderr.String())
	assert.Contains(t, stderr.String(), "not waiting any more for run c-1 to stop (on cluster); these were running or about to start, and may still be: train")
}
