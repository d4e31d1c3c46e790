package main

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// The batch-scoring pipeline scores one day's partition of events with the
// current model and watches the scores for drift:
//
//	extract ── score (GPU, spot) ── drift ── alert (container; only if drift > max_drift)
//
// extract writes the partition's feature rows to the artifact store; score
// reads them on a GPU node, writes one score per row back as an artifact
// and returns the score histogram in-band; drift compares that histogram
// with the one the model was validated on (the population stability
// index); alert is a container task, a shell script in a stock image, that
// runs only when the drift is above the max_drift parameter.

// Names of the steps, as they appear in run status and on the command line.
const (
	stepExtract = "extract"
	stepScore   = "score"
	stepDrift   = "drift"
	stepAlert   = "alert"
)

// Node pools of the target cluster (Amazon EKS managed node groups). The
// local executor ignores placement and schedules against its own capacity
// (main.go); compile for a cluster backend to see the node selectors,
// tolerations and requests they turn into.
var (
	// cpuPool is m7i.2xlarge nodes: 8 vCPU, 32 GiB.
	cpuPool = resources.NodePool{
		Name:     "cpu",
		Provider: resources.ProviderEKS,
		Labels:   map[string]string{"eks.amazonaws.com/nodegroup": "cpu"},
		Node:     resources.Capacity{CPU: "8", Memory: "32Gi"},
	}
	// gpuPool is g6.2xlarge nodes (8 vCPU, 32 GiB, one NVIDIA L4) with
	// Spot capacity, running the NVIDIA device plugin (the EKS default),
	// tainted so that only GPU work lands there.
	gpuPool = resources.NodePool{
		Name:     "gpu-l4",
		Provider: resources.ProviderEKS,
		Labels:   map[string]string{"eks.amazonaws.com/nodegroup": "gpu-l4"},
		Taints:   []corev1.Taint{{Key: "nvidia.com/gpu", Value: "present", Effect: "NoSchedule"}},
		Node:     resources.Capacity{CPU: "8", Memory: "32Gi", GPUModel: "L4", GPUs: 1},
		Spot:     true,
	}
)

// Tasks. Each is an immutable definition; every With method returns a copy.
var (
	extractTask = task.New(stepExtract, extract)

	// scoreTask runs on one whole L4 of the GPU pool's Spot capacity. A
	// Spot interruption consumes the Infra budget (3 retries), a bug the
	// App budget (none: a bug does not go away by retrying), and the last
	// infra retry falls back to on-demand nodes so that the night's run
	// finishes even when Spot capacity does not come back.
	scoreTask = task.New(stepScore, score).
			WithResources(resources.Profile{
			CPU:         "4",
			Memory:      "16Gi",
			GPUModel:    "L4",
			GPUs:        1,
			NodePool:    gpuPool.Name,
			Preemptible: true,
		}).
		WithRetry(task.Retry{
			Infra:            3,
			OnDemandFallback: true,
			Backoff:          task.Backoff{Initial: time.Minute, Factor: 2, Max: 10 * time.Minute},
		}).
		WithTimeout(2 * time.Hour)

	driftTask = task.New(stepDrift, drift).
			WithResources(resources.Profile{CPU: "250m", Memory: "256Mi", NodePool: cpuPool.Name})

	// alertTask is a container task: a shell script in a stock image, its
	// input fields rendered into its environment, its output read from the
	// file it writes. Locally it runs as a host process (sh must be on
	// the PATH); on a cluster in its own pod. busybox runs as root unless
	// told otherwise, which Pod Security "restricted" (the default) refuses,
	// so it runs as nobody (65534).
	alertTask = task.Container[AlertIn, AlertOut](stepAlert, "busybox:1.37").
			WithCommand("sh", "-c", alertScript).
			WithEnv("PARTITION", "{{.Partition}}").
			WithEnv("PSI", "{{.PSI}}").
			WithEnv("MAX_DRIFT", "{{.MaxDrift}}").
			WithSecurity(task.Security{RunAsUser: ptr(int64(65534)), RunAsGroup: ptr(int64(65534))}).
			WithResources(resources.Profile{CPU: "100m", Memory: "64Mi", NodePool: cpuPool.Name})
)

// alertScript is where a real pipeline would page someone or post to a
// chat channel; this one prints the alert and records it as the step's
// output: {{outputs.message}} is the file the output field Message is
// read from, on every backend (locally a host path, in a pod the
// container's).
const alertScript = `msg="score drift on partition $PARTITION: PSI $PSI is above $MAX_DRIFT"
echo "$msg" >&2
printf '%s\n' "$msg" > {{outputs.message}}`

// build defines the batch-scoring pipeline.
func build() *pipeline.Pipeline {
	p := pipeline.New("batchscore", &pipeline.Options{
		Defaults: pipeline.Defaults{
			Resources: resources.Profile{CPU: "1", Memory: "2Gi", NodePool: cpuPool.Name},
			Retry:     task.Retry{Infra: 2},
			Timeout:   30 * time.Minute,
		},
		NodePools: []resources.NodePool{cpuPool, gpuPool},
	})
	// partition is the day to score, YYYY-MM-DD; empty means the day before
	// the run's scheduled time (its start, unless a scheduler or
	// run -scheduled set one), so that a nightly schedule scores
	// yesterday and a backfill the day before the date it is run for.
	partition := pipeline.NewParam(p, "partition", "")
	rows := pipeline.NewParam(p, "rows", 5000)
	// shift moves the synthetic features, to try the drift alert:
	// -p shift=1.5.
	shift := pipeline.NewParam(p, "shift", 0.0)
	maxDrift := pipeline.NewParam(p, "max_drift", 0.2)

	events := pipeline.Add(p, extractTask, ExtractIn{Partition: partition.Ref(), Scheduled: pipeline.RunScheduled(), Rows: rows.Ref(), Shift: shift.Ref()})
	scores := pipeline.Add(p, scoreTask, ScoreIn{Features: pipeline.Field[artifact.Dataset](events.Output(), "Features")})
	psi := pipeline.Add(p, driftTask, DriftIn{Histogram: pipeline.Field[[]float64](scores.Output(), "Histogram")})
	pipeline.Add(p, alertTask, AlertIn{
		Partition: pipeline.Field[string](events.Output(), "Partition"),
		PSI:       pipeline.Field[float64](psi.Output(), "PSI"),
		MaxDrift:  maxDrift.Ref(),
	}).When(pipeline.Compare(pipeline.Field[float64](psi.Output(), "PSI"), ">", maxDrift.Ref()))
	return p
}

func ptr[T any](v T) *T { return &v }
