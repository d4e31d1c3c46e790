package pipeline

import (
	"fmt"
	"io"
	"strings"

	"github.com/sluice-ml/sluice/backends"
)

// GraphFormat is an output format of [WriteGraph].
type GraphFormat string

const (
	// Mermaid is a Mermaid flowchart, rendered by GitHub and most wikis.
	Mermaid GraphFormat = "mermaid"
	// DOT is Graphviz's language.
	DOT GraphFormat = "dot"
)

// WriteGraph draws plan's DAG to w: one node per step (a fan-out is marked
// "for each", a conditional step shows its condition), one edge per
// dependency, and the exit handler apart. The output is deterministic.
func WriteGraph(w io.Writer, plan *backends.Plan, format GraphFormat) error {
	if err := checkGraphArgs(w, plan); err != nil {
		return err
	}
	var b strings.Builder
	switch format {
	case Mermaid, "":
		b.WriteString("flowchart TD\n")
		ids := map[string]string{}
		for i, s := range plan.Steps {
			ids[s.Name] = fmt.Sprintf("s%d", i)
			fmt.Fprintf(&b, "  s%d[\"%s\"]\n", i, mermaidEscape(stepLabel(&s, "<br/>")))
		}
		for i, s := range plan.Steps {
			for _, d := range s.DependsOn {
				fmt.Fprintf(&b, "  %s --> s%d\n", ids[d], i)
			}
		}
		if plan.Exit != nil {
			fmt.Fprintf(&b, "  exit([\"%s\"])\n", mermaidEscape(stepLabel(plan.Exit, "<br/>")+"<br/>on exit"))
		}
	case DOT:
		fmt.Fprintf(&b, "digraph %q {\n  rankdir=TB;\n  node [shape=box];\n", plan.Name)
		for _, s := range plan.Steps {
			fmt.Fprintf(&b, "  %q [label=%q];\n", s.Name, stepLabel(&s, "\n"))
		}
		for _, s := range plan.Steps {
			for _, d := range s.DependsOn {
				fmt.Fprintf(&b, "  %q -> %q;\n", d, s.Name)
			}
		}
		if plan.Exit != nil {
			fmt.Fprintf(&b, "  %q [label=%q, shape=oval];\n", plan.Exit.Name, stepLabel(plan.Exit, "\n")+"\non exit")
		}
		b.WriteString("}\n")
	default:
		return fmt.Errorf("pipeline: unknown graph format %q (use mermaid or dot)", format)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func stepLabel(s *backends.Step, nl string) string {
	l := s.Name
	if s.ForEach != nil {
		l += nl + "for each in " + s.ForEach.Items.String()
		if s.ForEach.Parallelism > 0 {
			l += fmt.Sprintf(" (%d at a time)", s.ForEach.Parallelism)
		}
	}
	if s.When != nil {
		l += nl + "when " + s.When.String()
	}
	return l
}

func mermaidEscape(s string) string {
	return strings.NewReplacer(`"`, "#quot;").Replace(s)
}
