package serve_test

import (
	"context"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/serve"
)

// TestDrain: when Serve's context is canceled the server reports not
// ready while it still answers, then stops accepting connections, and a
// request in flight finishes with its prediction.
func TestDrain(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	p := housePredictor()
	load := p.Load
	p.Load = func(ctx context.Context, m serve.Model) (serve.Func[house, price], error) {
		fn, err := load(ctx, m)
		return func(ctx context.Context, in house) (price, error) {
			if in.City == "slow" {
				close(entered)
				<-release
			}
			return fn(ctx, in)
		}, err
	}
	srv, err := serve.NewServer(p, writeModel(t, testWeights), nil)
	require.NoError(t, err)
	draining, proceed := make(chan struct{}), make(chan struct{})
	serve.SetDrainHook(srv, func() {
		close(draining)
		<-proceed
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()

	// Wait for the model: Serve loads it after it starts listening.
	for code := 0; code != 200; {
		code, _ = get(t, url+"/v2/health/ready")
	}
	type answer struct {
		code int
		body string
		err  error
	}
	slow := make(chan answer, 1)
	go func() {
		code, body, err := send(context.Background(), "POST", url+"/v1/models/house:predict", `{"instances": [{"rooms": 1, "area": 1, "garden": false, "city": "slow"}]}`)
		slow <- answer{code, body, err}
	}()
	<-entered
	cancel()
	<-draining

	code, body := get(t, url+"/v2/health/ready")
	assert.Equal(t, 503, code)
	assert.JSONEq(t, `{"ready": false, "error": "model house is not ready: the server is shutting down"}`, body)
	assert.False(t, srv.Ready())
	code, body = post(t, url+"/v1/models/house:predict", `{"instances": [{"rooms": 2, "area": 1, "garden": false}]}`)
	assert.Equal(t, 200, code, "while draining, before it stops accepting, the server still predicts: %s", body)

	close(proceed)
	// The listener closes once Shutdown starts: wait for a refused dial.
	for {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			break
		}
		c.Close()
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	a := <-slow
	require.NoError(t, a.err)
	assert.Equal(t, 200, a.code)
	assert.JSONEq(t, `{"predictions": [{"price": 17, "band": "low"}]}`, a.body)
	assert.NoError(t, <-served)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return do(t, "GET", url, "")
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	return do(t, "POST", url, body)
}
