// Package hpo adds hyperparameter search to a pipeline as ordinary steps:
// typed search spaces over your own hyperparameter struct, goptuna's
// samplers (github.com/c-bata/goptuna v0.9.0) and a grid, budgets in
// Katib's vocabulary, and a typed result that later steps read. No
// search service runs next to the pipeline: the search is part of the
// graph, so it runs the same on the local backend, on Kubernetes Jobs
// and on Argo Workflows, and pipelinetest tests it in milliseconds.
//
// # A search
//
//	type Params struct {
//		LR     float64
//		Layers int
//		Act    string
//		Epochs int
//	}
//
//	space := hpo.Space[Params]{
//		"LR":     hpo.LogFloat(1e-4, 1),
//		"Layers": hpo.Int(1, 4),
//		"Act":    hpo.Choice("relu", "tanh"),
//		"Epochs": hpo.Fixed(10),
//	}
//	search := hpo.Search(p, space, train,
//		func(hp pipeline.Ref[Params]) TrainIn { return TrainIn{Data: data.Output(), HP: hp} },
//		func(out TrainOut) float64 { return out.ValLoss },
//		&hpo.Options{Sampler: hpo.TPE, Seed: 7, MaxTrials: 40, ParallelTrials: 4, MaxFailedTrials: 2})
//	pipeline.Add(p, final, FinalIn{HP: pipeline.Field[Params](search.Output(), "BestParams")})
//
// Every exported field of the struct is searched or fixed: Float,
// LogFloat and FloatStep for float fields; Int, LogInt and IntStep for
// integer fields; Choice of any comparable values; Fixed. The trial is
// an ordinary Go task (task.New) with its own resources and retries; the
// bind function wires its input from the proposed hyperparameters and any
// other Ref, and the objective reads the number to optimize from its
// typed output: nothing is scraped from logs.
//
// # The graph
//
// A search of R rounds adds 2R+1 steps. Round r is a suggest step,
// NAME-suggest-r, and a fan-out of the trials it proposes, NAME-trials-r
// (pipeline.ForEach, at most ParallelTrials at once); the step NAME
// gathers the [Result]. Each suggest step is a Go task that builds the
// sampler's study anew from the earlier rounds' results (goptuna's
// in-memory storage, ask and tell) and proposes the round's trials, so
// an adaptive sampler adapts between rounds on every backend, and the
// manifest grows with the rounds, not with the trials: 10 and 1000
// trials in 5 rounds compile to the same Argo Workflow. MaxTrials are
// spread evenly over Options.Rounds, by default rounds as wide as
// ParallelTrials. A suggest step's output holds every trial so far, with
// its output: on a cluster backend, a search whose trials do not fit the
// backend's in-band limit needs the run's artifact store, which carries
// larger outputs (see package artifact).
//
// # Seeds
//
// With every sampler but TPE, the same Seed, space and options give the
// same trials on every backend and on every re-run: the suggest steps are
// deterministic functions of the earlier results. Random and TPE seed
// each round's sampler from the seed and the round and are told the
// earlier trials; CMA-ES and Sobol
// keep state across proposals, which each suggest step rebuilds by
// asking the sampler again for every earlier trial (it proposes the same
// values) and telling it the results round by round. Samplers see every
// searched field as a continuous range: integers, steps and choices are
// indices rounded from it (so TPE and CMA-ES treat a Choice's values as
// ordered). This keeps seeded runs identical: goptuna v0.9.0's own
// integer and categorical distributions never draw the top value in
// random search and draw categoricals from math/rand's process-wide
// source, which cannot be seeded since Go 1.24. For that reason TPE does
// not repeat for a seed: goptuna v0.9.0's TPE picks the components of
// its Parzen estimators from that source. A TPE search still proposes
// every round once: a suggest step's proposals are its output, which the
// trials and later rounds read, and a resumed run does not run a
// finished suggest step again; Result.Trials records them.
//
// # Budgets, failures and the goal
//
// MaxTrials trials run in all, at most ParallelTrials at once. A trial
// fails when its task fails after its retries, or when the objective is
// NaN or infinite (or panics) — an output that itself holds a NaN cannot
// be encoded as JSON, so its task fails; up to MaxFailedTrials may fail with the
// search going on — the fan-out tolerates that many failures
// (pipeline.Fan.Tolerate) and each suggest step counts them — and one
// more fails the search, naming the failed trials. If every trial fails,
// so does the result step. With a Goal, a suggest step that sees a
// finished trial reach it proposes no trials, nor do the later rounds,
// whose fan-outs then run no instances; Result.Stopped says which trial
// reached the goal and which rounds ran nothing. (A skipped step would
// skip the result step too: a step after a skipped one is skipped.)
//
// # Validation
//
// Builders never fail: the space and options are checked by the
// pipeline's Validate, with its other problems, at paths under the
// result step (pipeline.Step.Check):
//
//	pipeline.tasks[search].space.LR: Invalid "LogFloat(0, 1)": a log scale needs lo > 0; …
//	pipeline.tasks[search].space.Act: Required: every field of Params is searched or fixed; …
//	pipeline.tasks[search].parallelTrials: Invalid 8: is more than maxTrials (4): …
//
// A missing, unknown or doubly named field, a range of the wrong kind for
// the field's type, lo > hi, an empty range (lo == hi: use Fixed), a
// non-positive log bound, a step that is not positive or wider than the
// range, a bound the field's type cannot hold, an empty or duplicated
// Choice, budgets that contradict each other, a grid over a continuous
// range or larger than the grid, CMA-ES over fewer than two fields, and
// a container trial are all reported this way. Passing a nil pipeline,
// bind function or objective panics, as pipeline.ForEach does for a nil
// bind function.
//
// # Testing a search
//
// pipelinetest.Stub of the trial task replaces its implementation inside
// the search's trials, so a synthetic objective tests the wiring on the
// virtual clock; pipelinetest.Output of the search step is the Result.
//
// # Not built yet
//
// Early stopping (successive halving, ASHA, Hyperband, the median rule;
// State Pruned is reserved for it), container trials, conditional
// parameters, trial artifacts in the Result, plots of a search, and a
// "prog hpo" command.
package hpo
