package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/sluice-ml/sluice/pipeline"
)

func init() {
	pipeline.RegisterCommand(pipeline.Command{
		Name:  "models",
		Usage: "[-model NAME] [-artifacts URL]",
		Short: "the model registry: every model's versions, their metrics and where each is live",
		Run:   modelsCommand,
	})
}

// modelsCommand is "prog models": it lists the registry kept in the
// artifact store.
func modelsCommand(ctx context.Context, env *pipeline.CommandEnv, args []string) int {
	fset := env.FlagSet()
	model := fset.String("model", "", "show only model NAME")
	root := fset.String("artifacts", "", "the artifact store's root URL, where the registry is (default: the pipeline's)")
	if code, ok := env.Parse(fset, args); !ok {
		return code
	}
	if *model != "" {
		if err := checkName("model name", *model); err != nil {
			fmt.Fprintf(env.Stderr, "%s: -model: %v\n", env.Prog, err)
			return pipeline.ExitInvalid
		}
	}
	store, err := env.OpenArtifacts(*root)
	if errors.Is(err, pipeline.ErrNoStore) {
		fmt.Fprintf(env.Stderr, "%s: no registry: %v (check -artifacts)\n", env.Prog, err)
		return pipeline.ExitFailed
	}
	if err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", env.Prog, err)
		return pipeline.ExitInvalid
	}
	defer store.Close()
	if err := listModels(ctx, env.Stdout, NewRegistry(store), *model); err != nil {
		fmt.Fprintf(env.Stderr, "%s: %v\n", env.Prog, err)
		return pipeline.ExitFailed
	}
	return pipeline.ExitOK
}

// listModels writes the registry's models (or only model), each version
// with its metrics and the targets where it is live.
func listModels(ctx context.Context, w io.Writer, r Registry, only string) error {
	names, err := r.Models(ctx)
	if err != nil {
		return err
	}
	if only != "" {
		if !slices.Contains(names, only) {
			return fmt.Errorf("no model %s in the registry (it has: %s)", only, strings.Join(names, ", "))
		}
		names = []string{only}
	}
	if len(names) == 0 {
		fmt.Fprintln(w, "no models registered")
		return nil
	}
	lives, err := r.LiveReleases(ctx)
	if err != nil {
		return err
	}
	for i, name := range names {
		vs, err := r.Versions(ctx, name)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		plural := "s"
		if len(vs) == 1 {
			plural = ""
		}
		fmt.Fprintf(w, "%s: %d version%s\n", name, len(vs), plural)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  version\tcreated\tdigest\tmetrics\tsource\tlive")
		for _, v := range slices.Backward(vs) {
			var live []string
			for _, rel := range lives {
				if rel.Model == name && rel.Version == v.Version {
					live = append(live, string(rel.Level)+"/"+rel.Target)
				}
			}
			fmt.Fprintf(tw, "  v%d\t%s\t%s\t%s\t%s\t%s\n", v.Version, v.Created.Format("2006-01-02 15:04"), shortDigest(v.Model.Digest),
				formatMetrics(v.Metrics), v.Source.Run+"/"+v.Source.Step, strings.Join(live, ", "))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		d = d[:12]
	}
	return d
}

func formatMetrics(m map[string]float64) string {
	var parts []string
	for _, k := range metricNames(m) {
		parts = append(parts, k+"="+strconv.FormatFloat(m[k], 'g', 4, 64))
	}
	return strings.Join(parts, " ")
}
