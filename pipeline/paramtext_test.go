package pipeline_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/pipeline"
)

type region string

// quoted is a string kind whose JSON is an object, not a string.
type quoted string

func (q quoted) MarshalJSON() ([]byte, error) { return []byte(`{"q":"` + string(q) + `"}`), nil }

// A parameter is text (backends.Param.Text, which Argo stores without
// JSON quotes) when its kind is string and its values encode as JSON
// strings.
func TestParamText(t *testing.T) {
	p := pipeline.New("params", nil)
	pipeline.NewParam(p, "s", "base")
	pipeline.NewParam(p, "r", region("eu"))
	pipeline.NewParam(p, "n", 3)
	pipeline.NewParam(p, "l", []string{"a"})
	pipeline.NewParam(p, "q", quoted("x"))
	plan, err := p.Plan(map[string]string{"s": "tuned"})
	require.NoError(t, err)
	text := map[string]bool{}
	for _, prm := range plan.Params {
		text[prm.Name] = prm.Text
	}
	assert.Equal(t, map[string]bool{"s": true, "r": true, "n": false, "l": false, "q": false}, text)
	assert.JSONEq(t, `"tuned"`, string(plan.Params[0].Value))
}
