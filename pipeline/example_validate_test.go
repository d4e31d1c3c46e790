package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/resources"
	"github.com/sluice-ml/sluice/task"
)

// Inspecting validation problems in code: each FieldError has a path
// (Field) and a type to compare with the ErrorType constants. Match on
// those, never on message text, which may change.
func ExampleFieldErrors() {
	type FitIn struct{ Rows int }
	type FitOut struct{ Loss float64 }
	fit := task.New("fit", func(ctx context.Context, in FitIn) (FitOut, error) {
		return FitOut{}, nil
	})

	p := pipeline.New("", nil) // no name
	pipeline.Add(p, fit.WithResources(resources.Profile{CPU: "four", Memory: "8Gi"}), FitIn{})
	pipeline.Add(p, fit, FitIn{}) // a second step named "fit"

	err := p.Validate()
	const fitResources = "pipeline.tasks[fit].resources."
	for _, fe := range pipeline.FieldErrors(err) {
		switch {
		case fe.Type == pipeline.ErrorTypeRequired:
			fmt.Println("missing:", fe.Field)
		case fe.Type == pipeline.ErrorTypeInvalid && strings.HasPrefix(fe.Field, fitResources):
			fmt.Printf("fit asks for a bad %s: %q\n", strings.TrimPrefix(fe.Field, fitResources), fe.BadValue)
		case fe.Type == pipeline.ErrorTypeDuplicate:
			fmt.Println("duplicate:", fe.Field, fe.BadValue)
		default:
			fmt.Println("other:", fe.Field, fe.Type)
		}
	}

	// errors.As reaches the first problem.
	var first *pipeline.FieldError
	if errors.As(err, &first) {
		fmt.Println("first:", first.Field, first.Type)
	}
	// Output:
	// missing: pipeline.name
	// fit asks for a bad cpu: "four"
	// duplicate: pipeline.tasks[fit].name fit
	// first: pipeline.name Required
}
