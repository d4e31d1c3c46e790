package serve_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/internal/golden"
	"github.com/sluice-ml/sluice/serve"
)

// A richer input, to cover the schema's cases: nested and recursive
// structs, pointers, arrays, maps, embedded fields, time.
type (
	applicant struct {
		Meta
		Name     string             `json:"name"`
		Age      uint8              `json:"age"`
		Income   float32            `json:"income"`
		Scores   [3]float64         `json:"scores"`
		History  [][]int64          `json:"history,omitempty"`
		Address  *address           `json:"address,omitempty"`
		Tags     map[string]string  `json:"tags,omitempty"`
		Limits   map[string]float64 `json:"-"`
		Applied  time.Time          `json:"applied"`
		Referrer *applicant         `json:"referrer,omitempty"`
		ignored  int
	}
	// Meta is embedded: its fields are the applicant's.
	Meta struct {
		RequestID string `json:"request_id,omitempty"`
	}
	address struct {
		City string `json:"city"`
		Zip  string `json:"zip,omitempty"`
	}
	decision struct {
		Approve bool      `json:"approve"`
		Score   float64   `json:"score"`
		Reasons []string  `json:"reasons"`
		Probs   []float32 `json:"probs"`
	}
)

func applicantPredictor() serve.Predictor[applicant, decision] {
	return serve.Predictor[applicant, decision]{
		Name:        "credit",
		Description: "Whether to grant a loan.",
		Example: applicant{Name: "Ada", Age: 36, Income: 52.5, Scores: [3]float64{0.1, 0.2, 0.3},
			Address: &address{City: "Oslo"}, Applied: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)},
		Load: func(context.Context, serve.Model) (serve.Func[applicant, decision], error) {
			return func(_ context.Context, in applicant) (decision, error) {
				d := decision{Approve: in.Income > 50, Reasons: []string{"income", in.Address.City}, Probs: []float32{0.25, 0.75}}
				for _, s := range in.Scores {
					d.Score += s
				}
				for _, row := range in.History {
					for _, x := range row {
						d.Score += float64(x)
					}
				}
				return d, nil
			}, nil
		},
	}
}

// TestPredictorGolden checks the OpenAPI document and the try-it page
// generated from In and Out against golden files.
func TestPredictorGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		srv  func() (*serve.Server, error)
	}{
		{"House", func() (*serve.Server, error) {
			return serve.NewServer(housePredictor(), serve.Model{URI: "file:///models/house.json", Version: "3"}, nil)
		}},
		{"Credit", func() (*serve.Server, error) {
			return serve.NewServer(applicantPredictor(), serve.Model{URI: "file:///models/credit.json"}, nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := tc.srv()
			require.NoError(t, err)
			ts := httptest.NewServer(srv.Handler())
			defer ts.Close()
			for _, f := range []struct{ path, ext string }{{"/openapi.json", ".openapi.json"}, {"/", ".tryit.html"}} {
				code, body := do(t, "GET", ts.URL+f.path, "")
				require.Equal(t, 200, code)
				golden.Assert(t, []byte(body), f.ext)
			}
		})
	}
}

func TestCreditTensors(t *testing.T) {
	srv, err := serve.NewServer(applicantPredictor(), serve.Model{URI: "file:///models/credit.json"}, nil)
	require.NoError(t, err)
	require.NoError(t, srv.Load(t.Context()))
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	code, body := do(t, "GET", ts.URL+"/v2/models/credit", "")
	require.Equal(t, 200, code)
	assert.JSONEq(t, `{"name": "credit", "versions": [], "platform": "sluice-go",
		"inputs": [
			{"name": "request_id", "datatype": "BYTES", "shape": [1]},
			{"name": "name", "datatype": "BYTES", "shape": [1]},
			{"name": "age", "datatype": "UINT8", "shape": [1]},
			{"name": "income", "datatype": "FP32", "shape": [1]},
			{"name": "scores", "datatype": "FP64", "shape": [3]},
			{"name": "history", "datatype": "INT64", "shape": [-1, -1]},
			{"name": "address", "datatype": "BYTES", "shape": [1]},
			{"name": "tags", "datatype": "BYTES", "shape": [1]},
			{"name": "applied", "datatype": "BYTES", "shape": [1]},
			{"name": "referrer", "datatype": "BYTES", "shape": [1]}],
		"outputs": [
			{"name": "approve", "datatype": "BOOL", "shape": [1]},
			{"name": "score", "datatype": "FP64", "shape": [1]},
			{"name": "reasons", "datatype": "BYTES", "shape": [-1]},
			{"name": "probs", "datatype": "FP32", "shape": [-1]}]}`, body)

	code, body = do(t, "POST", ts.URL+"/v2/models/credit/infer", `{"inputs": [
		{"name": "name", "shape": [2], "datatype": "BYTES", "data": ["Ada", "Bob"]},
		{"name": "age", "shape": [2], "datatype": "UINT8", "data": [36, 41]},
		{"name": "income", "shape": [2], "datatype": "FP32", "data": [52.5, 20]},
		{"name": "scores", "shape": [2, 3], "datatype": "FP64", "data": [[1, 2, 3], [4, 5, 6]]},
		{"name": "history", "shape": [2, 1, 2], "datatype": "INT64", "data": [100, 200, 300, 400]},
		{"name": "address", "shape": [2], "datatype": "BYTES", "data": ["{\"city\": \"Oslo\"}", "{\"city\": \"Rome\"}"]},
		{"name": "applied", "shape": [2], "datatype": "BYTES", "data": ["\"2026-01-02T00:00:00Z\"", "\"2026-01-03T00:00:00Z\""]}]}`)
	require.Equal(t, 200, code, body)
	assert.JSONEq(t, `{"model_name": "credit", "outputs": [
		{"name": "approve", "shape": [2], "datatype": "BOOL", "data": [true, false]},
		{"name": "score", "shape": [2], "datatype": "FP64", "data": [306, 715]},
		{"name": "reasons", "shape": [2, 2], "datatype": "BYTES", "data": ["income", "Oslo", "income", "Rome"]},
		{"name": "probs", "shape": [2, 2], "datatype": "FP32", "data": [0.25, 0.75, 0.25, 0.75]}]}`, body)

	for _, tc := range []struct{ name, input, want string }{
		{"ArrayLength", `{"name": "scores", "shape": [2], "datatype": "FP64", "data": [1, 2]}`, `input tensor "scores": shape [2] does not fit: give [3], or [batch, 3] for a batch`},
		{"Overflow", `{"name": "age", "shape": [1], "datatype": "UINT8", "data": [300]}`, `input tensor "age": want an integer ≥ 0 that fits a uint8, got 300`},
		{"NotJSON", `{"name": "address", "shape": [1], "datatype": "BYTES", "data": ["Oslo"]}`, `input tensor "address": the element is not the JSON of a serve_test.address: invalid character 'O' looking for beginning of value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, "POST", ts.URL+"/v2/models/credit/infer", `{"inputs": [`+tc.input+`]}`)
			assert.Equal(t, 400, code)
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			assert.Equal(t, tc.want, e.Error)
		})
	}
}
