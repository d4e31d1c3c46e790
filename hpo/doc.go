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
// # Conditional parameters
//
// A field that matters only for some values of a Choice is conditional
// ([Dim.When]):
//
//	"Optimizer": hpo.Choice("sgd", "adam"),
//	"Momentum":  hpo.Float(0.5, 0.99).When("Optimizer", "sgd"),
//	"Beta2":     hpo.LogFloat(0.9, 0.9999).When("Optimizer", "adam"),
//
// In a trial where the condition does not hold, the field holds its
// type's zero value (also in the CSV and the table), and the samplers do
// not learn from it: TPE and random search leave it out of that trial,
// so TPE models it from the trials that searched it; CMA-ES and Sobol,
// whose search space is fixed, draw it and drop the draw; a grid
// enumerates the active fields' values only, the conditional fields
// varying fastest. Its plot panel shows the trials that searched it.
// The parent must be an unconditional Choice of the same space, and the
// values among its choices (Validate says so at space.FIELD.when).
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
// The same Seed, space and options give the same trials on every backend
// and on every re-run: the suggest steps are deterministic functions of
// the earlier results. With TPE this needs math/rand's global Seed to
// take effect (below). Random and TPE seed each round's sampler from the
// seed and the round and are told the earlier trials; CMA-ES and Sobol
// keep state across proposals, which each suggest step rebuilds by
// asking the sampler again for every earlier trial (it proposes the same
// values) and telling it the results round by round. Samplers see every
// searched field as a continuous range: integers, steps and choices are
// indices rounded from it (so TPE and CMA-ES treat a Choice's values as
// ordered). This keeps seeded runs identical: goptuna v0.9.0's own
// integer and categorical distributions never draw the top value in
// random search and draw categoricals from math/rand's process-wide
// source.
//
// goptuna v0.9.0's TPE picks the components of its Parzen estimators
// from that process-wide source, which Go 1.24 and later seed at random
// and do not let a program seed: math/rand.Seed is a no-op unless
// GODEBUG has randseednop=0. So for TPE to repeat for a seed, add
//
//	//go:debug randseednop=0
//
// to your main package, above its package clause (for a package's tests,
// to one of its _test.go files; or run with GODEBUG=randseednop=0). A TPE
// suggest step then finds out (once per process) that seeding takes
// effect and, for each proposal, seeds the source from the seed, the
// round and the proposal, under a lock that other TPE searches in the
// process share, and reseeds it at random afterwards. On a cluster each
// suggest step runs in a pod of its own; in one process, other code that
// draws from math/rand's global functions at the same moment can still
// take draws from a TPE proposal and change it. Without the setting, TPE
// works as before but does not repeat for a seed. A TPE search still
// proposes every round once: a suggest step's proposals are its output,
// which the trials and later rounds read, and a resumed run does not run
// a finished suggest step again (below); Result.Trials records them.
//
// # Resuming a search
//
// When the trial task caches (task.Cache), the search caches its own
// steps too: a run that is started again with the same cache (the local
// backend's CacheDir, a cluster backend's cache) finds its finished
// suggest steps and trials there and runs only the rounds that had not
// finished. The suggest and result steps' cache version is a fingerprint
// of the search's definition — the space, the options, the seed, the
// hyperparameter and output types — besides their inputs, so a changed
// seed, sampler or range misses and searches anew.
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
// # Early stopping
//
// Options.EarlyStopping runs each trial in rungs of growing budget — the
// field of the hyperparameter struct it names (Budget: epochs, steps, a
// fraction of the data), which the search sets and the space leaves out
// — and stops the unpromising trials early:
//
//	type Params struct {
//		LR     float64
//		Epochs int // the budget
//	}
//	hpo.Search(p, hpo.Space[Params]{"LR": hpo.LogFloat(1e-4, 1)}, train, bind, objective,
//		&hpo.Options{MaxTrials: 27, ParallelTrials: 9,
//			EarlyStopping: &hpo.EarlyStopping{Budget: "Epochs", Min: 1, Max: 27}})
//
// The rungs' budgets are Min, Min·Eta, Min·Eta², … up to Max (Eta, the
// reduction factor, is 3 by default), rounded for an integer field. A
// trial is one configuration (MaxTrials counts them); each of its runs,
// one per rung it reaches, is an instance of some round's fan-out, so
// the graph is still two steps per round, however many trials and rungs.
// Every round runs at most ParallelTrials runs: each suggest step first
// promotes trials to their next rung, from the highest rung down, then
// starts new trials from the sampler. The rules:
//
//   - ASHA (the default): successive halving in rounds. Rung k promotes
//     the best of its complete results that are in its top ⌊n/Eta⌋ (n
//     results so far) and not yet promoted — ⌊n/Eta⌋ trials in all, so
//     the number of runs depends only on how many results each rung has,
//     not on their values, and the rounds are known when the graph is
//     built.
//   - Hyperband: brackets s = 0…sMax (sMax+1 rungs) of successive
//     halving, bracket s starting its trials at rung s. MaxTrials is
//     split in Hyperband's proportions, Eta^h/(h+1) for a bracket that
//     halves h times (largest remainders, ties to the earlier bracket):
//     11 trials over budgets 1, 3, 9 are brackets of 6, 3 and 2. Trials
//     are numbered bracket by bracket; each bracket promotes within
//     itself.
//   - Median: a trial at rung k goes on to k+1 while its objective is no
//     worse than the median of the other trials' results at rung k so
//     far; with fewer than three of those it goes on.
//
// A trial stopped below the last rung is Pruned — at the end of the
// search for successive halving, whose later rounds may still promote
// it, at once for the median rule — and Trial.Error says why. A run that
// fails (its task, or its objective) fails the trial, which counts
// against MaxFailedTrials as without early stopping. Trial.Budget is the
// budget of a trial's last run, Trial.Params holds it in the budget
// field, and Trial.Rungs lists its runs (budget, objective, state,
// duration). Objectives at different budgets do not compare, so the best
// trial is the best of those that got furthest (the largest budget any
// complete or pruned trial reached: Max, unless every run there failed),
// and the Goal counts only a complete trial at Max. The sampler is told
// each trial's objective at its first run, which later rounds do not
// change: a suggest step rebuilds the same study from it in every
// round, as CMA-ES's and Sobol's replay needs, and under ASHA and the
// median rule every trial's first run has the same budget.
//
// The default Options.Rounds is the fewest that finish the schedule at
// ParallelTrials runs per round, found by simulating it with every run
// complete (and, for the median rule, no trial stopped); fewer rounds is
// a validation error that names that number, more run nothing. 9 trials,
// Eta 3, Min 1, Max 9 at 9 runs per round take 3 rounds: 9 runs at
// budget 1, the best 3 at 3, the best of those at 9.
//
// A promoted trial continues from its previous run: [Previous] returns,
// inside the trial task, the trial's output at its previous rung and
// that rung's budget. A trial that writes a checkpoint (an artifact, see
// package artifact) names it in its output and, when continued, loads it
// and trains budget − previous budget more epochs; one that does not
// just trains from scratch at the new budget. A suggest step keeps only
// each trial's last output (and each run's numbers in Rungs), so its
// output does not grow with the rungs. The runs' cache keys differ, as
// their inputs do (the budget field, the previous output).
//
// Every trial's Duration is the sum of its runs' durations, timed around
// the trial task on the executor's clock (task.Now): the virtual clock in
// pipelinetest, so that tests see exact durations, the wall clock
// elsewhere. A failed run's duration is lost with its output.
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
// range or larger than the grid, CMA-ES over fewer than two fields, a
// container trial with MaxFailedTrials, and early stopping's problems (at
// pipeline.tasks[NAME].earlyStopping.budget, .min, .max, .eta, .rule:
// no budget field, one of another kind or one the space also names,
// budgets that are not 0 < Min < Max or give one rung, or integer ones
// that round alike, Eta below 2, rounds too few for the schedule) are
// all reported this way. Early stopping works with every sampler; with
// Grid, it halves the grid's points in order. Passing a nil pipeline,
// bind function or objective panics, as pipeline.ForEach does for a nil
// bind function.
//
// # Testing a search
//
// pipelinetest.Stub of the trial task replaces its implementation inside
// the search's trials, so a synthetic objective tests the wiring on the
// virtual clock; pipelinetest.Output of the search step is the Result.
//
// # Looking at results
//
// After a run, the run command prints each search's trials below the
// run's summary (pipeline.Step.Summarize): a headline (how many trials
// ended how, the best one), then a fixed-width table, best first — the
// complete trials by objective, then the pruned and failed ones by id —
// of at most 20 rows, then how to see the rest:
//
//	search:
//	  40 trials: 38 complete, 2 failed; best trial 17, objective 0.0213 (minimize)
//	  id  round  state     objective  lr         layers  act   error
//	  17  4      complete  0.0213     0.0031     3       relu
//	  …
//	  … 20 more (tune hpo -run tune-7 -step search)
//
// When the run has an artifact store (the local backend always has one;
// a cluster run needs pipeline.Options.Artifacts or -artifacts), the
// result step also stores the search's report as artifacts of its step,
// recorded in [Result].Files: trials.csv ([Result.WriteCSV]: one row per
// trial, one column per field of P, nested fields dotted), trials.json
// (the Result), and plot.svg and plot.png ([Result.Plot], drawn with
// gonum.org/v1/plot: the objective per trial with the best so far, then
// the objective against each searched field, on a log axis for LogFloat
// and LogInt, at labelled positions for a Choice). Without a store it
// stores nothing and says nothing. Every pipeline program that links
// package hpo has the command
//
//	prog hpo -run ID [-step NAME] [-artifacts URL] [-o DIR]
//
// which reads each search's trials.json from the run's store, prints its
// whole table, and with -o copies its plots, CSV and JSON to DIR/STEP/.
// The same methods work on a Result a later step reads, or on one decoded
// from trials.json as Result[json.RawMessage, json.RawMessage].
//
// # Benchmarks
//
// go test ./hpo -run '^$' -bench . -benchtime 1x runs each sampler and
// ASHA against random search with the same budget, through Search on
// pipelinetest's virtual clock, over 20 seeds, and logs the tables. On
// 2026-12-02 (goptuna v0.9.0): CMA-ES beat random search on all 20 seeds
// on a 5-D sphere (median best 0.108 against 7.34) and a 5-D Rosenbrock
// (102 against 6,570), 100 trials, rounds of four. TPE on Branin with 60
// trials had a median regret of 0.40 against random search's 0.68 and won
// 10 of 20 seeds (sequential rounds); its options did not change that
// beyond the seeds' spread (TestTPEOptionsSweep, HPO_TPE_SWEEP=1): it
// models each field on its own and Branin has three minima. It reached a
// median regret of 0.07 and won 80% of the seeds at 150 trials. ASHA (1,
// 3, 9, 27 epochs) reached the best objective of full-budget random
// search on 18–20 of 20 seeds with 32% of its epochs where the learning
// curves keep their order, and 1–10 of 20 where fast starters finish
// worse: successive halving bets that early ranks hold; start its first
// rung later (Min) when they do not.
//
// # Container trials
//
// A trial may be a container task (task.Container): a training script in
// its own image. The round's fan-out runs the container as it is, one
// instance per proposal, its input (bind's) filling the container's
// {{.Field}} placeholders, and the next suggest step reads the
// instances' outputs in the order of the round's proposals, the order a
// fan-out keeps. The same search with a container trial and with a Go
// task computing the same objective proposes the same trials (internal
// tests check it bit for bit over four rounds of CMA-ES, and on a real
// control plane with kubejob and Argo). Three things differ from a Go
// trial, because a container's instance reports nothing but its outputs:
// MaxFailedTrials must be 0 (an instance that failed leaves no output,
// and the outputs of the others would no longer say which trials they
// belong to; a failure fails the search, after the task's retries); a
// trial's Duration is 0, not measured; and under early stopping a
// promoted trial runs again from the start with its larger budget
// (Previous is for Go trials).
//
// # Not built yet
//
// Failure tolerance for container trials (above). Conditions on a
// conditional field, or on a field that is not a Choice.
package hpo
