package placeholder_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/internal/placeholder"
)

func TestRender(t *testing.T) {
	in := map[string]json.RawMessage{"lr": json.RawMessage(`0.1`), "Data": json.RawMessage(`"s3://x y"`), "Debug": json.RawMessage(`true`)}
	goNames := map[string]string{"LR": "lr"}
	got, err := placeholder.Render("--lr={{.LR}} --data={{ .Data }} --debug={{.Debug}}", in, goNames)
	require.NoError(t, err)
	assert.Equal(t, "--lr=0.1 --data=s3://x y --debug=true", got)
	_, err = placeholder.Render("{{.Missing}}", in, goNames)
	assert.Error(t, err)
}

func TestNames(t *testing.T) {
	assert.Equal(t, []string{"LR", "Data"}, placeholder.Names("{{.LR}}-{{ .Data }}"))
	assert.Nil(t, placeholder.Names("no placeholders"))
}

func TestCheck(t *testing.T) {
	assert.NoError(t, placeholder.Check("--lr={{.LR}} {{ .Data }}"))
	assert.Error(t, placeholder.Check("{{if .LR}}x{{end}}"))
	assert.Error(t, placeholder.Check("{{.LR}}}}"))
}
