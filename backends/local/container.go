package local

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/task"
)

// Runner runs container tasks for a local Backend. Implementations must be
// safe for concurrent use; tests use stubs.
type Runner interface {
	// Run runs one attempt of c and returns the contents of the output
	// files it wrote, keyed by Output.Field; an output that was not
	// written is left out. It must stop when ctx is done. An error
	// wrapping task.ErrInfrastructure consumes the Infra retry budget;
	// any other, the App budget.
	Run(ctx context.Context, c Container) (outputs map[string][]byte, err error)
}

// Container is one attempt of a container task, with its input rendered
// into Command, Args and Env.
type Container struct {
	// Step is the plan name of the step.
	Step    string
	Image   string
	Command []string
	Args    []string
	Env     []task.EnvVar
	// OutputDir is a fresh host directory for this attempt, removed after
	// it: Output paths are read beneath it.
	OutputDir string
	// Outputs say where the container writes each output field.
	Outputs []task.Output
	// Security is the task's security override ([task.Spec].Security),
	// nil without one, for a Runner that can apply it. [HostRunner]
	// ignores it, as it ignores Image: see its doc.
	Security *task.Security
	// Stdout and Stderr receive the container's output (Options.Log).
	Stdout, Stderr io.Writer
}

// OutputPather is implemented by a [Runner] whose processes see an
// attempt's output files elsewhere than at their paths in the container.
// OutputPath returns where the process must write the file of output path
// p (a container path, [task.Output].Path) when the attempt's OutputDir
// is dir. The backend fills {{outputs.Field}} placeholders with it; for a
// Runner without it they are the container paths, right for a Runner
// that runs the image with dir's copy of each output directory mounted
// at its container path.
type OutputPather interface {
	OutputPath(dir, p string) string
}

// OutputDirEnv is the environment variable through which HostRunner tells
// a process the directory its output paths are rooted in.
const OutputDirEnv = "SLUICE_OUTPUT_DIR"

// HostRunner runs a container task as a host process, ignoring the image:
// Command followed by Args, with the environment of the current process
// plus Env and OutputDirEnv. The process runs in its own process group,
// which is killed when ctx is done and when the process exits, so nothing
// it started outlives it. Each line it writes to stdout or stderr goes to
// the Container's writer prefixed with "[step] ". A process that fails
// says why: the error ends with the last lines it wrote to stderr (else
// stdout), as a pod's termination message falls back to its log on
// kubejob.
//
// Output paths are container paths, rooted at OutputDir on the host: the
// output path /tmp/sluice/outputs/acc is read from
// $SLUICE_OUTPUT_DIR/tmp/sluice/outputs/acc, whose directory is created
// before the process starts. A {{outputs.Field}} placeholder in the
// command, args or env is that host path ([HostRunner.OutputPath]), so a
// script writes to it without knowing where it runs.
//
// The process runs as the user running the backend: a task's security
// override ([task.Security], Container.Security) describes the pod on
// Kubernetes backends, and HostRunner ignores it, as it ignores the image
// whose user the override is usually for. The zero value is ready to
// use.
type HostRunner struct{}

// OutputPath implements [OutputPather]: p under dir on the host.
func (HostRunner) OutputPath(dir, p string) string { return hostPath(dir, p) }

// Run implements [Runner].
func (HostRunner) Run(ctx context.Context, c Container) (map[string][]byte, error) {
	argv := slices.Concat(c.Command, c.Args)
	if len(argv) == 0 {
		return nil, fmt.Errorf("local: step %q has no command; HostRunner runs Command and Args on the host, without the image's entrypoint", c.Step)
	}
	for _, o := range c.Outputs {
		if err := os.MkdirAll(filepath.Dir(hostPath(c.OutputDir, o.Path)), 0o755); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), OutputDirEnv+"="+c.OutputDir)
	for _, e := range c.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	ownProcessGroup(cmd)

	prefix := "[" + c.Step + "] "
	var outTail, errTail tail
	stdout, waitOut, err := linePipe(c.Stdout, prefix, &outTail)
	if err != nil {
		return nil, err
	}
	stderr, waitErr, err := linePipe(c.Stderr, prefix, &errTail)
	if err != nil {
		stdout.Close()
		waitOut()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err = cmd.Start()
	stdout.Close() // the child has its own copies
	stderr.Close()
	if err == nil {
		err = cmd.Wait()
		killProcessGroup(cmd) // whatever it left running in the background
	}
	waitOut()
	waitErr()
	if err != nil {
		// Like a pod's termination message with FallbackToLogsOnError
		// (kubejob): the end of what it wrote says why it failed.
		if last := cmp.Or(errTail.String(), outTail.String()); last != "" && ctx.Err() == nil {
			return nil, fmt.Errorf("local: %s: %w; its output ends: %s", argv[0], err, last)
		}
		return nil, fmt.Errorf("local: %s: %w", argv[0], err)
	}
	return readOutputs(c)
}

// tail keeps the last lines a process wrote to one stream, for the
// message of a failed attempt.
type tail struct {
	mu    sync.Mutex
	lines []string
}

const (
	tailLines    = 3   // lines kept
	tailLineSize = 200 // bytes kept of each
)

func (t *tail) add(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	if len(line) > tailLineSize {
		line = line[:tailLineSize] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

// String returns the lines kept, joined by " / ".
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, " / ")
}

// hostPath is where the container path p lives under dir; p cannot
// escape dir.
func hostPath(dir, p string) string {
	return filepath.Join(dir, filepath.FromSlash(path.Clean("/"+p)))
}

func readOutputs(c Container) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, o := range c.Outputs {
		b, err := os.ReadFile(hostPath(c.OutputDir, o.Path))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, err
		}
		out[o.Field] = b
	}
	return out, nil
}

// pipeGrace is how long output copying may go on after the process group
// was killed: only a process that left the group can hold the pipe then.
const pipeGrace = 2 * time.Second

// linePipe returns the write end of a pipe whose lines are copied to dst
// with prefix, and a function that waits until the copy has ended, which
// is when every holder of the write end closed it, or pipeGrace after the
// call. A nil dst discards. Each line also goes to last.
func linePipe(dst io.Writer, prefix string, last *tail) (*os.File, func(), error) {
	if dst == nil {
		dst = io.Discard
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		br := bufio.NewReader(pr)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				if !strings.HasSuffix(line, "\n") {
					line += "\n"
				}
				dst.Write([]byte(prefix + line))
				last.add(line)
			}
			if err != nil {
				return
			}
		}
	}()
	wait := func() {
		select {
		case <-done:
		case <-time.After(pipeGrace):
		}
		pr.Close() // ends the copy if it is still blocked
		<-done
	}
	return pw, wait, nil
}

// runContainer runs one attempt of container step s through the Runner
// and assembles its output object from the files it wrote.
func (r *run) runContainer(ctx context.Context, at loc, s *backends.Step, input json.RawMessage) (json.RawMessage, error) {
	dir, err := os.MkdirTemp("", "sluice-"+s.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("local: %w: %w", task.ErrInfrastructure, err)
	}
	defer os.RemoveAll(dir)
	c, err := render(s, input, dir, r.b.opts.Runner)
	if err != nil {
		return nil, err
	}
	c.Stdout, c.Stderr = r.b.log, r.b.log
	files, err := r.b.opts.Runner.Run(ctx, c)
	if err != nil {
		return nil, err
	}
	out, err := backends.AssembleOutput(s.Task, files)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return out, nil
}

// render fills the {{.Field}} placeholders of the container's command
// line and environment from the resolved input, and its
// {{outputs.Field}} placeholders with where runner's process finds the
// output files of an attempt whose output directory is dir.
func render(s *backends.Step, input json.RawMessage, dir string, runner Runner) (Container, error) {
	c := Container{Step: s.Name, Image: s.Task.Image, Outputs: slices.Clone(s.Task.Outputs), OutputDir: dir, Security: s.Task.Security.Clone()}
	var path func(string) string
	if op, ok := runner.(OutputPather); ok {
		path = func(p string) string { return op.OutputPath(dir, p) }
	}
	var err error
	c.Command, c.Args, c.Env, err = backends.RenderCommandWith(s.Task, input, path)
	if err != nil {
		return c, fmt.Errorf("local: %w", err)
	}
	return c, nil
}
