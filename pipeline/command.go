package pipeline

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
	"github.com/sluice-ml/sluice/internal/field"
)

// Command is a subcommand that a package adds to every pipeline program
// that links it, with [RegisterCommand]: package hpo adds "prog hpo",
// which shows a run's searches. It is how a package that imports
// pipeline extends [Main], which cannot import it.
type Command struct {
	// Name is the subcommand, a lower-case word that is not one of
	// Main's own (run, compile, graph, lint, artifacts, task, help).
	Name string
	// Usage is its flags, for the program's usage text:
	// "-run ID [-step NAME] [-artifacts URL] [-o DIR]".
	Usage string
	// Short says what it does, in a few words.
	Short string
	// Run runs the subcommand with its arguments (after the name) and
	// returns the exit status: [ExitOK], [ExitFailed], or [ExitInvalid]
	// for a usage error.
	Run func(ctx context.Context, env *CommandEnv, args []string) int
}

// CommandEnv is what a registered [Command] runs with.
type CommandEnv struct {
	// Prog names the command in messages: "<pipeline> <name>".
	Prog string
	// Stdout and Stderr are the program's.
	Stdout, Stderr io.Writer

	p *Pipeline
}

// FlagSet returns a flag set for the command's flags, which prints its
// errors and usage to Stderr under Prog.
func (e *CommandEnv) FlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(e.Prog, flag.ContinueOnError)
	fs.SetOutput(e.Stderr)
	return fs
}

// Parse parses args into fs and allows no arguments after the flags. It
// returns ok, or the exit status the command should return: [ExitOK]
// for -h, [ExitInvalid] for a usage error (said on Stderr).
func (e *CommandEnv) Parse(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitInvalid, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.Stderr, "%s: unexpected arguments: %s\n", e.Prog, strings.Join(fs.Args(), " "))
		return ExitInvalid, false
	}
	return 0, true
}

// Pipeline returns the name of the program's pipeline, as its runs are
// stored (see package artifact, "Layout"), or an error if the name is
// not valid.
func (e *CommandEnv) Pipeline() (string, error) {
	name, errs := checkName(field.NewPath("pipeline", "name"), e.p.name)
	if len(errs) > 0 {
		return "", errs[0]
	}
	return name, nil
}

// ErrNoStore is wrapped by the error of [CommandEnv.OpenArtifacts] when
// the store is a directory that does not exist: it holds no run.
var ErrNoStore = errors.New("the artifact store does not exist")

// OpenArtifacts opens the artifact store a command reads runs from, as
// "prog artifacts" does: root if not empty (a -artifacts flag), else the
// pipeline's (Options.Artifacts), else [artifact.DefaultRoot]. A file
// store that does not exist is not created: the error wraps [ErrNoStore].
// The store is opened lazily: an unreachable one fails its first use.
func (e *CommandEnv) OpenArtifacts(root string) (*artifact.Store, error) {
	url := cmp.Or(root, e.p.store, artifact.DefaultRoot())
	store, err := artifact.OpenLazy(url)
	if err != nil {
		return nil, err
	}
	if dir, ok := store.LocalDir(); ok {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			store.Close()
			return nil, fmt.Errorf("%s: %w", url, ErrNoStore)
		}
	}
	return store, nil
}

// CheckRunID reports whether id can name a run, as a -run flag gives it.
func CheckRunID(id string) error {
	if id == "" {
		return errors.New("-run is required: the id of the run, as the run command printed it")
	}
	if strings.Contains(id, "/") || artifact.CheckName(id) != nil {
		return fmt.Errorf("-run %q is not a run id: a letter or digit followed by letters, digits, '.', '_' or '-'", id)
	}
	return nil
}

var (
	commandsMu sync.RWMutex
	commands   = map[string]Command{}
)

// builtinCommands are Main's own subcommands.
var builtinCommands = []string{"run", "compile", "graph", "lint", "artifacts", backends.InvokeCommand, "help"}

// RegisterCommand adds c to every pipeline program of this binary, as
// image.RegisterFormat adds a format: call it from the package's init.
// It panics if c has no Name or Run, if the name is one of Main's own
// subcommands, or if a command of that name is already registered.
func RegisterCommand(c Command) {
	switch {
	case c.Name == "" || strings.ToLower(c.Name) != c.Name || strings.ContainsAny(c.Name, " \t-"):
		panic(fmt.Sprintf("pipeline: RegisterCommand with name %q: give a lower-case word", c.Name))
	case c.Run == nil:
		panic(fmt.Sprintf("pipeline: RegisterCommand(%q) with a nil Run", c.Name))
	case slices.Contains(builtinCommands, c.Name):
		panic(fmt.Sprintf("pipeline: RegisterCommand(%q): the name is one of Main's own subcommands", c.Name))
	}
	commandsMu.Lock()
	defer commandsMu.Unlock()
	if _, dup := commands[c.Name]; dup {
		panic(fmt.Sprintf("pipeline: RegisterCommand(%q) twice", c.Name))
	}
	commands[c.Name] = c
}

// registered returns the registered commands, by name.
func registered() []Command {
	commandsMu.RLock()
	defer commandsMu.RUnlock()
	out := make([]Command, 0, len(commands))
	for _, c := range commands {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Command) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// command returns the registered command name.
func command(name string) (Command, bool) {
	commandsMu.RLock()
	defer commandsMu.RUnlock()
	c, ok := commands[name]
	return c, ok
}

// runCommand runs the registered command c.
func (c *cli) runCommand(ctx context.Context, cmd Command, args []string) int {
	env := &CommandEnv{Prog: c.p.name + " " + cmd.Name, Stdout: c.stdout, Stderr: c.stderr, p: c.p}
	return cmd.Run(ctx, env, args)
}

// commandUsage is the usage lines of the registered commands.
func commandUsage(prog string) string {
	var b strings.Builder
	for _, c := range registered() {
		fmt.Fprintf(&b, "  %s %s %s\n", prog, c.Name, c.Usage)
		if c.Short != "" {
			fmt.Fprintf(&b, "      %s\n", c.Short)
		}
	}
	return b.String()
}
