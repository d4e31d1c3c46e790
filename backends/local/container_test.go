package local_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/task"
)

type GreetIn struct {
	Name  string
	Times int `json:"times"`
}

type GreetOut struct {
	Greeting string
	Count    int `json:"count"`
}

type ShoutIn struct{ G pipeline.Ref[GreetOut] }

var shout = task.New("shout", func(_ context.Context, in ShoutIn) (string, error) {
	g := in.G.Get()
	return strings.Repeat(strings.ToUpper(g.Greeting)+"!", g.Count), nil
})

func requireShell(t *testing.T) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs /bin/sh")
	}
}

func TestHostRunnerTypedOutputs(t *testing.T) {
	requireShell(t)
	greet := task.Container[GreetIn, GreetOut]("greet", "alpine:3").
		WithCommand("/bin/sh", "-c").
		WithArgs(`echo "hello {{.Name}}"; echo "hello {{.Name}}" > "$SLUICE_OUTPUT_DIR/tmp/sluice/outputs/Greeting"; echo {{.Times}} > "$SLUICE_OUTPUT_DIR/tmp/sluice/outputs/count"`)
	p := pipeline.New("host", nil)
	g := pipeline.Add(p, greet, GreetIn{Name: "world", Times: 2})
	pipeline.Add(p, shout, ShoutIn{G: g.Output()})
	var log syncBuffer

	st, err := run(t, p, &local.Options{Log: &log}, nil)
	require.NoError(t, err)

	assert.JSONEq(t, `{"Greeting":"hello world","count":2}`, string(stepOf(t, st, "greet").Output))
	assert.JSONEq(t, `"HELLO WORLD!HELLO WORLD!"`, string(stepOf(t, st, "shout").Output))
	assert.Contains(t, log.String(), "[greet] hello world\n")
}

func TestHostRunnerFailures(t *testing.T) {
	requireShell(t)
	for _, tc := range []struct {
		name    string
		command []string
		wantMsg string
	}{
		{"NonZeroExit", []string{"/bin/sh", "-c", "echo oops >&2; exit 3"}, "exit status 3"},
		{"NonZeroExitSaysWhatStderrEndsWith", []string{"/bin/sh", "-c", "echo progress; for i in 1 2 3 4; do echo line$i >&2; done; exit 1"}, "exit status 1; its output ends: line2 / line3 / line4"},
		{"NonZeroExitFallsBackToStdout", []string{"/bin/sh", "-c", "echo; echo no input given; exit 1"}, "exit status 1; its output ends: no input given"},
		{"MissingOutput", []string{"/bin/sh", "-c", "true"}, `wrote no output "Greeting"`},
		{"NotJSON", []string{"/bin/sh", "-c", `echo hi > $SLUICE_OUTPUT_DIR/tmp/sluice/outputs/Greeting; echo many > $SLUICE_OUTPUT_DIR/tmp/sluice/outputs/count`}, `output "count": many is not JSON`},
		{"NoCommand", nil, "has no command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeline.New("host-fail", nil)
			pipeline.Add(p, task.Container[GreetIn, GreetOut]("greet", "alpine:3").WithCommand(tc.command...), GreetIn{})

			st, err := run(t, p, nil, nil)

			require.ErrorIs(t, err, pipeline.ErrRunFailed)
			s := stepOf(t, st, "greet")
			assert.Equal(t, backends.PhaseFailed, s.Phase)
			assert.Contains(t, s.Message, tc.wantMsg)
			assert.Equal(t, backends.ReasonApp, s.Attempts[0].Reason)
		})
	}
}

func TestHostRunnerCancelKillsProcessGroup(t *testing.T) {
	requireShell(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	sleeper := task.Container[SeedIn, Num]("sleeper", "alpine:3").
		WithCommand("/bin/sh", "-c", "sleep 60 & echo $! > "+pidFile+"; wait")
	p := pipeline.New("host-cancel", nil)
	pipeline.Add(p, sleeper, SeedIn{})

	ctx, cancel := context.WithCancel(t.Context())
	wait := runAsync(ctx, p, local.New(nil), nil)
	var pid int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	}, 10*time.Second, 5*time.Millisecond)
	canceled := time.Now()
	cancel()
	st, err := wait()

	assert.Less(t, time.Since(canceled), 10*time.Second, "the run waited for the background sleep")
	require.ErrorIs(t, err, pipeline.ErrRunFailed)
	assert.Equal(t, backends.PhaseCanceled, st.Phase)
	assert.Eventually(t, func() bool { return processGone(pid) }, 5*time.Second, 5*time.Millisecond,
		"the background sleep %d outlived the canceled step", pid)
}

// processGone reports whether pid no longer runs (a zombie does not run).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return strings.HasPrefix(rest, "Z")
}

// stubRunner records the containers it is asked to run and answers with fn.
type stubRunner struct {
	mu  sync.Mutex
	got []local.Container
	fn  func(n int, c local.Container) (map[string][]byte, error)
}

func (s *stubRunner) Run(_ context.Context, c local.Container) (map[string][]byte, error) {
	s.mu.Lock()
	s.got = append(s.got, c)
	n := len(s.got)
	s.mu.Unlock()
	if _, err := os.Stat(c.OutputDir); err != nil {
		return nil, fmt.Errorf("output dir: %w", err)
	}
	return s.fn(n, c)
}

func TestStubRunnerRendersInputs(t *testing.T) {
	stub := &stubRunner{fn: func(n int, c local.Container) (map[string][]byte, error) {
		if n == 1 {
			return nil, fmt.Errorf("evicted: %w", task.ErrInfrastructure)
		}
		return map[string][]byte{"Greeting": []byte("hi ada\n"), "count": []byte("2\n")}, nil
	}}
	greet := task.Container[GreetIn, GreetOut]("greet", "registry.example/greet:1").
		WithArgs("--name={{.Name}}", "--times={{ .times }}").
		WithEnv("GREET", "{{.Name}}").
		WithRetry(task.Retry{Infra: 1})
	p := pipeline.New("stub", nil)
	g := pipeline.Add(p, greet, GreetIn{Name: "ada", Times: 2})
	pipeline.Add(p, shout, ShoutIn{G: g.Output()})

	st, err := run(t, p, &local.Options{Runner: stub}, nil)
	require.NoError(t, err)

	require.Len(t, stub.got, 2)
	c := stub.got[1]
	assert.Equal(t, "greet", c.Step)
	assert.Equal(t, "registry.example/greet:1", c.Image)
	assert.Equal(t, []string{"--name=ada", "--times=2"}, c.Args)
	assert.Equal(t, []task.EnvVar{{Name: "GREET", Value: "ada"}}, c.Env)
	assert.Equal(t, []task.Output{{Field: "Greeting", Path: "/tmp/sluice/outputs/Greeting"}, {Field: "count", Path: "/tmp/sluice/outputs/count"}}, c.Outputs)
	assert.NoDirExists(t, c.OutputDir, "the attempt's output dir is removed")

	s := stepOf(t, st, "greet")
	assert.JSONEq(t, `{"Greeting":"hi ada","count":2}`, string(s.Output))
	assert.Equal(t, []backends.Reason{"infra", ""}, []backends.Reason{s.Attempts[0].Reason, s.Attempts[1].Reason})
	assert.JSONEq(t, `"HI ADA!HI ADA!"`, string(stepOf(t, st, "shout").Output))
}
