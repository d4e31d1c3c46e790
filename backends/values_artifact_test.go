package backends_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/backends"
)

// A promoted value stands in for a step's output field: a ref that
// selects into it is resolved through Values.Resolve, or is an error that
// says what to do.
func TestValuesLookInsidePromotedValues(t *testing.T) {
	ctx := t.Context()
	s, err := artifact.Open(ctx, "file://"+t.TempDir())
	require.NoError(t, err)
	defer s.Close()
	tctx := artifact.NewContext(ctx, artifact.Scope{Store: s, Producer: artifact.Producer{Pipeline: "p", Run: "r", Step: "split"}})
	big := make([]int, 2000)
	out, _ := json.Marshal(map[string]any{"train": map[string]any{"rows": big, "n": 2000}, "k": 1})
	promoted, err := artifact.Promote(tctx, out, 1024)
	require.NoError(t, err)
	require.True(t, artifact.HasValues(promoted))

	v := backends.Values{Output: func(string) (json.RawMessage, bool) { return promoted, true }}
	ref := backends.Ref{Kind: backends.RefStep, Step: "split", Path: []string{"train", "n"}}
	_, err = v.Value(ref)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "train was stored out of band")
	assert.Contains(t, err.Error(), "take the whole value as the input and select n in the task")

	whole, err := v.Value(backends.Ref{Kind: backends.RefStep, Step: "split", Path: []string{"train"}})
	require.NoError(t, err)
	assert.True(t, artifact.IsValue(whole), "a ref to the promoted field passes it on as it is, for the consumer to restore")

	v.Resolve = func(x json.RawMessage) (json.RawMessage, error) { return s.Resolve(ctx, x) }
	n, err := v.Value(ref)
	require.NoError(t, err)
	assert.JSONEq(t, "2000", string(n))
}
