package pipeline

import (
	"github.com/sluice-ml/sluice/internal/field"
)

// FieldError is one validation problem, located by a path such as
// "pipeline.tasks[train].resources.mig" and classified by Type (Required,
// Invalid, Duplicate, NotSupported, NotFound, Forbidden, TooLong,
// TooMany). Match problems by Type and Field, not by message text.
type FieldError = field.Error

// ErrorType classifies a [FieldError].
type ErrorType = field.Type

// FieldErrors returns every *FieldError in err, in the order they were
// found. It sees through wrapping (fmt.Errorf with %w) and aggregation.
func FieldErrors(err error) []*FieldError { return field.Errors(err) }

// Validate reports every problem in p at once: a nil error, or one that
// holds a *FieldError per problem (see [FieldErrors]; errors.As finds the
// first) and prints one problem per line. Nothing is submitted or run.
func (p *Pipeline) Validate() error {
	_, err := p.build(nil)
	return err
}

// ValidateParams is [Pipeline.Validate] for a run with the given parameter
// overrides (name to text, as given with -p name=value): it also reports
// overrides that name no parameter or do not parse as its type, at
// "pipeline.params[name]".
func (p *Pipeline) ValidateParams(overrides map[string]string) error {
	_, err := p.build(overrides)
	return err
}
