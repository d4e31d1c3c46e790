// Branin is a hyperparameter search without machine learning: it looks
// for the minimum of the Branin function, a standard test of optimizers,
// whose three global minima are 0.397887, at (-π, 12.275), (π, 2.275) and
// (9.42478, 2.475). It shows hpo.Search end to end in about a second:
//
//	go run ./examples/branin          # run the search, print the best point and the trials
//	go run ./examples/branin graph    # draw the DAG (Mermaid): 15 rounds of suggest → trials
//	go run ./examples/branin lint     # validate only
//
// The search (pipeline.go) runs 60 trials, four at a time, with CMA-ES
// from goptuna; a trial is an ordinary Go task, here one evaluation of
// the function. The last step prints the best trial and every trial;
// pipeline.Main then prints the run's summary. The search is seeded, so
// every run prints the same trials.
package main

import (
	"github.com/sluice-ml/sluice/backends/local"
	"github.com/sluice-ml/sluice/pipeline"
)

func main() {
	p, _ := build()
	pipeline.Main(p, local.New(nil))
}
