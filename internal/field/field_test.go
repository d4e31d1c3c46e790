package field

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPathString(t *testing.T) {
	p := NewPath("pipeline").Child("tasks").Key("train").Child("resources", "mig")
	assert.Equal(t, "pipeline.tasks[train].resources.mig", p.String())
	assert.Equal(t, "pipeline.params[0]", NewPath("pipeline").Child("params").Index(0).String())
	assert.Equal(t, "", (*Path)(nil).String())
	assert.Equal(t, "a.b", Under(NewPath("a"), "b"))
	assert.Equal(t, "a[k]", Under(NewPath("a"), "[k]"))
	assert.Equal(t, "a", Under(NewPath("a"), ""))
	assert.Equal(t, "b", Under(nil, "b"))
}

func TestListKeepsEveryErrorReachable(t *testing.T) {
	var l List
	require.NoError(t, l.Err())
	l.Add(Required(NewPath("a"), "set it"), nil, Invalid(NewPath("b"), "x", "bad %d", 1))

	var inner List
	inner.Add(NotSupported(NewPath("mig"), "5g.40gb", []string{"3g.40gb"}))
	l.AddUnder(NewPath("p").Key("t").Child("resources"), inner.Err())

	err := fmt.Errorf("pipeline: compile: %w", l.Err())
	got := Errors(err)
	require.Len(t, got, 3)
	assert.Equal(t, "p[t].resources.mig", got[2].Field)
	assert.Equal(t, TypeNotSupported, got[2].Type)

	var fe *Error
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "a", fe.Field)
	assert.Equal(t, "pipeline: compile: a: Required: set it\nb: Invalid \"x\": bad 1\np[t].resources.mig: NotSupported \"5g.40gb\": supported values: \"3g.40gb\"", err.Error())
}
