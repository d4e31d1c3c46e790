package pipeline

import (
	"context"
	"fmt"

	"github.com/sluice-ml/sluice/backends"
)

// lintBackends has every backend the program links compile p, as the
// compile command would, and prints what each rejects: names that
// collide on one backend only (a step named like another step's retry
// Job on kubejob, "1a" next to "s-1a" on Argo), requirements a backend
// cannot honor, a store whose driver is not linked. A backend that
// implements backends.Linter reports its problems as field errors, every
// one of them, printed one per line like Validate's ("pipeline.tasks[x].name:
// Duplicate ...: on kubejob ..."); Compile, and so the compile command,
// returns the same. A backend's Compile must not contact a cluster (see
// backends.Backend), so linting stays offline. It prints the warnings of
// each compiled artifact (backends.Warner), and returns ExitInvalid if any
// backend rejected p.
//
// The plan is valid when this is called, so every error is a backend's.
func (c *cli) lintBackends(params map[string]string) int {
	code := ExitOK
	for _, b := range c.bs {
		// Compile validates again and lowers a fresh plan per backend, so
		// that no backend sees what another one did to its plan.
		art, err := Compile(context.Background(), c.p, b, &CompileOptions{Params: params})
		if err != nil {
			if !c.reportInvalid(err) {
				fmt.Fprintf(c.stderr, "%s lint: %v\n", c.p.name, err)
			}
			code = ExitInvalid
			continue
		}
		// What compile would warn about (a pod that needs a laxer Pod
		// Security level, …), per backend.
		printWarnings(c.stderr, c.p.name+" lint: "+backends.NameOf(b), art)
	}
	return code
}
