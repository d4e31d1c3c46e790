// Quickstart is a small, real ML pipeline: it generates a labelled data set,
// splits it, searches the hyperparameters of a logistic regression with
// hpo.Search (12 trials, TPE, ASHA early stopping over the epochs), evaluates the best
// trial's model on held-out data and publishes it if it is accurate
// enough.
//
// It runs in process by default, no cluster needed:
//
//	go run ./examples/quickstart                       # run it
//	go run ./examples/quickstart -p min_accuracy=0.99  # run it with a stricter gate
//	go run ./examples/quickstart graph                 # draw the DAG (Mermaid)
//	go run ./examples/quickstart lint                  # validate only
//	go run ./examples/quickstart compile -backend local   # or argo, kubejob
//
// The pipeline (pipeline.go) asks for what it would get on a cluster: CPU
// node pools for preprocessing, a spot A100 MIG slice for each trial. The
// local executor honours the requests against the capacity given here, a
// machine with 8 CPUs, 32Gi and two 1g.10gb slices, so two trials train at
// once.
//
// On a cluster, each task runs in a pod as this program's task mode, in
// the image the cluster backends are given (image, below), which must
// hold the program at /ko-app/quickstart, where
// "ko build ./examples/quickstart" puts it: the Argo backend starts it by
// that path (argo.Options.Pod.Command).
//
// Its data sets and models go to an artifact store, the run flag
// -artifacts: locally a directory under the user's cache directory by
// default; on a cluster, whose pods share no file system, a bucket, such
// as -artifacts s3://bucket/prefix?region=eu-west-1, gs://bucket/prefix or
// azblob://container/prefix. The program links those drivers (package
// artifact/stores). Its pods get the store's credentials from their
// service account (IRSA, Workload Identity) or, when the environment
// variable QUICKSTART_ARTIFACT_SECRET names one, from that Secret
// (kubepod.Options.ArtifactSecret).
//
// The //go:debug line lets math/rand.Seed take effect in this program,
// which the search's TPE sampler (goptuna v0.9.0) needs to repeat its
// trials for a seed; see the hpo package's doc, "Seeds".
//
//go:debug randseednop=0
package main

import (
	"os"

	_ "github.com/sluice-ml/sluice/artifact/stores" // s3://, gs://, azblob:// artifact stores
	"github.com/sluice-ml/sluice/backends/argo"
	"github.com/sluice-ml/sluice/backends/kubejob"
	"github.com/sluice-ml/sluice/backends/kubepod"
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
)

// image holds this very program: the cluster backends run each Go task
// in it, in task-invocation mode.
const image = "ghcr.io/sluice-ml/quickstart:latest"

// command is where "ko build ./examples/quickstart" puts the program in
// image.
var command = []string{"/ko-app/quickstart"}

// secret names the Secret holding the artifact store's credentials.
var secret = os.Getenv("QUICKSTART_ARTIFACT_SECRET")

func main() {
	pipeline.Main(build(), local.New(&local.Options{
		Capacity: &local.Capacity{CPU: "8", Memory: "32Gi", MIG: map[string]int{"1g.10gb": 2}},
	}), argo.New(nil, &argo.Options{Pod: kubepod.Options{Image: image, Command: command, ArtifactSecret: secret}}),
		kubejob.New(nil, &kubejob.Options{Pod: kubepod.Options{Image: image, ArtifactSecret: secret}}))
}
