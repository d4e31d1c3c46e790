package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/pipeline"
	"github.com/sluice-ml/sluice/serve"
)

func init() {
	serve.Register(housePredictor())
}

// TestServeCommand runs "prog serve" in process on 127.0.0.1:0, calls
// the model, and interrupts it.
func TestServeCommand(t *testing.T) {
	m := writeModel(t, testWeights)
	p := pipeline.New("houses", nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		code := pipeline.Exec(ctx, p, []string{"serve", "-model", m.URI, "-digest", m.Digest, "-version", "7", "-addr", "127.0.0.1:0", "-q"}, pw, &stderr)
		pw.Close()
		exited <- code
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "stderr: %s", stderr.String())
	addr := regexp.MustCompile(`^serving model house from file://\S+ on (http://127\.0\.0\.1:\d+/) \(try it in a browser; interrupt to stop\)\n$`).FindStringSubmatch(line)
	require.NotNil(t, addr, line)
	url := addr[1]

	for code := 0; code != 200; {
		code, _ = do(t, "GET", url+"v2/health/ready", "")
	}
	code, body := do(t, "GET", url+"v2/models/house", "")
	assert.Equal(t, 200, code)
	assert.Contains(t, body, `"versions":["7"]`)
	code, body = do(t, "POST", url+"v1/models/house:predict", `{"instances": [{"rooms": 2, "area": 50, "garden": true}]}`)
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"predictions": [{"price": 125, "band": "low"}]}`, body)

	cancel() // what SIGTERM does to pipeline.Main's context
	assert.Equal(t, pipeline.ExitOK, <-exited, stderr.String())
	io.Copy(io.Discard, pr)
}

func TestServeCommandErrors(t *testing.T) {
	m := writeModel(t, testWeights)
	p := pipeline.New("houses", nil)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"NoModel", []string{}, pipeline.ExitInvalid, "houses serve: -model is required: the URI of the model to serve, e.g. -model file:///models/churn.json\n"},
		{"OtherFormat", []string{"-model", m.URI, "-format", "sklearn"}, pipeline.ExitInvalid,
			"houses serve: -format sklearn: this command serves sluice-go models, with a Go predictor the program registered; a sklearn model is served by its KServe runtime (see serve.Target)\n"},
		{"NoSuchPredictor", []string{"-model", m.URI, "-predictor", "flat"}, pipeline.ExitInvalid,
			"houses serve: -predictor flat: no such predictor; the program registers house\n"},
		{"Arguments", []string{"-model", m.URI, "extra"}, pipeline.ExitInvalid, "houses serve: unexpected arguments: extra\n"},
		{"MissingModel", []string{"-model", "file:///nonexistent/model.json", "-addr", "127.0.0.1:0", "-q"}, pipeline.ExitFailed,
			"houses serve: serve: loading model house from file:///nonexistent/model.json: serve: model file:///nonexistent/model.json: no model at this URI (no such file)\n"},
		{"CorruptModel", []string{"-model", m.URI, "-digest", "sha256:" + string(bytes.Repeat([]byte{'a'}, 64)), "-addr", "127.0.0.1:0", "-q"}, pipeline.ExitFailed,
			"artifact bytes do not match their digest\n"},
		{"BadAddress", []string{"-model", m.URI, "-addr", "127.0.0.1:x"}, pipeline.ExitFailed, "pick another -addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := pipeline.Exec(t.Context(), p, append([]string{"serve"}, tc.args...), &stdout, &stderr)
			assert.Equal(t, tc.code, code, stderr.String())
			// Load errors are logged too (without -q): keep to the last line.
			lines := bytes.SplitAfter(bytes.TrimSuffix(stderr.Bytes(), []byte("\n")), []byte("\n"))
			last := string(lines[len(lines)-1]) + "\n"
			if tc.code == pipeline.ExitFailed {
				assert.Contains(t, last, tc.want)
			} else {
				assert.Equal(t, tc.want, last)
			}
		})
	}
}
