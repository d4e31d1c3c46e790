package resources

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestClosest(t *testing.T) {
	a100 := []string{"1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"}
	for _, tc := range []struct {
		name, in   string
		candidates []string
		want       string
	}{
		{"SliceCountWinsTies", "3g.20gb", a100, "3g.40gb"},
		{"NearestSliceCount", "5g.40gb", []string{"7g.40gb", "4g.40gb"}, "4g.40gb"},
		{"CaseInsensitive", "7G.80GB", a100, "7g.80gb"},
		{"TooFar", "large", a100, ""},
		{"Empty", "", a100, ""},
		{"VeryLong", string(make([]byte, 1000)), a100, ""},
		{"FirstOfEqualsWins", "x", []string{"a", "b"}, "a"},
		{"ModelName", "H100-80G", []string{"A100-80GB", "H100-80GB"}, "H100-80GB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, closest(tc.in, tc.candidates))
		})
	}
}

func TestDidYouMean(t *testing.T) {
	models := modelNames()
	assert.Equal(t, `; did you mean "A100-40GB" or "A100-80GB"?`, didYouMean("a100", models))
	assert.Equal(t, `; did you mean "H100-80GB"?`, didYouMean("H100-80G", models))
	assert.Equal(t, "", didYouMean("TPU-v5", models))
	assert.Equal(t, `; did you mean "3g.40gb"?`, didYouMean("3g.20gb", []string{"2g.20gb", "3g.40gb"}))
}
