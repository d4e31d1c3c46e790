package pipeline

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/sluice-ml/sluice/artifact"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"sigs.k8s.io/yaml"

	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/backends/runstate"
	"github.com/sluice-ml/sluice/task"
)

// Exit statuses of the program entrypoint.
const (
	ExitOK      = 0 // success
	ExitFailed  = 1 // the run (or the invoked task) failed
	ExitInvalid = 2 // invalid pipeline or usage

	// ExitInterrupted is the status of a run that a second interrupt
	// stopped waiting for (128+SIGINT): the run may still be running.
	ExitInterrupted = 130
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
//	prog [run]   [-backend NAME] [-p name=value]... [-run-id ID] [-report PATH]
//	             [-artifacts URL] [-cache-dir DIR | -no-cache] [-q]
//	                                                  run (default backend: local)
//	prog compile -backend NAME [-o yaml|json] [-p name=value]...
//	                                                  manifests to stdout, one YAML document each
//	prog graph   [-format mermaid|dot]                the DAG as a picture
//	prog lint    [-p name=value]...                   validate, and compile for every linked
//	                                                  backend without contacting a cluster
//	prog artifacts ls|rm -run ID [-artifacts URL]     list or delete a run's artifacts
//	prog task    -step NAME [-input JSON | -input-file PATH] [-output-file PATH]
//	                                                  run one Go task (used inside pods;
//	                                                  see package backends)
//	prog help                                         this, the run flags and the parameters
//
// and the subcommands that linked packages add with [RegisterCommand],
// such as package hpo's
//
//	prog hpo -run ID [-step NAME] [-artifacts URL] [-o DIR]
//	                                                  a run's searches: their trials, plots and CSV
//
// After a run, run prints the summary of [WriteSummary] and below it
// what steps add to it with [Step.Summarize] (a search's trials).
//
// "prog help" and "prog run -h" list the pipeline's parameters with their
// types and defaults.
//
// On a backend that runs tasks on this machine (local; see
// [backends.MachineConfigurer]) run caches the outputs of steps whose
// cache policy is enabled in sluice/cache under the user's cache
// directory (os.UserCacheDir), unless the backend was given a CacheDir;
// -cache-dir DIR caches in DIR instead and -no-cache not at all. The
// tasks' output (a container task's stdout and stderr, a Go task's
// panic) streams to stderr, each line prefixed with "[step] ", unless
// the backend was given a Log; -q silences it. A library call of [Run]
// does neither: there the backend's Options are the only defaults.
// -report PATH is checked before the run starts: a path that cannot be
// written is a usage error.
//
// Exit status: 0 success; 1 the run failed; 2 invalid pipeline or usage,
// with every validation problem on stderr, one per line. An interrupt
// (SIGINT, SIGTERM) cancels the run and waits for it to stop (the exit
// handler still runs); a second one stops waiting: the program says what
// may still be running and exits with status 130 ([ExitInterrupted]). In
// the task mode an interrupt stops the task: the program then exits with
// status 143 ([backends.ExitTerminated]), which backends count as an
// infrastructure failure; a malformed invocation of the task mode
// (-h included) exits with status 2 (see package backends for the task
// mode's statuses).
func Main(p *Pipeline, bs ...backends.Backend) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	code := execSignals(p, os.Args[1:], os.Stdout, os.Stderr, sigs, bs...)
	signal.Stop(sigs)
	os.Exit(code)
}

// execSignals is [Exec] driven by signals: the first one received on
// sigs cancels the context (with the cause "<signal> signal received",
// as signal.NotifyContext does), the second one tells a run to stop
// waiting.
func execSignals(p *Pipeline, args []string, stdout, stderr io.Writer, sigs <-chan os.Signal, bs ...backends.Backend) int {
	ctx, cancel := context.WithCancelCause(context.Background())
	abort, done := make(chan struct{}), make(chan struct{})
	defer func() { close(done); cancel(nil) }()
	go func() {
		select {
		case s := <-sigs:
			cancel(errors.New(s.String() + " signal received"))
		case <-done:
			return
		}
		select {
		case <-sigs:
			close(abort)
		case <-done:
		}
	}()
	return exec(ctx, abort, p, args, stdout, stderr, bs...)
}

// Exec is [Main] without the process: it runs the command line args (not
// including the program name) against p and returns the exit status. Use
// it to test a pipeline program's command line, or to embed the commands
// in a program with its own CLI. ctx ending is what SIGINT and SIGTERM do
// to Main: it cancels a run, and stops a task in the task mode.
func Exec(ctx context.Context, p *Pipeline, args []string, stdout, stderr io.Writer, bs ...backends.Backend) int {
	return exec(ctx, nil, p, args, stdout, stderr, bs...)
}

// exec is Exec with the channel that a second interrupt closes (nil: it
// never is).
func exec(ctx context.Context, abort <-chan struct{}, p *Pipeline, args []string, stdout, stderr io.Writer, bs ...backends.Backend) int {
	if stderr == nil {
		stderr = io.Discard
	}
	if stdout == nil {
		stdout = io.Discard
	}
	if p == nil {
		fmt.Fprintln(stderr, "pipeline: Exec or Main called with a nil *Pipeline")
		return ExitInvalid
	}
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	c := &cli{p: p, bs: bs, stdout: stdout, stderr: stderr, abort: abort}
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
		c.usage(c.stdout)
		c.runHelp(c.stdout)
		return ExitOK
	}
	if rc, ok := command(cmd); ok {
		return c.runCommand(ctx, rc, args)
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n", p.name, cmd)
	c.usage(stderr)
	return ExitInvalid
}

type cli struct {
	p      *Pipeline
	bs     []backends.Backend
	stdout io.Writer
	stderr io.Writer
	abort  <-chan struct{} // closed by a second interrupt
}

func (c *cli) usage(w io.Writer) {
	names := c.backendNames()
	fmt.Fprintf(w, `usage:
  %[1]s [run]   [-backend NAME] [-p name=value]... [-run-id ID] [-report PATH]
                [-artifacts URL] [-cache-dir DIR | -no-cache] [-q]
  %[1]s compile -backend NAME [-o yaml|json] [-p name=value]...
  %[1]s graph   [-format mermaid|dot]
  %[1]s lint    [-p name=value]...
  %[1]s artifacts ls|rm -run ID [-artifacts URL]
  %[1]s task    -step NAME [-input JSON | -input-file PATH] [-output-file PATH]
  %[1]s help
%[3]sbackends linked: %[2]s
`, c.p.name, strings.Join(names, ", "), commandUsage(c.p.name))
}

// runHelp prints the run command's flags and the pipeline's parameters.
func (c *cli) runHelp(w io.Writer) {
	fmt.Fprintln(w, "run flags:")
	fs, _ := c.runFlags()
	fs.SetOutput(w)
	fs.PrintDefaults()
	c.paramHelp(w)
}

// paramHelp lists the pipeline's parameters: name, Go type and default.
func (c *cli) paramHelp(w io.Writer) {
	if len(c.p.params) == 0 {
		fmt.Fprintf(w, "parameters: none (%s declares none)\n", c.p.name)
		return
	}
	fmt.Fprintln(w, "parameters (override with -p name=value; a string as is, anything else as JSON):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, pm := range c.p.params {
		def, err := json.Marshal(pm.def)
		if err != nil {
			def = []byte(fmt.Sprintf("%v (not JSON: %v)", pm.def, err))
		}
		fmt.Fprintf(tw, "  %s\t%v\tdefault %s\n", pm.name, pm.typ, def)
	}
	tw.Flush()
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

// runOpts are the run command's flags.
type runOpts struct {
	backend, runID, report, store, cacheDir *string
	noCache, quiet                          *bool
	params                                  paramFlags
	scheduled                               timeFlag
}

func (c *cli) runFlags() (*flag.FlagSet, *runOpts) {
	fs, params := c.flags("run")
	o := &runOpts{params: params}
	o.backend = fs.String("backend", "local", "the backend to run on")
	o.runID = fs.String("run-id", "", "ask the backend for this run id (resumes a run on backends that support it)")
	o.report = fs.String("report", "", "write the final run status as JSON to this file (checked before the run starts)")
	o.store = fs.String("artifacts", "", "the artifact store's root URL, e.g. s3://bucket/prefix (default: the pipeline's; on the local backend, a directory under the user's cache dir)")
	o.cacheDir = fs.String("cache-dir", "", "cache step outputs in DIR (backends that run on this machine; default: sluice/cache under the user's cache dir, unless the program set one)")
	o.noCache = fs.Bool("no-cache", false, "do not read or write the step cache")
	o.quiet = fs.Bool("q", false, "do not stream the tasks' output to stderr")
	fs.Var(&o.scheduled, "scheduled", "the time the run is for, what pipeline.RunScheduled gives (a backfill): RFC 3339, or a date for its midnight UTC (default: the run's start)")
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "usage: %s run [flags]\n", c.p.name)
		fs.PrintDefaults()
		c.paramHelp(c.stderr)
	}
	return fs, o
}

func (c *cli) run(ctx context.Context, args []string) int {
	fs, o := c.runFlags()
	if code := c.parse(fs, args); code != 0 {
		return exitOf(code)
	}
	if *o.noCache && *o.cacheDir != "" {
		fmt.Fprintf(c.stderr, "%s run: give -cache-dir or -no-cache, not both\n", c.p.name)
		return ExitInvalid
	}
	b, code := c.backend(*o.backend)
	if b == nil {
		return code
	}
	if *o.report != "" {
		if err := checkWritable(*o.report); err != nil {
			fmt.Fprintf(c.stderr, "%s run: -report %s: cannot write the report there: %v\n", c.p.name, *o.report, err)
			return ExitInvalid
		}
	}
	progress := newProgressPrinter(c.stderr)
	if mc, ok := b.(backends.MachineConfigurer); ok {
		cfg := backends.MachineConfig{CacheDir: *o.cacheDir, NoCache: *o.noCache}
		if dir, err := os.UserCacheDir(); err == nil {
			cfg.DefaultCacheDir = filepath.Join(dir, "sluice", "cache")
		}
		if !*o.quiet {
			cfg.Log = progress
		}
		b = mc.WithMachineConfig(cfg)
	} else if *o.cacheDir != "" || *o.noCache {
		fmt.Fprintf(c.stderr, "%s run: -cache-dir and -no-cache are for backends that run on this machine (local); backend %s caches as its own options say\n", c.p.name, *o.backend)
		return ExitInvalid
	}

	type result struct {
		st  *backends.RunStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Run(ctx, c.p, b, &RunOptions{Params: o.params, RunID: *o.runID, Scheduled: o.scheduled.t, Progress: progress.update, Artifacts: *o.store})
		done <- result{st, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		again := ""
		if c.abort != nil {
			again = "; interrupt again to stop waiting"
		}
		progress.printf("%s: %v: stopping the run and waiting for it to end (its exit handler still runs)%s", c.p.name, context.Cause(ctx), again)
		select {
		case r = <-done:
		case <-c.abort:
			progress.printf("%s", c.stillRunning(b, progress.last(), *o.backend))
			return ExitInterrupted
		}
	}
	st, err := r.st, r.err
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
	c.stepSummaries(ctx, st, cmp.Or(*o.store, c.p.store))
	if *o.report != "" {
		j, _ := json.MarshalIndent(st, "", "  ")
		if werr := os.WriteFile(*o.report, append(j, '\n'), 0o644); werr != nil {
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

// stillRunning says, after a second interrupt, what may still be running:
// the steps and instances that were running or pending at the last status
// (asked of a backend on this machine, else the last progress report).
func (c *cli) stillRunning(b backends.Backend, last *backends.RunStatus, backend string) string {
	if last == nil {
		return fmt.Sprintf("%s: interrupted again: not waiting any more; the run on %s may have started, and its id is not known yet: check the backend for what is still running", c.p.name, backend)
	}
	_, here := b.(backends.MachineConfigurer)
	if w, ok := b.(backends.Watcher); ok && here {
		// A done context asks the local backend for the current status
		// without waiting. A cluster backend might still make a call,
		// which would be waiting again: its last progress report does.
		done, cancel := context.WithCancel(context.Background())
		cancel()
		if st, _ := w.Watch(done, last.RunID, &backends.WatchOptions{}); st != nil {
			last = st
		}
	}
	var active []string
	for _, s := range last.Steps {
		if len(s.Instances) > 0 {
			for _, in := range s.Instances {
				if in.Phase == backends.PhaseRunning || in.Phase == backends.PhasePending {
					active = append(active, in.Name)
				}
			}
			continue
		}
		if s.Phase == backends.PhaseRunning || s.Phase == backends.PhasePending {
			active = append(active, s.Name)
		}
	}
	what := "no step was running at the last update (the exit handler may be)"
	if len(active) > 0 {
		what = "these were running or about to start, and may still be: " + strings.Join(active, ", ")
	}
	where := "on " + backend
	if here {
		where = "on this machine: in-process tasks end with this program; host processes of container tasks were sent a kill when the run was canceled"
	}
	return fmt.Sprintf("%s: interrupted again: not waiting any more for run %s to stop (%s); %s", c.p.name, last.RunID, where, what)
}

// checkWritable reports whether a file can be written at path, without
// changing what is there: an existing file is opened for writing, and a
// new one is tried as a temporary file next to it, then removed.
func checkWritable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err == nil && fi.IsDir():
		return errors.New("it is a directory")
	case err == nil:
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		return f.Close()
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".sluice-report-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// progressPrinter reports a run's progress on stderr. On a terminal it
// keeps one status line up to date (steps done, running and failed, and
// the time since the run started); elsewhere it is quiet but for failed
// attempts and steps, and why a step waits (its pod unschedulable, its
// container unable to start), one line each, so CI logs stay short. It is also
// the log of a backend that runs on this machine (Write): a log line
// clears the status line first. It is safe for concurrent use.
type progressPrinter struct {
	mu     sync.Mutex
	w      io.Writer
	st     *backends.RunStatus // the last status: immutable, kept as is (see backends.WatchOptions)
	tty    bool
	start  time.Time
	seen   map[string]int  // failed attempts reported, by step
	waits  map[string]bool // step + "\x00" + message of the waits reported
	failed map[string]bool
	live   bool // a status line is on screen
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, tty: isTerminal(w), start: time.Now(), seen: map[string]int{}, waits: map[string]bool{}, failed: map[string]bool{}}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressHook, if set, holds a function called with every status after
// it is printed; tests set it.
var progressHook atomic.Pointer[func(*backends.RunStatus)]

// Write writes the lines of p, clearing the status line first.
func (pp *progressPrinter) Write(p []byte) (int, error) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.clearLine()
	return pp.w.Write(p)
}

// printf prints one line, clearing the status line first.
func (pp *progressPrinter) printf(format string, args ...any) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	pp.clearLine()
	fmt.Fprintf(pp.w, format+"\n", args...)
}

func (pp *progressPrinter) clearLine() {
	if pp.live {
		fmt.Fprint(pp.w, "\r\033[K")
		pp.live = false
	}
}

// last returns the last status reported, or nil.
func (pp *progressPrinter) last() *backends.RunStatus {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.st
}

// update reports st, a snapshot of the run's status, which it reads and
// keeps but never changes: snapshots are immutable and share memory with
// one another. It does a few comparisons for a step with no failed
// attempt that does not wait, the common case in a large run.
func (pp *progressPrinter) update(st *backends.RunStatus) {
	pp.mu.Lock()
	defer func() {
		pp.mu.Unlock()
		if f := progressHook.Load(); f != nil {
			(*f)(st)
		}
	}()
	pp.st = st
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
		if n := len(s.Attempts); n > 1 || n == 1 && s.Attempts[0].Phase == backends.PhaseFailed {
			for i := pp.seen[s.Name]; i < n; i++ {
				if a := s.Attempts[i]; a.Phase == backends.PhaseFailed {
					lines = append(lines, fmt.Sprintf("%s: attempt %d failed (%s): %s", s.Name, a.Number, a.Reason, a.Message))
					pp.seen[s.Name] = i + 1
				}
			}
		}
		if !s.Phase.Done() && runstate.Waits(s.Message) {
			if k := s.Name + "\x00" + s.Message; !pp.waits[k] {
				pp.waits[k] = true
				lines = append(lines, fmt.Sprintf("%s: %s", s.Name, s.Message))
			}
		}
		if s.Phase == backends.PhaseFailed && !pp.failed[s.Name] {
			pp.failed[s.Name] = true
			lines = append(lines, fmt.Sprintf("%s: failed: %s", s.Name, s.Message))
		}
	}
	if len(lines) > 0 {
		pp.clearLine()
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
// with its phase, attempts (or a fan-out's instances), the retries by
// reason when there were any ("retries: infra 3, app 0", over all
// instances for a fan-out), its duration, and the message of a step that
// did not succeed. It panics with a message naming the misuse when w or
// st is nil (see "Validation errors" in the package doc).
func WriteSummary(w io.Writer, st *backends.RunStatus) {
	if isNil(w) {
		panic("pipeline: WriteSummary with a nil writer")
	}
	if st == nil {
		panic("pipeline: WriteSummary with a nil run status")
	}
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
		var r retries
		if n := len(s.Attempts); n > 0 {
			line += fmt.Sprintf("  attempts=%d", n)
			r.add(s.Attempts)
		}
		if n := len(s.Instances); n > 0 {
			line += fmt.Sprintf("  instances=%d", n)
			for _, in := range s.Instances {
				r.add(in.Attempts)
			}
		}
		if r.infra+r.app > 0 {
			line += fmt.Sprintf(" · retries: infra %d, app %d", r.infra, r.app)
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

// retries counts retries by the budget they consumed.
type retries struct{ infra, app int }

// add counts the retries of one step or instance: every attempt but the
// last was followed by another, so its failure's reason was retried.
func (r *retries) add(as []backends.Attempt) {
	for _, a := range as[:max(len(as)-1, 0)] {
		switch a.Reason {
		case backends.ReasonInfra:
			r.infra++
		case backends.ReasonApp:
			r.app++
		}
	}
}

func (c *cli) invoke(ctx context.Context, args []string) int {
	fs, _ := c.flags(backends.InvokeCommand)
	step := fs.String("step", "", "the plan name of the step to run (required)")
	input := fs.String("input", "", "the resolved input, as JSON")
	inputFile := fs.String("input-file", "", "read the resolved input from this file")
	outputFile := fs.String("output-file", backends.DefaultOutputFile, "write the output JSON here")
	// invalid reports a wrong invocation, on stderr and in the
	// termination message.
	invalid := func(format string, args ...any) int {
		msg := fmt.Sprintf(c.p.name+" task: "+format, args...)
		fmt.Fprintln(c.stderr, msg)
		writeTerminationMessage(msg)
		return ExitInvalid
	}
	// Every malformed invocation exits 2, -h included: the task mode is
	// a protocol, where 0 means the task ran and wrote its output.
	if code := c.parse(fs, args); code != 0 {
		return invalid("malformed invocation: %s %s", backends.InvokeCommand, strings.Join(args, " "))
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
		case isInputDecodeError(err):
			code = ExitInvalid // no retry can mend the input
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

// isInputDecodeError reports whether err is the error of a Go task's
// invoker that could not decode its input (task.FuncInvoker), which is a
// malformed invocation, not a failure of the task. The invoker has no
// sentinel for it, so this matches its message and the JSON error it
// wraps.
func isInputDecodeError(err error) bool {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	return (errors.As(err, &te) || errors.As(err, &se)) && strings.HasPrefix(err.Error(), "task: decode input")
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
