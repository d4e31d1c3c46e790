package pipeline

import (
	"github.com/sluice-ml/sluice/internal/field"
)

// FieldError is one validation problem, located by a path such as
// "pipeline.tasks[train].resources.mig" and classified by Type, one of the
// ErrorType constants ([ErrorTypeRequired], [ErrorTypeInvalid], …). Match
// problems by Type and Field, not by message text.
type FieldError = field.Error

// ErrorType classifies a [FieldError]. Compare a FieldError's Type with
// the ErrorType constants below; never match on message text.
type ErrorType = field.Type

// The types of [FieldError], one per kind of problem.
const (
	// ErrorTypeRequired means a value is missing.
	ErrorTypeRequired ErrorType = field.TypeRequired
	// ErrorTypeInvalid means a value is malformed or inconsistent with
	// another.
	ErrorTypeInvalid ErrorType = field.TypeInvalid
	// ErrorTypeDuplicate means a value must be unique and is not, such as
	// a task name.
	ErrorTypeDuplicate ErrorType = field.TypeDuplicate
	// ErrorTypeNotSupported means a value is not one of the allowed set;
	// the detail lists the set.
	ErrorTypeNotSupported ErrorType = field.TypeNotSupported
	// ErrorTypeNotFound means a reference names something that does not
	// exist, such as an undeclared node pool or an unknown input field.
	ErrorTypeNotFound ErrorType = field.TypeNotFound
	// ErrorTypeForbidden means a value is not allowed in this combination.
	ErrorTypeForbidden ErrorType = field.TypeForbidden
	// ErrorTypeTooLong means a value is longer than allowed.
	ErrorTypeTooLong ErrorType = field.TypeTooLong
	// ErrorTypeTooMany means there are more values than allowed.
	ErrorTypeTooMany ErrorType = field.TypeTooMany
)

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
