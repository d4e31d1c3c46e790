package local

import (
	"bufio"
	"bytes"
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
	"reflect"
	"slices"
	"strings"
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
	// Stdout and Stderr receive the container's output (Options.Log).
	Stdout, Stderr io.Writer
}

// OutputDirEnv is the environment variable through which HostRunner tells
// a process the directory its output paths are rooted in.
const OutputDirEnv = "SLUICE_OUTPUT_DIR"

// HostRunner runs a container task as a host process, ignoring the image:
// Command followed by Args, with the environment of the current process
// plus Env and OutputDirEnv. The process runs in its own process group,
// which is killed when ctx is done and when the process exits, so nothing
// it started outlives it. Each line it writes to stdout or stderr goes to
// the Container's writer prefixed with "[step] ".
//
// Output paths are container paths, rooted at OutputDir on the host: the
// output path /tmp/sluice/outputs/acc is read from
// $SLUICE_OUTPUT_DIR/tmp/sluice/outputs/acc, whose directory is created
// before the process starts. The zero value is ready to use.
type HostRunner struct{}

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
	stdout, waitOut, err := linePipe(c.Stdout, prefix)
	if err != nil {
		return nil, err
	}
	stderr, waitErr, err := linePipe(c.Stderr, prefix)
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
		return nil, fmt.Errorf("local: %s: %w", argv[0], err)
	}
	return readOutputs(c)
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
// call. A nil dst discards.
func linePipe(dst io.Writer, prefix string) (*os.File, func(), error) {
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
	c, err := render(s, input)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-"+s.Name+"-")
	if err != nil {
		return nil, fmt.Errorf("local: %w: %w", task.ErrInfrastructure, err)
	}
	defer os.RemoveAll(dir)
	c.OutputDir, c.Stdout, c.Stderr = dir, r.b.log, r.b.log
	files, err := r.b.opts.Runner.Run(ctx, c)
	if err != nil {
		return nil, err
	}
	return assemble(s.Task, files)
}

// render fills the {{.Field}} placeholders of the container's command
// line and environment from the resolved input.
func render(s *backends.Step, input json.RawMessage) (Container, error) {
	t := s.Task
	c := Container{
		Step:    s.Name,
		Image:   t.Image,
		Command: slices.Clone(t.Command),
		Args:    slices.Clone(t.Args),
		Env:     slices.Clone(t.Env),
		Outputs: slices.Clone(t.Outputs),
	}
	var fields map[string]json.RawMessage
	goNames := map[string]string{}
	fill := func(s *string) error {
		names := task.Placeholders(*s)
		if len(names) == 0 {
			return nil
		}
		if fields == nil {
			if err := json.Unmarshal(input, &fields); err != nil || fields == nil {
				return fmt.Errorf("local: placeholders need an object input, got %s", input)
			}
		}
		for _, n := range names {
			if j, _, ok := task.FieldByName(t.InputType, n); ok {
				goNames[n] = j
			}
		}
		out, err := task.Render(*s, fields, goNames)
		*s = out
		return err
	}
	for i := range c.Command {
		if err := fill(&c.Command[i]); err != nil {
			return c, err
		}
	}
	for i := range c.Args {
		if err := fill(&c.Args[i]); err != nil {
			return c, err
		}
	}
	for i := range c.Env {
		if err := fill(&c.Env[i].Value); err != nil {
			return c, err
		}
	}
	return c, nil
}

// assemble builds a container task's output object from the files it
// wrote: a string field takes the file's text (without the trailing line
// break), any other field parses it as JSON.
func assemble(t task.Spec, files map[string][]byte) (json.RawMessage, error) {
	obj := make(map[string]json.RawMessage, len(t.Outputs))
	for _, o := range t.Outputs {
		data, ok := files[o.Field]
		if !ok {
			return nil, fmt.Errorf("local: the container wrote no output %q (to %s)", o.Field, o.Path)
		}
		v, err := outputValue(t.OutputType, o.Field, data)
		if err != nil {
			return nil, err
		}
		obj[o.Field] = v
	}
	return json.Marshal(obj)
}

func outputValue(outType reflect.Type, field string, data []byte) (json.RawMessage, error) {
	_, ft, ok := task.FieldByName(outType, field)
	for ok && ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	if ok && ft.Kind() == reflect.String {
		text := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		return json.Marshal(text)
	}
	v, err := compactJSON(bytes.TrimSpace(data))
	if err != nil {
		return nil, fmt.Errorf("local: output %q: %s is not JSON", field, bytes.TrimSpace(data))
	}
	return v, nil
}
