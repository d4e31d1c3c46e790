// Batchscore is a template for a nightly batch-scoring pipeline: copy
// this directory to start your own. It scores one day's partition of
// events with a model on a GPU node pool's Spot capacity, measures how far
// the scores drifted from the model's validation data, and runs an alert
// (a container task) when the drift is too high. Its tests
// (pipeline_test.go) show how to test such a pipeline with go test: stubs,
// injected Spot interruptions, the alert's condition, and the manifests.
//
//	go run ./examples/batchscore                              # score the default partition locally
//	go run ./examples/batchscore -p shift=1.5                 # drifted data: the alert runs
//	go run ./examples/batchscore -p partition=2026-11-30      # another day (default: yesterday)
//	go run ./examples/batchscore -scheduled 2026-11-15        # a backfill: the run for that date
//	go run ./examples/batchscore compile -backend kubejob     # or argo: the cluster's manifests
//
// The pipeline (pipeline.go) asks for what it would get on an EKS cluster:
// a CPU node group for extraction and the drift check, one whole NVIDIA L4
// on the GPU node group's Spot capacity for scoring. Locally, the executor
// honours the requests against the capacity given here: a machine with 8
// CPUs, 32Gi and one GPU.
//
// On a cluster, the Go tasks run in pods as this program's task mode, in
// the image given to the cluster backends (image, below; "ko build
// ./examples/batchscore" puts the program at /ko-app/batchscore), and the
// alert runs in its own image, busybox. The artifacts go to the bucket of
// -artifacts s3://bucket/prefix.
package main

import (
	_ "github.com/sluice-ml/sluice/artifact/stores" // s3://, gs://, azblob:// artifact stores
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
)

// image holds this very program: the cluster backends run each Go task
// in it, in task-invocation mode.
const image = "ghcr.io/sluice-ml/batchscore:latest"

// command is where "ko build ./examples/batchscore" puts the program in
// image.
var command = []string{"/ko-app/batchscore"}

func main() {
	pipeline.Main(build(), newLocal(),
		argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: image, Command: command}}),
		kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: image}}))
}

// newLocal is the local executor with the capacity of a workstation.
func newLocal() *local.Backend {
	return local.New(&local.Options{Capacity: &local.Capacity{CPU: "8", Memory: "32Gi", GPUs: 1}})
}
