// Command e2eprog is the pipeline program of the e2e tests: the image the
// pods of their steps run. It holds the conformance suite's pipelines,
// the e2e tests' own and internal/hpocase's searches, and builds the one that SLUICE_E2E_PIPELINE names,
// so the same binary is every step's image and, for the orchestrator
// tests, the orchestrator.
//
//	SLUICE_E2E_PIPELINE=Diamond e2eprog task -step join -input '…'
//	SLUICE_E2E_PIPELINE=steady SLUICE_E2E_IMAGE=… e2eprog run -backend kubejob -run-id r1
package main

import (
	"fmt"
	_ "github.com/sluice-ml/sluice/artifact/stores" // s3:// for the artifact tests
	"os"

	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/e2e/internal/pipelines"
	"github.com/sluice-ml/sluice/pipeline"
)

func main() {
	name := os.Getenv(pipelines.Env)
	p := pipelines.Build(name)
	if p == nil {
		fmt.Fprintf(os.Stderr, "e2eprog: %s=%q names no pipeline (known: %v)\n", pipelines.Env, name, pipelines.Names())
		os.Exit(pipeline.ExitInvalid)
	}
	image := os.Getenv(pipelines.ImageEnv)
	pipeline.Main(p,
		local.New(nil),
		argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: image, Command: []string{pipelines.Entrypoint}}}),
		kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: image}}),
	)
}
