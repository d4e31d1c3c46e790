package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/task"
)

// Exit statuses of the program entrypoint.
const (
	ExitOK      = 0 // success
	ExitFailed  = 1 // the run (or the invoked task) failed
	ExitInvalid = 2 // invalid pipeline or usage
)

// Main is the entrypoint of a pipeline program: it parses os.Args, runs the
// subcommand, and exits. Every pipeline program ends with it, passing the
// backends it links:
//
//	func main() {
//		pipeline.Main(build(), local.New(nil), argo.New(nil, nil))
//	}
//
// The program then understands:
//
//	prog [run]   [-backend NAME] [-p name=value]...   run (default backend: local)
//	prog compile -backend NAME [-o yaml|json] [-p name=value]...
//	                                                  manifests to stdout, one YAML document each
//	prog graph   [-format mermaid|dot]                the DAG as a picture
//	prog lint    [-p name=value]...                   validate, and compile for every linked
//	                                                  backend without contacting a cluster
//	prog artifacts ls|rm -run ID [-artifacts URL]     list or delete a run's artifacts
//	prog task    -step NAME [-input JSON | -input-file PATH] [-output-file PATH]
//	                                                  run one Go task (used inside pods;
//	                                                  see package backends)
//
// Exit status: 0 success; 1 the run failed; 2 invalid pipeline or usage,
// with every validation problem on stderr, one per line. An interrupt
// (SIGINT, SIGTERM) cancels the run; the exit handler still runs. In the
// task mode it stops the task: the program then exits with status 143
// ([backends.ExitTerminated]), which backends count as an infrastructure
// failure (see package backends for the task mode's statuses).
func Main(p *Pipeline, bs ...backends.Backend) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Exec(ctx, p, os.Args[1:], os.Stdout, os.Stderr, bs...)
	stop()
	os.Exit(code)
}

// Exec is [Main] without the process: it runs the command line args (not
// including the program name) against p and returns the exit status. Use
// it to test a pipeline program's command line, or to embed the commands
// in a program with its own CLI. ctx ending is what SIGINT and SIGTERM do
// to Main: it cancels a run, and stops a task in the task mode.
func Exec(ctx context.Context, p *Pipeline, args []string, stdout, stderr io.Writer, bs ...backends.Backend) int {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	c := &cli{p: p, bs: bs, stdout: stdout, stderr: stderr}
	switch cmd {
	case "run":
		return c.run(ctx, args)
	case "compile":
		return c.compile(ctx, args)
	case "graph":
		return c.graph(args)
	case "lint":
		return c.lint(args)
	case "artifacts":
		return c.artifacts(ctx, args)
	case backends.InvokeCommand:
		return c.invoke(ctx, args)
	case "help":
		c.usage()
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n", p.name, cmd)
	c.usage()
	return ExitInvalid
}

type cli struct {
	p      *Pipeline
	bs     []backends.Backend
	stdout io.Writer
	stderr io.Writer
}

func (c *cli) usage() {
	names := c.backendNames()
	fmt.Fprintf(c.stderr, `usage:
  %[1]s [run]   [-backend NAME] [-p name=value]...
  %[1]s compile -backend NAME [-o yaml|json] [-p name=value]...
  %[1]s graph   [-format mermaid|dot]
  %[1]s lint    [-p name=value]...
  %[1]s artifacts ls|rm -run ID [-artifacts URL]
  %[1]s task    -step NAME [-input JSON | -input-file PATH] [-output-file PATH]
backends linked: %[2]s
`, c.p.name, strings.Join(names, ", "))
}

func (c *cli) backendNames() []string {
	var names []string
	for _, b := range c.bs {
		names = append(names, backends.NameOf(b))
	}
	return names
}

// paramFlags collects -p name=value.
type paramFlags map[string]string

func (f paramFlags) String() string { return "" }

func (f paramFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	f[name] = value
	return nil
}

func (c *cli) flags(name string) (*flag.FlagSet, paramFlags) {
	fs := flag.NewFlagSet(c.p.name+" "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	params := paramFlags{}
	if name != "graph" && name != backends.InvokeCommand {
		fs.Var(params, "p", "override a parameter: -p name=value (repeatable)")
	}
	return fs, params
}

// parse parses args; a non-zero status means stop with it.
func (c *cli) parse(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return -1
		}
		return ExitInvalid
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(c.stderr, "%s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return ExitInvalid
	}
	return 0
}

func exitOf(code int) int {
	if code < 0 {
		return ExitOK
	}
	return code
}

func (c *cli) backend(name string) (backends.Backend, int) {
	for _, b := range c.bs {
		if backends.NameOf(b) == name {
			return b, 0
		}
	}
	fmt.Fprintf(c.stderr, "%s: backend %q is not linked into this program (linked: %s); pass it to pipeline.Main\n",
		c.p.name, name, strings.Join(c.backendNames(), ", "))
	return nil, ExitInvalid
}

// reportInvalid prints every field error of err, one per line, and
// reports whether err was a validation failure.
func (c *cli) reportInvalid(err error) bool {
	fes := FieldErrors(err)
	for _, fe := range fes {
		fmt.Fprintln(c.stderr, fe.Error())
	}
	return len(fes) > 0
}

func (c *cli) lint(args []string) int {
	fs, params := c.flags("lint")
	if code := c.parse(fs, args); code != 0 {
		return exitOf(code)
	}
	plan, err := c.p.build(params)
	if err != nil {
		c.reportInvalid(err)
		return ExitInvalid
	}
	if code := c.lintBackends(params); code != 0 {
		return code
	}
	fmt.Fprintf(c.stdout, "%s: valid, %d steps\n", c.p.name, len(plan.Steps))
	return ExitOK
}

func (c *cli) graph(args []string) int {
	fs, _ := c.flags("graph")
	format := fs.String("format", "mermaid", "mermaid or dot")
	if code := c.parse(fs, args); code != 0 {
		return exitOf(code)
	}
	plan, err := c.p.build(nil)
	if err != nil {
		c.reportInvalid(err)
		return ExitInvalid
	}
	if err := WriteGraph(c.stdout, plan, GraphFormat(*format)); err != nil {
		fmt.Fprintln(c.stderr, err)
		return ExitInvalid
	}
	return ExitOK
}

func (c *cli) compile(ctx context.Context, args []string) int {
	fs, params := c.flags("compile")
	name := fs.String("backend", "", "the backend to compile for (required)")
	out := fs.String("o", "yaml", "yaml or json")
	store := fs.String("artifacts", "", "the artifact store's root URL (default: the pipeline's)")
	if code := c.parse(fs, args); code != 0 {
		return exitOf(code)
	}
	if *name == "" {
		fmt.Fprintf(c.stderr, "%s compile: -backend is required (linked: %s)\n", c.p.name, strings.Join(c.backendNames(), ", "))
		return ExitInvalid
	}
	if *out != "yaml" && *out != "json" {
		fmt.Fprintf(c.stderr, "%s compile: -o %q: use yaml or json\n", c.p.name, *out)
		return ExitInvalid
	}
	b, code := c.backend(*name)
	if b == nil {
		return code
	}
	art, err := Compile(ctx, c.p, b, &CompileOptions{Params: params, Artifacts: *store})
	if err != nil {
		if !c.reportInvalid(err) {
			fmt.Fprintln(c.stderr, err)
		}
		return ExitInvalid
	}
	printWarnings(c.stderr, c.p.name, art)
	text, err := renderDocuments(art.Documents(), *out)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s compile: %v\n", c.p.name, err)
		return ExitInvalid
	}
	if _, err := c.stdout.Write(text); err != nil {
		fmt.Fprintln(c.stderr, err)
		return ExitFailed
	}
	return ExitOK
}

// renderDocuments joins an artifact's documents: YAML documents separated
// by "---", or each one as indented JSON.
func renderDocuments(docs [][]byte, format string) ([]byte, error) {
	var buf bytes.Buffer
	for i, doc := range docs {
		if format == "json" {
			j, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return nil, fmt.Errorf("document %d is not YAML: %w", i, err)
			}
			if err := json.Indent(&buf, j, "", "  "); err != nil {
				return nil, fmt.Errorf("document %d: %w", i, err)
			}
			buf.WriteByte('\n')
			continue
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(doc)
		if len(doc) > 0 && doc[len(doc)-1] != '\n' {
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes(), nil
}

func (c *cli) run(ctx context.Context, args []string) int {
	fs, params := c.flags("run")
	name := fs.String("backend", "local", "the backend to run on")
	runID := fs.String("run-id", "", "ask the backend for this run id (resumes a run on backends that support it)")
	report := fs.String("report", "", "write the final run status as JSON to this file")
	store := fs.String("artifacts", "", "the artifact store's root URL, e.g. s3://bucket/prefix (default: the pipeline's; on the local backend, a directory under the user's cache dir)")
	if code := c.parse(fs, args); code != 0 {
		return exitOf(code)
	}
	b, code := c.backend(*name)
	if b == nil {
		return code
	}
	progress := newProgressPrinter(c.stderr)
	st, err := Run(ctx, c.p, b, &RunOptions{Params: params, RunID: *runID, Progress: progress.update, Artifacts: *store})
	if st == nil {
		if c.reportInvalid(err) {
			return ExitInvalid
		}
		fmt.Fprintln(c.stderr, err)
		if errors.Is(err, errors.ErrUnsupported) {
			return ExitInvalid
		}
		return ExitFailed
	}
	WriteSummary(c.stdout, st)
	if *report != "" {
		j, _ := json.MarshalIndent(st, "", "  ")
		if werr := os.WriteFile(*report, append(j, '\n'), 0o644); werr != nil {
			fmt.Fprintln(c.stderr, werr)
			return ExitFailed
		}
	}
	if err != nil {
		fmt.Fprintln(c.stderr, err)
		return ExitFailed
	}
	return ExitOK
}

// progressPrinter reports a run's progress on stderr. On a terminal it
// keeps one status line up to date (steps done, running and failed, and
// the time since the run started); elsewhere it is quiet but for failed
// attempts and steps, one line each, so CI logs stay short.
type progressPrinter struct {
	w      io.Writer
	tty    bool
	start  time.Time
	seen   map[string]int // failed attempts reported, by step
	failed map[string]bool
	live   bool // a status line is on screen
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, tty: isTerminal(w), start: time.Now(), seen: map[string]int{}, failed: map[string]bool{}}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func (pp *progressPrinter) update(st *backends.RunStatus) {
	var done, running, failed int
	var lines []string
	for _, s := range st.Steps {
		switch {
		case s.Phase == backends.PhaseRunning:
			running++
		case s.Phase.Done():
			done++
		}
		if s.Phase == backends.PhaseFailed {
			failed++
		}
		for i := pp.seen[s.Name]; i < len(s.Attempts); i++ {
			if a := s.Attempts[i]; a.Phase == backends.PhaseFailed {
				lines = append(lines, fmt.Sprintf("%s: attempt %d failed (%s): %s", s.Name, a.Number, a.Reason, a.Message))
				pp.seen[s.Name] = i + 1
			}
		}
		if s.Phase == backends.PhaseFailed && !pp.failed[s.Name] {
			pp.failed[s.Name] = true
			lines = append(lines, fmt.Sprintf("%s: failed: %s", s.Name, s.Message))
		}
	}
	if pp.live && len(lines) > 0 {
		fmt.Fprint(pp.w, "\r\033[K")
		pp.live = false
	}
	for _, l := range lines {
		fmt.Fprintln(pp.w, l)
	}
	if !pp.tty {
		return
	}
	fmt.Fprintf(pp.w, "\r\033[K%s: %d/%d done, %d running, %d failed  %s",
		st.Pipeline, done, len(st.Steps), running, failed, time.Since(pp.start).Round(100*time.Millisecond))
	pp.live = true
	if st.Phase.Done() {
		fmt.Fprintln(pp.w)
		pp.live = false
	}
}

// WriteSummary writes a short human summary of a run: one line per step
// with its phase, attempts (and the reasons of failed ones) and duration.
func WriteSummary(w io.Writer, st *backends.RunStatus) {
	fmt.Fprintf(w, "run %s of %s: %s", st.RunID, st.Pipeline, st.Phase)
	if !st.Started.IsZero() && !st.Finished.IsZero() {
		fmt.Fprintf(w, " in %s", st.Finished.Sub(st.Started).Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	width := 4
	for _, s := range st.Steps {
		width = max(width, len(s.Name))
	}
	for _, s := range st.Steps {
		line := fmt.Sprintf("  %-*s  %-9s", width, s.Name, s.Phase)
		if n := len(s.Attempts); n > 0 {
			var reasons []string
			for _, a := range s.Attempts {
				if a.Reason != "" {
					reasons = append(reasons, string(a.Reason))
				}
			}
			line += fmt.Sprintf("  attempts=%d", n)
			if len(reasons) > 0 {
				line += " failed=" + strings.Join(reasons, ",")
			}
		}
		if n := len(s.Instances); n > 0 {
			line += fmt.Sprintf("  instances=%d", n)
		}
		if !s.Started.IsZero() && !s.Finished.IsZero() {
			line += "  " + s.Finished.Sub(s.Started).Round(time.Millisecond).String()
		}
		if s.Message != "" && s.Phase != backends.PhaseSucceeded {
			line += "  " + s.Message
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

func (c *cli) invoke(ctx context.Context, args []string) int {
	fs, _ := c.flags(backends.InvokeCommand)
	step := fs.String("step", "", "the plan name of the step to run (required)")
	input := fs.String("input", "", "the resolved input, as JSON")
	inputFile := fs.String("input-file", "", "read the resolved input from this file")
	outputFile := fs.String("output-file", backends.DefaultOutputFile, "write the output JSON here")
	if code := c.parse(fs, args); code != 0 {
		return exitOf(code)
	}
	// invalid reports a wrong invocation, on stderr and in the
	// termination message.
	invalid := func(format string, args ...any) int {
		msg := fmt.Sprintf(c.p.name+" task: "+format, args...)
		fmt.Fprintln(c.stderr, msg)
		writeTerminationMessage(msg)
		return ExitInvalid
	}
	plan, err := c.p.build(nil)
	if err != nil {
		c.reportInvalid(err)
		return ExitInvalid
	}
	s := plan.Step(*step)
	if s == nil || s.Invoke == nil {
		var names []string
		for _, st := range append(slices.Clone(plan.Steps), derefExit(plan)...) {
			if st.Invoke != nil {
				names = append(names, st.Name)
			}
		}
		return invalid("no Go task step %q (Go task steps: %s)", *step, strings.Join(names, ", "))
	}
	in := []byte(*input)
	if *inputFile != "" {
		if *input != "" {
			return invalid("give -input or -input-file, not both")
		}
		if in, err = os.ReadFile(*inputFile); err != nil {
			return invalid("%v", err)
		}
	}
	if len(bytes.TrimSpace(in)) == 0 {
		in = []byte("{}")
	}
	if !json.Valid(in) {
		return invalid("the input of step %q is not valid JSON", *step)
	}
	tctx := backends.ContextWithTraceParent(ctx, os.Getenv(backends.TraceParentEnv))
	tctx, closeStore, err := taskArtifacts(tctx, plan.Name, *step)
	if err != nil {
		return invalid("%v", err)
	}
	defer closeStore()
	if in, err = artifact.Resolve(tctx, in); err != nil {
		msg := fmt.Sprintf("step %q: reading its input's values stored out of band: %v", *step, err)
		fmt.Fprintf(c.stderr, "%s task %s: %s\n", c.p.name, *step, msg)
		writeTerminationMessage(msg)
		return backends.ExitInfrastructure
	}
	tctx, span := tracer().Start(tctx, "sluice.task", trace.WithAttributes(
		attribute.String("sluice.pipeline", c.p.name), attribute.String("sluice.step", *step)))
	out, err := invokeTask(tctx, s.Invoke, in, c.stderr)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "task failed")
		span.End()
		code, msg := ExitFailed, err.Error()
		switch {
		case ctx.Err() != nil:
			// Stopped from outside (SIGTERM, SIGINT): the task's error
			// is most likely the stop itself.
			code, msg = backends.ExitTerminated, "stopped: "+msg
			if cause := context.Cause(ctx); cause != context.Canceled {
				msg = fmt.Sprintf("stopped (%v): %s", cause, err)
			}
		case errors.Is(err, task.ErrInfrastructure):
			code = backends.ExitInfrastructure
		}
		fmt.Fprintf(c.stderr, "%s task %s: %s\n", c.p.name, *step, msg)
		writeTerminationMessage(msg)
		return code
	}
	span.End()
	if limit, _ := strconv.Atoi(os.Getenv(backends.InlineMaxEnv)); limit > 0 {
		promoted, err := artifact.Promote(tctx, out, limit)
		if err != nil {
			if _, ok := artifact.FromContext(tctx); !ok {
				return invalid("step %q: %v; set the pipeline's artifact store (pipeline.Options.Artifacts, or -artifacts URL) so that large outputs are stored out of band", *step, err)
			}
			msg := fmt.Sprintf("step %q: storing its output out of band: %v", *step, err)
			fmt.Fprintf(c.stderr, "%s task %s: %s\n", c.p.name, *step, msg)
			writeTerminationMessage(msg)
			return backends.ExitInfrastructure
		}
		out = promoted
	}
	if err := os.MkdirAll(filepath.Dir(*outputFile), 0o755); err != nil {
		return invalid("%v", err)
	}
	if err := os.WriteFile(*outputFile, out, 0o644); err != nil {
		return invalid("%v", err)
	}
	return ExitOK
}

// taskArtifacts returns ctx carrying the artifact scope the environment
// describes (see the task-invocation protocol in package backends), and
// the function that closes its store; ctx as it is when no store is named.
func taskArtifacts(ctx context.Context, pipeline, step string) (context.Context, func(), error) {
	root := os.Getenv(backends.ArtifactsEnv)
	if root == "" {
		return ctx, func() {}, nil
	}
	store, err := artifact.OpenLazy(root)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", backends.ArtifactsEnv, err)
	}
	p := artifact.Producer{Pipeline: pipeline, Run: os.Getenv(backends.RunIDEnv), Step: step}
	if p.Run == "" {
		store.Close()
		return nil, nil, fmt.Errorf("%s is set but %s is not: artifacts need the run's id", backends.ArtifactsEnv, backends.RunIDEnv)
	}
	if v := os.Getenv(backends.InstanceEnv); v != "" {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			store.Close()
			return nil, nil, fmt.Errorf("%s=%q: not an instance index", backends.InstanceEnv, v)
		}
		p.Instance = &i
	}
	p.Attempt, _ = strconv.Atoi(os.Getenv(backends.AttemptEnv))
	ctx = artifact.NewContext(ctx, artifact.Scope{Store: store, Producer: p})
	return ctx, func() { store.Close() }, nil
}

// printWarnings prints the warnings of a compiled artifact, if any.
func printWarnings(w io.Writer, name string, art backends.Artifact) {
	if wa, ok := art.(backends.Warner); ok {
		for _, m := range wa.Warnings() {
			fmt.Fprintf(w, "%s: warning: %s\n", name, m)
		}
	}
}

// stopGrace is backends.StopGrace; tests shorten it.
var stopGrace = backends.StopGrace

// invokeTask runs inv once. A panic is the task's error, as on the local
// backend. Once ctx is done (the process got SIGTERM or SIGINT) the task
// has stopGrace to return; after that invokeTask returns an error
// without it, and the caller exits, ending the task with the process.
func invokeTask(ctx context.Context, inv task.Invoker, in []byte, stderr io.Writer) ([]byte, error) {
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		defer func() {
			if p := recover(); p != nil {
				fmt.Fprintf(stderr, "panic: %v\n%s", p, debug.Stack())
				r = result{err: fmt.Errorf("panic: %v", p)}
			}
			done <- r
		}()
		r.out, r.err = inv.Invoke(ctx, in)
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
	}
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case r := <-done:
		return r.out, r.err
	case <-t.C:
		return nil, fmt.Errorf("the task did not return within %v of being stopped", stopGrace)
	}
}

// writeTerminationMessage writes msg to the container's termination-message
// file (see the task-invocation protocol in package backends) when that
// file exists; it never creates one.
func writeTerminationMessage(msg string) {
	path := os.Getenv(backends.TerminationLogEnv)
	if path == "" {
		path = backends.TerminationLog
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return // not in a container, or not one that has the file
	}
	_, _ = f.WriteString(msg)
	_ = f.Close()
}

func derefExit(p *backends.Plan) []backends.Step {
	if p.Exit == nil {
		return nil
	}
	return []backends.Step{*p.Exit}
}
