package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
)

// SummaryInfo is what a step's summary function (see [Step.Summarize])
// learns about the run besides the step's output: enough to tell the
// reader how to look further ("prog hpo -run ID").
type SummaryInfo struct {
	// Pipeline is the pipeline's name, which the program's messages go
	// by.
	Pipeline string
	// Run is the run's id.
	Run string
	// Step is the step's name in the run's status.
	Step string
}

// Summarize adds fn to s: after a run of the pipeline, the run command
// (and [Pipeline.WriteSummaries]) prints, below the one line per step of
// [WriteSummary], the text fn makes of the step's typed output, for each
// step that succeeded (or came from the cache). It is for packages whose
// steps have more to show than a phase, such as package hpo's table of
// trials: the output is decoded from the run status' JSON, on every
// backend, so fn sees what a downstream step would.
//
// fn should be quick and deterministic, and keep to a few lines: the
// summary is for a terminal. A panic in fn is reported in place of its
// text. Calling Summarize again replaces fn. It returns s, and panics if
// fn is nil, or on a zero Step.
func (s Step[Out]) Summarize(fn func(info SummaryInfo, out Out) string) Step[Out] {
	mustAdded(s.n, "Step.Summarize")
	if fn == nil {
		panic("pipeline: Step.Summarize with a nil func")
	}
	s.n.summary = func(info SummaryInfo, raw json.RawMessage) (text string, err error) {
		var out Out
		if err := json.Unmarshal(raw, &out); err != nil {
			return "", fmt.Errorf("decoding the output: %w", err)
		}
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("the summary panicked: %v", p)
			}
		}()
		return fn(info, out), nil
	}
	return s
}

// WriteSummaries writes the summaries that steps of p added with
// [Step.Summarize], for the run st (a status of a run of p), one block
// per step in plan order:
//
//	search:
//	  12 trials: 11 complete, 1 failed; best trial 7 (minimize)
//	  …
//
// A step whose output was stored out of band (see package artifact,
// "Values too large to travel in-band") is read from the artifact store
// in ctx, if any (artifact.NewContext), else said to be elsewhere. It
// returns the first error of w.
func (p *Pipeline) WriteSummaries(ctx context.Context, w io.Writer, st *backends.RunStatus) error {
	if p == nil || st == nil || isNil(w) {
		return misuse("WriteSummaries with a nil pipeline, writer or status")
	}
	var store *artifact.Store
	if sc, ok := artifact.FromContext(ctx); ok {
		store = sc.Store
	}
	return p.writeSummaries(ctx, w, st, store)
}

// writeSummaries is WriteSummaries reading promoted outputs from store
// (nil: none).
func (p *Pipeline) writeSummaries(ctx context.Context, w io.Writer, st *backends.RunStatus, store *artifact.Store) error {
	byName := p.summarized()
	if len(byName) == 0 {
		return nil
	}
	for _, s := range st.Steps {
		n := byName[s.Name]
		if n == nil || (s.Phase != backends.PhaseSucceeded && s.Phase != backends.PhaseCached) || len(s.Output) == 0 {
			continue
		}
		text, err := n.summarize(ctx, SummaryInfo{Pipeline: p.name, Run: st.RunID, Step: s.Name}, s.Output, store)
		if err != nil {
			text = fmt.Sprintf("no summary: %v", err)
		}
		text = strings.TrimRight(text, "\n")
		if text == "" {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "\n%s:\n", s.Name)
		for line := range strings.SplitSeq(text, "\n") {
			b.WriteString(strings.TrimRight("  "+line, " ") + "\n")
		}
		if _, err := io.WriteString(w, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// summarize renders out, a status output of n, restoring values stored
// out of band first.
func (n *node) summarize(ctx context.Context, info SummaryInfo, out json.RawMessage, store *artifact.Store) (string, error) {
	if artifact.HasValues(out) {
		if store == nil {
			return "", fmt.Errorf("the output is stored out of band and no artifact store is at hand")
		}
		var err error
		if out, err = store.Resolve(ctx, out); err != nil {
			return "", fmt.Errorf("reading the output stored out of band: %w", err)
		}
	}
	return n.summary(info, out)
}

// summarized returns the steps that have a summary function, by their
// name in a run's status (the plan's step names, which do not depend on
// parameters).
func (p *Pipeline) summarized() map[string]*node {
	var any bool
	for _, n := range p.nodes {
		any = any || n.summary != nil
	}
	if !any {
		return nil
	}
	plan, err := p.build(nil)
	if err != nil {
		return nil // an invalid pipeline never ran
	}
	byDisplay := make(map[string]*node, len(p.nodes))
	for _, n := range p.nodes {
		if n.summary != nil {
			byDisplay[n.name] = n
		}
	}
	out := map[string]*node{}
	for _, s := range append(plan.Steps, derefExit(plan)...) {
		if n := byDisplay[s.DisplayName]; n != nil {
			out[s.Name] = n
		}
	}
	return out
}

// stepSummaries prints the steps' summaries after the run command's
// summary, reading outputs stored out of band from the store at root
// (none if empty). Failing to is said on stderr: the run's outcome stands.
func (c *cli) stepSummaries(ctx context.Context, st *backends.RunStatus, root string) {
	var store *artifact.Store
	if root != "" {
		if s, err := artifact.OpenLazy(root); err == nil {
			defer s.Close()
			store = s
		}
	}
	if err := c.p.writeSummaries(context.WithoutCancel(ctx), c.stdout, st, store); err != nil {
		fmt.Fprintf(c.stderr, "%s run: writing the steps' summaries: %v\n", c.p.name, err)
	}
}
