package argo_test

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/backendtest"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/pipeline"
)

// testImage is the image of the suite's Go tasks, which name none.
const testImage = "registry.example/sluice-suite:v1"

// testCommand is the path of the suite's pipeline program in testImage,
// where "ko build" would put a program built from ./cmd/suite.
var testCommand = []string{"/ko-app/suite"}

func testOptions() *argo.Options {
	return &argo.Options{Pod: kubepod.Options{Image: testImage, Command: testCommand}}
}

// Every canonical pipeline compiles to a Workflow that decodes strictly,
// passes Argo's own validation and Pod Security "restricted", and matches
// its golden file.
func TestCompileGolden(t *testing.T) {
	for _, c := range backendtest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			art, err := pipeline.Compile(t.Context(), c.Build(), argo.New(nil, testOptions()), nil)
			require.NoError(t, err)
			docs := art.Documents()
			require.Len(t, docs, 1)
			checkDocument(t, docs[0])
			golden.Assert(t, bytes.Join(docs, []byte("---\n")))
		})
	}
	// Container tasks fanned out and cached (not among the canonical
	// pipelines, whose tasks are Go tasks).
	t.Run("ContainerFanOutAndCache", func(t *testing.T) {
		art, err := pipeline.Compile(t.Context(), containerPipeline(true), argo.New(nil, testOptions()), nil)
		require.NoError(t, err)
		checkDocument(t, art.Documents()[0])
		golden.Assert(t, art.Documents()[0])
	})
	// The quickstart example, compiled through its own command line.
	t.Run("Quickstart", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds the example")
		}
		out, err := exec.CommandContext(t.Context(), "go", "run", "../../examples/quickstart", "compile", "-backend", "argo").Output()
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("%v: %s", err, ee.Stderr)
		}
		require.NoError(t, err)
		checkDocument(t, out)
		golden.Assert(t, out)
	})
}
