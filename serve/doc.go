// Package serve serves models: where and how a model is served is a
// [Target], plain data that is validated with field paths and rendered to
// KServe or to plain Kubernetes objects; a model that Go code predicts
// with is served by the program's own binary ([Predictor], "prog
// serve"); and [Deploy] is a step of the graph that registers a model,
// rolls it out only when a [Gate] finds it better than the live one, and
// rolls back when the rollout fails.
//
// # Targets
//
// A Target is a struct literal:
//
//	serve.Target{
//		Name:      "churn",
//		Level:     serve.Prod,        // namespace sluice-prod, kept off other levels' nodes
//		Platform:  serve.KServe,      // or serve.Kubernetes
//		Mode:      serve.Serverless,  // or serve.RawDeployment
//		Resources: resources.Profile{CPU: "1", Memory: "2Gi"},
//		Replicas:  serve.Replicas{Min: ptr.To(0), Max: 4}, // scale to zero
//		Autoscale: serve.Autoscale{Concurrency: 8},
//		Canary:    10, // percent of traffic for the new model
//		Note:      "retrained on November's data",
//	}
//
// It names the service level (dev, staging, prod: the namespace defaults
// to "sluice-<level>"), the platform and KServe's deployment mode, the
// runtime (a KServe runtime chosen by the model's [Format], or the
// program's own image for [GoModel]), the protocol (Open Inference
// Protocol v2 by default), what one replica needs (the same
// resources.Profile as pipeline tasks, resolved against the target's
// NodePools exactly as tasks are: GPUs, MIG slices, node pools, spot),
// replicas (initial, min, max; min 0 scales to zero), the autoscaling
// target (CPU utilisation everywhere, concurrency or requests per second
// on KServe Serverless), the rollout (maxSurge, maxUnavailable, minimum
// ready seconds), a canary percentage or A/B variants with weights, an
// optional transformer (pre- and post-processing by the program's own
// binary), placement rules and a change note. Each field's doc says its
// default; defaults are applied in one place, to a copy, before
// validation and rendering.
//
// Pods of different levels never share a node: every pod carries the
// labels sluice.dev/target and sluice.dev/level and a required pod
// anti-affinity, over all namespaces, against pods whose level label is
// another level's (Placement.ShareNodes turns it off). Replicas are spread
// over nodes with a topology spread constraint on kubernetes.io/hostname
// (maxSkew 1, ScheduleAnyway; Placement.NoSpread turns it off).
//
// # Validation errors
//
// [Target.Validate] checks a target and the [Model] it is to serve, and
// reports every problem at once, one per line, each at a field path with
// what to do about it (get them back with [FieldErrors]; tests match on
// field and type):
//
//	target.canary: Invalid 120: must be 0 to 100 (percent of traffic)
//	target.replicas.min: Invalid 5: must be at most replicas.max (3); raise max or lower min
//	target.replicas.min: Forbidden: the Kubernetes platform cannot scale to zero (…); set min to 1 or more, or use platform KServe with mode Serverless
//	target.autoscale.concurrency: Forbidden: only KServe Serverless scales on concurrency (Knative's autoscaler); use autoscale.cpuPercent, …
//	target.resources.gpuModel: Invalid "H100-80GB": … (resources.Resolve's error, under target.resources)
//	target.variants: Invalid 90: the variants' weights sum to 90; they must sum to 100
//	target.runtime.name: Invalid "kserve-tensorflow-serving": this runtime serves "tensorflow", not "sklearn"; use …
//	target.runtime.image: Required: format sluice-go is served by the program's own binary: set the program's image
//
// KServe v0.15's built-in runtimes are known: a runtime that cannot serve
// the model's format, or speak the protocol, is an error; a runtime of
// your own is passed through unchecked.
//
// # Rendering
//
// [Target.KServe] renders a serving.kserve.io/v1beta1 InferenceService, in
// Serverless or RawDeployment mode (the annotation
// serving.kserve.io/deploymentMode), with the model's format, runtime,
// storage URI and protocol, or the Go predictor's container; replicas,
// scale metric and target, canaryTrafficPercent, the rolling update of
// RawDeployment, and the transformer component. A/B variants become one
// InferenceService per variant behind a serving.kserve.io/v1alpha1
// InferenceGraph whose Splitter sends each its weight. The KServe types
// are small structs of this package ([InferenceService],
// [InferenceGraph]), written after KServe v0.15.2's CRDs rather than
// imported, since KServe's Go module pins conflicting Kubernetes
// libraries.
//
// [Target.Kubernetes] renders, per track (stable, canary or variant), an
// apps/v1 Deployment (rolling update, minReadySeconds, probes on
// /v2/health/ready and /v2/health/live for V2 runtimes), a Service, a
// HorizontalPodAutoscaler on CPU and a PodDisruptionBudget, and, for a
// canary or variants, a Gateway API HTTPRoute that splits traffic by
// weight. A canary on plain Kubernetes needs Target.Stable, the model the
// stable track keeps serving, since nothing else remembers it.
//
// In Serverless mode the predictor is a Knative Service, and Knative
// accepts some pod fields only when its config-features ConfigMap (in
// knative-serving) enables them: kubernetes.podspec-affinity and
// kubernetes.podspec-topologyspreadconstraints for the placement rules
// between levels (or set Placement.ShareNodes and Placement.NoSpread),
// kubernetes.podspec-nodeselector and kubernetes.podspec-tolerations for
// node pools, and kubernetes.podspec-volumes-emptydir where the Knative
// release does not enable it by default (the Go predictor's /tmp, shared
// memory).
//
// [Render] writes either as multi-document YAML in a fixed order. The
// renderers only compute: they validate first, never contact a cluster,
// and give the same bytes for the same target and model.
//
// The model reaches containers of our own through the environment:
// SLUICE_MODEL_URI, SLUICE_MODEL_FORMAT, SLUICE_MODEL_DIGEST and
// SLUICE_MODEL_VERSION (and PORT on plain Kubernetes); arguments can use
// "$(SLUICE_MODEL_URI)". Objects carry the annotations
// sluice.dev/model-uri, -digest and -version, and sluice.dev/change-note.
//
// # Pod Security
//
// Every pod the renderers describe passes Pod Security "restricted": it
// runs as non-root with the RuntimeDefault seccomp profile, and every
// container drops all capabilities and cannot escalate privileges. The
// program's own containers (the Go predictor, the transformer) also get a
// read-only root file system, with an emptyDir at /tmp; a KServe
// runtime's container keeps a writable one, as the runtimes need. The
// tests check every rendered pod with Pod Security admission's own
// evaluator, and the e2e tests have the real API server admit them in a
// namespace enforcing "restricted". An image that runs as root (user 0)
// fails there: use one with a non-root user.
//
// # The Go predictor
//
// A model that Go code predicts with is served by the program's own
// binary, the one that builds the pipeline and runs its tasks. A
// [Predictor] says how to load the model's bytes and predict with them;
// In and Out, plain structs, are one prediction's request and response:
//
//	type Features struct {
//		X []float64 `json:"x"`
//	}
//	type Prediction struct {
//		Y float64 `json:"y"`
//	}
//
//	var linear = serve.Predictor[Features, Prediction]{
//		Name: "linear",
//		Load: func(ctx context.Context, m serve.Model) (serve.Func[Features, Prediction], error) {
//			b, err := serve.ReadModel(ctx, m) // checked against m.Digest
//			…
//			return func(ctx context.Context, in Features) (Prediction, error) { … }, nil
//		},
//	}
//
// Load runs once, before the server reports ready; the function it
// returns closes over the loaded model and is called concurrently, one
// call per prediction. [ReadModel] and [OpenModel] read the model from
// the artifact store its URI names (file://, and s3://, gs://,
// azblob:// with package artifact/stores linked) and check the bytes
// against the model's digest: a damaged or replaced model is an error
// wrapping artifact.ErrCorrupt, a missing one [ErrNoModel]. The optional
// Pre checks and prepares an input (an error from it is the client's:
// 400) and Post turns a prediction into the response (an error is the
// server's: 500). The model function itself answers 400 by returning an
// [*InputError] naming the field; any other error, or a panic, is a 500
// whose message says so, and the server goes on serving.
//
// [NewServer] makes a [Server] of a predictor and a [Model];
// [Server.Serve] serves it on a listener until its context is canceled.
// To let the binary serve it, register it, in an init function or
// before pipeline.Main:
//
//	serve.Register(linear)
//
// and the program gets a subcommand:
//
//	prog serve -model URI [-digest sha256:…] [-version V] [-predictor NAME] [-addr 127.0.0.1:8080]
//
// which serves the model at URI with the registered predictor (-predictor
// is needed only when the program registers several) until it is
// interrupted. It prints the address it listens on, so -addr
// 127.0.0.1:0 picks a free port.
//
// In the containers the renderers make, the same commands take their
// settings from the environment, and a flag given wins: the model from
// SLUICE_MODEL_URI, SLUICE_MODEL_DIGEST, SLUICE_MODEL_VERSION and
// SLUICE_MODEL_FORMAT; the address from PORT (every interface; Knative
// sets it), else :8080; the model's name in the paths from
// SLUICE_MODEL_NAME (on KServe the target's name, as KServe names models
// after InferenceServices; elsewhere the predictor's). A target with a
// [Transformer] splits the work in two:
//
//	prog serve -prepost=false      the model only (SLUICE_PREPOST=false)
//	prog transform                 Pre, a call to the predictor, Post
//
// "prog transform" serves the same endpoints as "prog serve", calls the
// predictor at -predictor-url (default http://$predictor_host when KServe
// passes --predictor_host, else SLUICE_PREDICTOR_URL) with the v1
// protocol, and passes its errors on with their status: a 400 stays the
// client's, a 503 says the predictor is not ready, an unreachable one is
// a 502. It accepts the arguments KServe appends to a transformer's
// container (--model_name, --predictor_host, --http_port, --protocol,
// --workers). TestRenderedContainersRun starts both containers as
// rendered and calls them.
//
// The server speaks the Open Inference Protocol (v2) over REST, which
// KServe and Triton speak, and KServe's v1 protocol:
//
//	GET  /v2/health/live                  200 while the process serves
//	GET  /v2/health/ready                 200 once the model is loaded, 503 before and while draining
//	GET  /v2                              the server's name, version and extensions
//	GET  /v2/models/{name}[/versions/{v}] the model's metadata: versions, platform, tensors
//	GET  /v2/models/{name}/ready          the model's readiness
//	POST /v2/models/{name}/infer          inference on tensors
//	POST /v1/models/{name}:predict        {"instances": [In, …]} → {"predictions": [Out, …]}
//	GET  /v1/models/{name}                {"name": …, "ready": …}
//	GET  /metrics                         Prometheus metrics
//	GET  /openapi.json                    the OpenAPI 3 document
//	GET  /                                the try-it page (see "Trying a model")
//
// The v1 endpoint is the typed one: each instance is an In as JSON,
// decoded strictly — a field In does not have, a field without
// omitempty (or omitzero) that is missing, or a value of the wrong type
// is a 400 that names it ("instances[1].rooms: want an integer (int),
// got JSON string").
//
// On the v2 endpoint each JSON field of In is an input tensor of the
// same name, and each field of Out an output tensor: a bool is BOOL, an
// integer INT8…INT64 or UINT8…UINT64, a float FP32 or FP64, a string
// BYTES; a slice of them has the shape [-1], an array [N], a slice of
// slices [-1, -1]; any other value (a nested struct, a map, a time) is a
// BYTES tensor whose elements are its JSON text. A scalar's shape is [1].
// A request may put a batch first: [B] for scalars, [B, n] for vectors;
// every input must then have the same B, and the server predicts each
// instance and answers tensors with B first. An In or Out that is not a
// struct is one tensor, "input" or "output". Input values are checked
// against the fields' types (an INT64 input takes 3 but not 3.5, a
// UINT8 not 300) and the request's datatype must be of the field's kind
// (numbers, BOOL or BYTES). Errors of either protocol are
// {"error": "…"}: 400 for the input, naming the tensor or field and how
// to fix it, 404 for another model or version, 500 for the model, 503
// before the model is loaded.
//
// The metrics are in a registry of the server's own, never the global
// one, and carry the label model: sluice_serve_requests_total by
// endpoint (the route) and code, sluice_serve_request_duration_seconds
// (a histogram) by endpoint, sluice_serve_errors_total by endpoint and
// reason (input, model, panic, not_ready, not_found),
// sluice_serve_predictions_total, sluice_serve_requests_in_flight,
// sluice_serve_ready, sluice_serve_model_info with the model's version,
// digest and URI, and the Go runtime's and the process's metrics.
//
// When Serve's context is canceled ("prog serve" cancels it on SIGTERM
// or SIGINT) the server drains: readiness turns 503 first, requests are
// still served for Options.DrainDelay so that load balancers can notice,
// then the listener closes and the requests in flight get up to
// Options.ShutdownTimeout (25 s by default) to finish. A model that
// cannot be loaded makes Serve return the error (and "prog serve" exit
// with status 1), so that a pod restarts rather than stays unready.
//
// The server adds little to the predictor: BenchmarkServe runs it and a
// bare net/http handler doing the same JSON decode, prediction and
// encode, over 127.0.0.1 from parallel clients on the same machine. On
// a two-core machine busy with other builds (load 7), five runs each of
// 30000 requests (go test -run '^$' -bench BenchmarkServe -benchtime
// 30000x -count 5 ./serve/) gave a median of 22400 requests/s for the
// server against 24200 for the bare handler (0.93×), with a p99 of
// 2.7 ms against 3.1 ms.
//
// # Trying a model
//
// GET / is a page for a person to try the model in a browser: a form
// with one labelled control per field of In (a number box for numbers,
// a check box for a bool, a text box for a string, comma-separated
// numbers for a vector, JSON for anything else), filled with the
// predictor's Example, and a Predict button that posts one instance to
// the v1 endpoint and shows the prediction as JSON, or the error: the
// page's own (a number that is not one, JSON that does not parse),
// for which it marks the field invalid and moves the focus to it, or the
// server's message. Both are announced to screen readers. The page
// is generated from In by reflection, its script and style sheet are
// embedded in the binary and it loads nothing from elsewhere, so it
// works offline and in a cluster behind a port-forward:
//
//	prog serve -model file:///models/linear.json
//	serving model linear from file:///models/linear.json on http://127.0.0.1:8080/ (try it in a browser; interrupt to stop)
//
// GET /openapi.json describes the same endpoints for programs: the
// schemas of In and Out (JSON names; required are the fields without
// omitempty; nested structs as components) and the Example as the
// request's example, so that a client can be generated from it.
//
// # Deploying: the deploy step
//
// Deploy adds a step that rolls a candidate model out to a target, only
// when it is better than the live one:
//
//	eval := pipeline.Add(p, evaluate, …) // returns serve.Candidate{Model, Metrics}
//	serve.Deploy(p, target, eval.Output(), &serve.DeployOptions{
//		Gate: serve.Gate{Metric: "auc", Better: serve.Higher, MinImprovement: 0.005, Threshold: ptr.To(0.8)},
//	})
//	serve.Promote(p, prodTarget, serve.Staging, nil) // the same version, one level up
//
// The step registers the candidate in the model registry, asks the gate
// (its Decision, with both values, is the step's output and a line of
// the run summary), and when the gate lets it through renders the target
// for the new version and rolls it out with an [Applier]: server-side
// apply with field manager "sluice", a wait through watches (a
// Deployment as kubectl rollout status judges it, its current pods for
// ImagePullBackOff, CrashLoopBackOff and the like, which fail at once;
// an InferenceService by its Ready condition) bounded by
// DeployOptions.Timeout, and on failure the objects of the version live
// before restored — a failed first rollout's objects removed — and the
// step failed with the reason ("rollout failed: Unschedulable: pod …;
// rolled back to the previous version"). Each rollout that succeeds is a
// [Release], with the objects it applied, which the next failed rollout
// restores. A version that is live already changes nothing.
//
// In a pod, the step deploys to the cluster it runs in, through its
// in-cluster identity (or KUBECONFIG, when set); its pod runs as a
// ServiceAccount of its own with exactly the rights the target's kinds
// need in the target's namespace (task.Access, emitted by compile and
// applied by the kubejob and Argo backends when a run starts). A run
// on the local backend serves the model in its own process instead, on
// 127.0.0.1, with the registered Go predictor (DeployOptions.Predictor;
// [LocalEndpoint], [StopLocal]) — or deploys to the cluster of
// DeployOptions.Kubeconfig.
//
// # The model registry
//
// [NewRegistry] keeps models in the run's artifact store (its records,
// so it works locally and in clusters with no further service): every
// registered version numbered per model name, with its URI, digest,
// format, metrics and source run; every target's releases per level.
// Numbers are taken with conditional creates, so concurrent runs never
// share one. "prog models" lists them:
//
//	churn: 3 versions
//	  version  created           digest        metrics               source       live
//	  v3       2026-12-02 10:00  5d41402abc4b  auc=0.91 logloss=0.3  run-7/train  staging/churn
//	  …
//
// [Registry] is the interface another registry (MLflow's) could stand
// behind; DeployOptions.Registry puts one behind the deploy step. When the
// registry cannot be reached, the step fails with its error and leaves
// nothing half-deployed: a model it cannot register is not rolled out,
// and a rollout whose release it cannot record is undone, so the registry
// and what serves agree.
//
// # Tested how
//
// The test bed runs KServe's own controller (v0.15.2) in RawDeployment
// mode: the deploy step's rollouts to it, and their rollback, are tested
// there. Serverless mode needs Knative, which the test bed lacks: its
// InferenceServices are checked by the real API server with KServe's full
// CRDs, not rolled out. On the local backend, a model in a KServe
// runtime's format gets a stand-in that loads it and answers predictions
// 501.
package serve
