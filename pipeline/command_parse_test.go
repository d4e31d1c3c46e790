package pipeline_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/sluice-ml/sluice/pipeline"
)

func TestCommandEnvParse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		ok     bool
		stderr string
	}{
		{"Flags", []string{"-n", "3"}, 0, true, ""},
		{"Help", []string{"-h"}, pipeline.ExitOK, false, "Usage of quick cmd"},
		{"BadFlag", []string{"-x"}, pipeline.ExitInvalid, false, "flag provided but not defined: -x"},
		{"Extra", []string{"-n", "3", "more", "args"}, pipeline.ExitInvalid, false, "quick cmd: unexpected arguments: more args\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			env := &pipeline.CommandEnv{Prog: "quick cmd", Stderr: &stderr}
			fs := env.FlagSet()
			n := fs.Int("n", 0, "a number")
			code, ok := env.Parse(fs, tc.args)
			assert.Equal(t, tc.ok, ok)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, stderr.String(), tc.stderr)
			if ok {
				assert.Equal(t, 3, *n)
			}
		})
	}
}
