package pipeline

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/internal/field"
)

// artifacts runs "prog artifacts ls|rm -run ID [-artifacts URL]": it lists
// or deletes the objects a run of the pipeline stored, by the layout
// <root>/<pipeline>/<run>/... (see package artifact, "Retention").
func (c *cli) artifacts(ctx context.Context, args []string) int {
	prog := c.p.name + " artifacts"
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(c.stderr, "%s: give a subcommand: ls or rm\n", prog)
		c.usage(c.stderr)
		return ExitInvalid
	}
	sub, args := args[0], args[1:]
	if sub != "ls" && sub != "rm" {
		fmt.Fprintf(c.stderr, "%s: unknown subcommand %q; use ls or rm\n", prog, sub)
		c.usage(c.stderr)
		return ExitInvalid
	}
	prog += " " + sub
	fset := flag.NewFlagSet(prog, flag.ContinueOnError)
	fset.SetOutput(c.stderr)
	runID := fset.String("run", "", "the run whose artifacts to "+map[string]string{"ls": "list", "rm": "delete"}[sub]+" (required)")
	root := fset.String("artifacts", "", "the artifact store's root URL (default: the pipeline's; else "+artifact.DefaultRoot()+")")
	if code := c.parse(fset, args); code != 0 {
		return exitOf(code)
	}
	if *runID == "" {
		fmt.Fprintf(c.stderr, "%s: -run is required: the id of the run, as the run command printed it\n", prog)
		return ExitInvalid
	}
	if strings.Contains(*runID, "/") || artifact.CheckName(*runID) != nil {
		fmt.Fprintf(c.stderr, "%s: -run %q is not a run id: a letter or digit followed by letters, digits, '.', '_' or '-'\n", prog, *runID)
		return ExitInvalid
	}
	name, errs := checkName(field.NewPath("pipeline", "name"), c.p.name)
	if len(errs) > 0 {
		for _, fe := range errs {
			fmt.Fprintln(c.stderr, fe.Error())
		}
		return ExitInvalid
	}
	url := cmp.Or(*root, c.p.store, artifact.DefaultRoot())
	store, err := artifact.OpenLazy(url)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", prog, err)
		return ExitInvalid
	}
	defer store.Close()
	if dir, ok := store.LocalDir(); ok {
		// A file store that does not exist holds nothing: say so without
		// creating it, as opening it would.
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return c.noArtifacts(prog, sub, name, *runID, store.URL())
		}
	}
	if sub == "rm" {
		n, err := store.Delete(ctx, name, *runID)
		if err != nil {
			fmt.Fprintf(c.stderr, "%s: %v (deleted %d before the error)\n", prog, err, n)
			return ExitFailed
		}
		if n == 0 {
			return c.noArtifacts(prog, sub, name, *runID, store.URL())
		}
		fmt.Fprintf(c.stdout, "deleted %d %s of run %s from %s\n", n, plural(n, "object"), *runID, store.URL())
		return ExitOK
	}
	objs, err := store.List(ctx, name, *runID)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", prog, err)
		return ExitFailed
	}
	if len(objs) == 0 {
		return c.noArtifacts(prog, sub, name, *runID, store.URL())
	}
	keyW, sizeW := 0, 0
	var total int64
	for _, o := range objs {
		keyW = max(keyW, len(o.Key))
		sizeW = max(sizeW, len(fmt.Sprint(o.Size)))
		total += o.Size
	}
	for _, o := range objs {
		fmt.Fprintf(c.stdout, "%-*s  %*d  %s\n", keyW, o.Key, sizeW, o.Size, o.ModTime.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(c.stdout, "total: %d %s, %d bytes\n", len(objs), plural(len(objs), "object"), total)
	return ExitOK
}

// noArtifacts reports a run with nothing stored: not an error (the run
// may have written none, or they were deleted), but said on stderr in
// case the run id or the store is wrong.
func (c *cli) noArtifacts(prog, sub, pipeline, run, root string) int {
	if sub == "ls" {
		fmt.Fprintln(c.stdout, "total: 0 objects, 0 bytes")
	} else {
		fmt.Fprintf(c.stdout, "deleted 0 objects of run %s from %s\n", run, root)
	}
	fmt.Fprintf(c.stderr, "%s: no artifacts of run %s of pipeline %s in %s (check -run and -artifacts)\n", prog, run, pipeline, root)
	return ExitOK
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
