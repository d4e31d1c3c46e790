package hpo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/pipeline"
)

func init() {
	pipeline.RegisterCommand(pipeline.Command{
		Name:  "hpo",
		Usage: "-run ID [-step NAME] [-artifacts URL] [-o DIR]",
		Short: "a run's searches: their trials, best first; -o copies their plots and CSV to DIR",
		Run:   hpoCommand,
	})
}

// hpoCommand is "prog hpo": it reads the trials.json of each search of a
// run from the run's artifact store, prints its table, and with -o copies
// the search's files to DIR/STEP/.
func hpoCommand(ctx context.Context, env *pipeline.CommandEnv, args []string) int {
	fset := env.FlagSet()
	runID := fset.String("run", "", "the run whose searches to show (required)")
	step := fset.String("step", "", "show only the search whose result step is NAME (default: every search of the run)")
	root := fset.String("artifacts", "", "the artifact store's root URL (default: the pipeline's; else "+artifact.DefaultRoot()+")")
	dir := fset.String("o", "", "copy each search's plot.svg, plot.png, trials.csv and trials.json to DIR/STEP/")
	if code, ok := env.Parse(fset, args); !ok {
		return code
	}
	if err := pipeline.CheckRunID(*runID); err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", env.Prog, err)
		return pipeline.ExitInvalid
	}
	name, err := env.Pipeline()
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", env.Prog, err)
		return pipeline.ExitInvalid
	}
	store, err := env.OpenArtifacts(*root)
	if errors.Is(err, pipeline.ErrNoStore) {
		fmt.Fprintf(env.Stderr, "%s: no run %s of pipeline %s: %v (check -run and -artifacts)\n", env.Prog, *runID, name, err)
		return pipeline.ExitFailed
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", env.Prog, err)
		return pipeline.ExitInvalid
	}
	defer store.Close()
	objs, err := store.List(ctx, name, *runID)
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: cannot read the artifact store: %v\n", env.Prog, err)
		return pipeline.ExitFailed
	}
	if len(objs) == 0 {
		fmt.Fprintf(env.Stderr, "%s: no run %s of pipeline %s in %s: it stored nothing there (check -run and -artifacts)\n", env.Prog, *runID, name, store.URL())
		return pipeline.ExitFailed
	}
	searches := searchesOf(objs, name+"/"+*runID+"/")
	if len(searches) == 0 {
		fmt.Fprintf(env.Stderr, "%s: run %s has no search: no step stored %s (a search stores it when the run has an artifact store)\n", env.Prog, *runID, JSONName)
		return pipeline.ExitFailed
	}
	if *step != "" {
		var names []string
		for _, s := range searches {
			names = append(names, s.step)
		}
		i := slices.IndexFunc(searches, func(s search0) bool { return s.step == *step })
		if i < 0 {
			fmt.Fprintf(env.Stderr, "%s: run %s has no search %q; its searches: %s\n", env.Prog, *runID, *step, strings.Join(names, ", "))
			return pipeline.ExitInvalid
		}
		searches = searches[i : i+1]
	}
	rctx := artifact.NewContext(ctx, artifact.Scope{Store: store})
	code := pipeline.ExitOK
	for i, s := range searches {
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		if err := showSearch(rctx, env, store, s, *dir); err != nil {
			fmt.Fprintf(env.Stderr, "%s: search %s: %v\n", env.Prog, s.step, err)
			code = pipeline.ExitFailed
		}
	}
	return code
}

// search0 is a search found in a run's objects: its step (with the
// instance of a fan-out, "step/3") and the key of its trials.json.
type search0 struct {
	step, key string
}

// searchesOf finds the searches among a run's objects (keys under
// prefix), by their trials.json, in key order.
func searchesOf(objs []artifact.Object, prefix string) []search0 {
	var out []search0
	for _, o := range objs {
		rest, ok := strings.CutPrefix(o.Key, prefix)
		if !ok {
			continue
		}
		if step, ok := strings.CutSuffix(rest, "/"+JSONName); ok && !strings.HasPrefix(step, artifact.ValuesDir) {
			out = append(out, search0{step: step, key: o.Key})
		}
	}
	return out
}

// showSearch prints the table of the search s and copies its files to
// dir/STEP when dir is set.
func showSearch(ctx context.Context, env *pipeline.CommandEnv, store *artifact.Store, s search0, dir string) error {
	r, err := store.OpenObject(ctx, s.key)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(r)
	r.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.key, err)
	}
	var res Result[json.RawMessage, json.RawMessage]
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("%s is not a search's result: %w", s.key, err)
	}
	fmt.Fprintf(env.Stdout, "%s: %s\n", s.step, res.Headline())
	if res.Stopped != "" {
		fmt.Fprintf(env.Stdout, "stopped: %s\n", res.Stopped)
	}
	if err := res.WriteTable(env.Stdout, 0); err != nil {
		return err
	}
	if dir == "" {
		return nil
	}
	to := filepath.Join(dir, filepath.FromSlash(s.step))
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	files := []struct {
		name string
		f    artifact.File
	}{{SVGName, res.Files.SVG}, {PNGName, res.Files.PNG}, {CSVName, res.Files.CSV}}
	for _, f := range files {
		if f.f.IsZero() {
			continue
		}
		// Read through the description trials.json holds: checked
		// against its digest.
		b, err := f.f.ReadAll(ctx)
		if err != nil {
			return err
		}
		if err := writeOut(env, filepath.Join(to, f.name), b); err != nil {
			return err
		}
	}
	if err := writeOut(env, filepath.Join(to, JSONName), data); err != nil {
		return err
	}
	if res.Files.PlotError != "" {
		fmt.Fprintf(env.Stderr, "%s: search %s has no plot: %s\n", env.Prog, s.step, res.Files.PlotError)
	}
	return nil
}

func writeOut(env *pipeline.CommandEnv, path string, b []byte) error {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "wrote %s\n", path)
	return nil
}
