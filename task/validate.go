package task

import (
	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/internal/placeholder"
)

// Validate reports every problem in s at once, with paths relative to the
// task ("retry.app", "args[0]"). Resources are not checked here: a task's
// profile is only complete after inheritance, so package pipeline checks
// the merged profile with [resources.Resolve].
func (s Spec) Validate() error {
	var l field.List
	if s.Name == "" {
		l.Add(field.Required(field.NewPath("name"), "every task needs a name"))
	}
	if s.Image != "" && parseImage(s.Image) != nil {
		l.Add(checkImage(field.NewPath("image"), s.Image))
	}
	l.Add(checkOutputType(s.OutputType))
	switch s.Kind {
	case KindGo:
	case KindContainer:
		if s.Image == "" {
			l.Add(field.Required(field.NewPath("image"), "a container task needs an image; pass it to task.Container or WithImage"))
		}
		for i, c := range s.Command {
			l.Add(checkArg(field.NewPath("command").Index(i), c, s))
		}
		for i, a := range s.Args {
			l.Add(checkArg(field.NewPath("args").Index(i), a, s))
		}
		for i, e := range s.Env {
			p := field.NewPath("env").Index(i)
			if e.Name == "" {
				l.Add(field.Required(p.Child("name"), "an environment variable needs a name"))
			}
			l.Add(checkArg(p.Child("value"), e.Value, s))
		}
		for i, o := range s.Outputs {
			p := field.NewPath("outputs").Index(i)
			if _, _, ok := FieldByName(s.OutputType, o.Field); !ok {
				l.Add(field.NotFound(p.Child("field"), o.Field, "%s", noField(s.OutputType, o.Field)))
			}
		}
		l.Add(checkCommandLine(s)...)
		l.Add(checkEnvNames(s.Env)...)
		l.Add(checkOutputs(s)...)
	default:
		l.Add(field.NotSupported(field.NewPath("kind"), s.Kind, []Kind{KindGo, KindContainer}))
	}
	// The paths below are built only for a problem.
	if s.Retry != nil {
		if err := s.Retry.Validate(); err != nil {
			l.AddUnder(field.NewPath("retry"), err)
		}
	}
	if err := ValidateTimeout(s.Timeout); err != nil {
		l.AddUnder(field.NewPath("timeout"), err)
	}
	if s.Security != nil {
		if err := s.Security.Validate(); err != nil {
			l.AddUnder(field.NewPath("security"), err)
		}
	}
	checkAccess(&l, s.Access)
	for i, x := range s.Cache.ExcludeInputs {
		if _, _, ok := FieldByName(s.InputType, x); !ok {
			l.Add(field.NotFound(field.NewPath("cache", "excludeInputs").Index(i), x, "%s", noField(s.InputType, x)))
		}
	}
	return l.Err()
}

// Validate reports every problem in r with paths relative to the policy.
func (r Retry) Validate() error {
	var l field.List
	checkRetryBounds(&l, r) // task/bounds.go: one range per numeric field
	if r.OnDemandFallback && r.Infra == 0 {
		l.Add(field.Invalid(field.NewPath("onDemandFallback"), true, "falls back on the last infrastructure retry, so set infra to at least 1"))
	}
	return l.Err()
}

func checkArg(p *field.Path, str string, s Spec) *field.Error {
	if err := placeholder.Check(str); err != nil {
		return field.Invalid(p, str, "%v", err)
	}
	for _, name := range Placeholders(str) {
		if _, _, ok := FieldByName(s.InputType, name); !ok {
			return field.NotFound(p, str, "placeholder {{.%s}}: %s", name, noField(s.InputType, name))
		}
	}
	return checkOutputPlaceholders(p, str, s)
}
