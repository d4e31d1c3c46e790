package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-ml/sluice/serve"
)

// Features is the input of the linear model: one vector.
type Features struct {
	X []float64 `json:"x"`
}

// Prediction is its output.
type Prediction struct {
	Y float64 `json:"y"`
}

// linear is a Go predictor of a linear model, y = w·x + b, whose
// weights are a JSON file: {"w": [...], "b": ...}.
var linear = serve.Predictor[Features, Prediction]{
	Name:        "linear",
	Description: "y = w·x + b",
	Example:     Features{X: []float64{1, 2}},
	Load: func(ctx context.Context, m serve.Model) (serve.Func[Features, Prediction], error) {
		b, err := serve.ReadModel(ctx, m) // checked against m.Digest
		if err != nil {
			return nil, err
		}
		var model struct {
			W []float64 `json:"w"`
			B float64   `json:"b"`
		}
		if err := json.Unmarshal(b, &model); err != nil {
			return nil, fmt.Errorf("not a linear model: %w", err)
		}
		return func(ctx context.Context, in Features) (Prediction, error) {
			if len(in.X) != len(model.W) {
				return Prediction{}, &serve.InputError{Field: "x", Reason: fmt.Sprintf("give %d numbers, not %d", len(model.W), len(in.X))}
			}
			y := model.B
			for i, w := range model.W {
				y += w * in.X[i]
			}
			return Prediction{Y: y}, nil
		}, nil
	},
}

// A linear model served on 127.0.0.1 and called once through the typed
// JSON endpoint (KServe's v1 protocol).
func ExamplePredictor() {
	dir, err := os.MkdirTemp("", "linear")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "linear.json")
	if err := os.WriteFile(path, []byte(`{"w": [2, -1], "b": 0.5}`), 0o644); err != nil {
		log.Fatal(err)
	}

	srv, err := serve.NewServer(linear, serve.Model{URI: "file://" + path, Format: serve.GoModel}, nil)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	// Serve loads the model itself; loading it first makes the server
	// ready from its first request.
	if err := srv.Load(ctx); err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, l) }()

	resp, err := http.Post("http://"+l.Addr().String()+"/v1/models/linear:predict", "application/json",
		strings.NewReader(`{"instances": [{"x": [1, 2]}, {"x": [3, 1]}]}`))
	if err != nil {
		log.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(resp.Status, " ", string(body))

	stop() // as SIGTERM does to "prog serve": drain, then return
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	// Output:
	// 200 OK {"predictions":[{"y":0.5},{"y":5.5}]}
}
