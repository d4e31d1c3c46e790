package serve_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-ml/sluice/artifact"
	"github.com/sluice-ml/sluice/internal/field"
	"github.com/sluice-ml/sluice/serve"
)

// The test predictor: a house's price from a linear model,
// price = rooms·w.rooms + area·w.area + Σ extra + b, stored as JSON.

type house struct {
	Rooms  int       `json:"rooms"`
	Area   float64   `json:"area"`
	Garden bool      `json:"garden"`
	City   string    `json:"city,omitempty"`
	Extra  []float64 `json:"extra,omitempty"`
}

type price struct {
	Price float64 `json:"price"`
	Band  string  `json:"band"`
}

type weights struct {
	Rooms float64 `json:"rooms"`
	Area  float64 `json:"area"`
	B     float64 `json:"b"`
}

// writeModel writes w as a model file and returns its Model, with the
// digest of its bytes.
func writeModel(t *testing.T, w weights) serve.Model {
	t.Helper()
	b, err := json.Marshal(w)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "model.json")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	sum := sha256.Sum256(b)
	return serve.Model{URI: "file://" + path, Digest: "sha256:" + hex.EncodeToString(sum[:]), Format: serve.GoModel, Version: "3"}
}

var testWeights = weights{Rooms: 10, Area: 2, B: 5}

// housePredictor predicts with the weights it loads. City "panic" makes
// it panic, city "fail" fail, a negative area is refused by Pre.
func housePredictor() serve.Predictor[house, price] {
	return serve.Predictor[house, price]{
		Name:        "house",
		Description: "The price of a house, in thousands.",
		Example:     house{Rooms: 3, Area: 70, Garden: true, City: "Lyon"},
		Load: func(ctx context.Context, m serve.Model) (serve.Func[house, price], error) {
			b, err := serve.ReadModel(ctx, m)
			if err != nil {
				return nil, err
			}
			var w weights
			if err := json.Unmarshal(b, &w); err != nil {
				return nil, fmt.Errorf("not a model: %w", err)
			}
			return func(ctx context.Context, in house) (price, error) {
				switch in.City {
				case "panic":
					panic("the model broke")
				case "fail":
					return price{}, errors.New("no prices for this city")
				case "nowhere":
					return price{}, &serve.InputError{Field: "city", Reason: "unknown city"}
				}
				p := float64(in.Rooms)*w.Rooms + in.Area*w.Area + w.B
				for _, x := range in.Extra {
					p += x
				}
				return price{Price: p}, nil
			}, nil
		},
		Pre: func(ctx context.Context, in house) (house, error) {
			if in.Area < 0 {
				return in, &serve.InputError{Field: "area", Reason: "must be ≥ 0"}
			}
			return in, nil
		},
		Post: func(ctx context.Context, in house, out price) (price, error) {
			out.Band = "low"
			if out.Price >= 200 {
				out.Band = "high"
			}
			return out, nil
		},
	}
}

// newLoaded returns a loaded server of p with model m, and its test
// server.
func newLoaded(t *testing.T, p serve.Predictor[house, price], m serve.Model) (*serve.Server, *httptest.Server) {
	t.Helper()
	srv, err := serve.NewServer(p, m, nil)
	require.NoError(t, err)
	require.NoError(t, srv.Load(t.Context()))
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return srv, ts
}

// do sends a request and returns the status and the body.
func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	code, b, err := send(t.Context(), method, url, body)
	require.NoError(t, err)
	return code, b
}

// send sends a request and returns the status and the body; unlike do,
// it may run on any goroutine.
func send(ctx context.Context, method, url, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	// A connection of its own: the default client's idle connections
	// would outlive the server.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestEndpoints(t *testing.T) {
	_, ts := newLoaded(t, housePredictor(), writeModel(t, testWeights))
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string // JSON, compared as JSON
	}{
		{"Live", "GET", "/v2/health/live", "", 200, `{"live": true}`},
		{"Ready", "GET", "/v2/health/ready", "", 200, `{"ready": true}`},
		{"ModelReady", "GET", "/v2/models/house/ready", "", 200, `{"ready": true}`},
		{"ModelVersionReady", "GET", "/v2/models/house/versions/3/ready", "", 200, `{"ready": true}`},
		{"ServerMetadata", "GET", "/v2", "", 200, `{"name": "sluice", "version": "devel", "extensions": []}`},
		{"ModelMetadata", "GET", "/v2/models/house", "", 200, `{
			"name": "house", "versions": ["3"], "platform": "sluice-go",
			"inputs": [
				{"name": "rooms", "datatype": "INT64", "shape": [1]},
				{"name": "area", "datatype": "FP64", "shape": [1]},
				{"name": "garden", "datatype": "BOOL", "shape": [1]},
				{"name": "city", "datatype": "BYTES", "shape": [1]},
				{"name": "extra", "datatype": "FP64", "shape": [-1]}],
			"outputs": [
				{"name": "price", "datatype": "FP64", "shape": [1]},
				{"name": "band", "datatype": "BYTES", "shape": [1]}]}`},
		{"Infer", "POST", "/v2/models/house/infer", `{"id": "q1", "inputs": [
				{"name": "rooms", "shape": [1], "datatype": "INT64", "data": [3]},
				{"name": "area", "shape": [1], "datatype": "FP64", "data": [70.5]},
				{"name": "garden", "shape": [1], "datatype": "BOOL", "data": [true]}]}`,
			200, `{"model_name": "house", "model_version": "3", "id": "q1", "outputs": [
				{"name": "price", "shape": [1], "datatype": "FP64", "data": [176]},
				{"name": "band", "shape": [1], "datatype": "BYTES", "data": ["low"]}]}`},
		{"InferBatch", "POST", "/v2/models/house/versions/3/infer", `{"inputs": [
				{"name": "rooms", "shape": [2], "datatype": "INT32", "data": [3, 10]},
				{"name": "area", "shape": [2, 1], "datatype": "FP32", "data": [[70], [100]]},
				{"name": "garden", "shape": [2], "datatype": "BOOL", "data": [true, false]},
				{"name": "extra", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}],
				"outputs": [{"name": "price"}]}`,
			200, `{"model_name": "house", "model_version": "3", "outputs": [
				{"name": "price", "shape": [2], "datatype": "FP64", "data": [178, 312]}]}`},
		{"Predict", "POST", "/v1/models/house:predict", `{"instances": [
				{"rooms": 3, "area": 70, "garden": true},
				{"rooms": 10, "area": 100, "garden": false, "city": "Paris", "extra": [1, 2]}]}`,
			200, `{"predictions": [{"price": 175, "band": "low"}, {"price": 308, "band": "high"}]}`},
		{"V1Ready", "GET", "/v1/models/house", "", 200, `{"name": "house", "ready": true}`},
		{"OtherModel", "GET", "/v2/models/flat", "", 404, `{"error": "no model \"flat\": this server serves model \"house\""}`},
		{"OtherVersion", "POST", "/v2/models/house/versions/2/infer", `{}`, 404, `{"error": "model house has no version \"2\": this server serves its version 3"}`},
		{"OtherPath", "GET", "/v3", "", 404, `{"error": "no endpoint GET /v3; see GET /openapi.json for this server's endpoints"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.method, ts.URL+tc.path, tc.body)
			assert.Equal(t, tc.code, code, body)
			assert.JSONEq(t, tc.want, body)
		})
	}

	t.Run("OpenAPI", func(t *testing.T) {
		code, body := do(t, "GET", ts.URL+"/openapi.json", "")
		require.Equal(t, 200, code)
		var doc struct {
			OpenAPI string                    `json:"openapi"`
			Paths   map[string]map[string]any `json:"paths"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &doc))
		assert.Equal(t, "3.0.3", doc.OpenAPI)
		assert.Contains(t, doc.Paths, "/v1/models/house:predict")
		assert.Contains(t, doc.Paths, "/v2/models/house/infer")
	})
	t.Run("TryItPage", func(t *testing.T) {
		code, body := do(t, "GET", ts.URL+"/", "")
		require.Equal(t, 200, code)
		assert.Contains(t, body, `<label for="f0-rooms">rooms`)
		assert.Contains(t, body, `<input id="f0-rooms" name="rooms" data-kind="integer" type="number" step="1" value="3"`)
		for _, path := range []string{"/static/tryit.js", "/static/tryit.css"} {
			code, body := do(t, "GET", ts.URL+path, "")
			assert.Equal(t, 200, code, path)
			assert.NotEmpty(t, body, path)
		}
	})
}

func TestBadInput(t *testing.T) {
	_, ts := newLoaded(t, housePredictor(), writeModel(t, testWeights))
	infer := func(inputs string) string { return `{"inputs": [` + inputs + `]}` }
	rooms := `{"name": "rooms", "shape": [1], "datatype": "INT64", "data": [3]}`
	area := `{"name": "area", "shape": [1], "datatype": "FP64", "data": [70]}`
	garden := `{"name": "garden", "shape": [1], "datatype": "BOOL", "data": [true]}`
	for _, tc := range []struct {
		name, path, body string
		code             int
		want             string // the error message
	}{
		{"V1NotJSON", "/v1/models/house:predict", `{"instances": [`, 400,
			`the request is not a v1 prediction request: unexpected EOF; send {"instances": [{"rooms":3,"area":70,"garden":true,"city":"Lyon"}]}`},
		{"V1NoInstances", "/v1/models/house:predict", `{}`, 400,
			`instances is required: send {"instances": [{"rooms":3,"area":70,"garden":true,"city":"Lyon"}]}`},
		{"V1UnknownTopLevel", "/v1/models/house:predict", `{"instances": [], "inputs": []}`, 400,
			`the request is not a v1 prediction request: unknown field "inputs"; send {"instances": [{"rooms":3,"area":70,"garden":true,"city":"Lyon"}]}`},
		{"V1Empty", "/v1/models/house:predict", `{"instances": []}`, 400, `instances is empty: give at least one input`},
		{"V1Missing", "/v1/models/house:predict", `{"instances": [{"rooms": 3, "garden": true}]}`, 400, `instances[0].area is required`},
		{"V1UnknownField", "/v1/models/house:predict", `{"instances": [{"rooms": 3, "area": 1, "garden": true, "aera": 2}]}`, 400,
			`instances[0].aera is not a field of the input; its fields: rooms, area, garden, city, extra`},
		{"V1WrongType", "/v1/models/house:predict", `{"instances": [{"rooms": 3, "area": 1, "garden": true}, {"rooms": "three", "area": 1, "garden": true}]}`, 400,
			`instances[1].rooms: want an integer (int), got JSON string`},
		{"V1NotAnObject", "/v1/models/house:predict", `{"instances": [[1, 2]]}`, 400,
			`instances[0]: want a JSON object with the fields rooms, area, garden, city, extra, got an array`},
		{"V1Pre", "/v1/models/house:predict", `{"instances": [{"rooms": 3, "area": -1, "garden": true}]}`, 400, `input area: must be ≥ 0`},
		{"V1InputErrorFromModel", "/v1/models/house:predict", `{"instances": [{"rooms": 3, "area": 1, "garden": true, "city": "nowhere"}]}`, 400, `input city: unknown city`},
		{"V1WrongSuffix", "/v1/models/house:explain", `{}`, 404, `no endpoint POST /v1/models/house:explain: the v1 endpoint is POST /v1/models/house:predict`},
		{"V2NotJSON", "/v2/models/house/infer", `[`, 400,
			`the request is not an inference request: unexpected EOF; send {"inputs": [{"name": …, "shape": […], "datatype": …, "data": […]}]}`},
		{"V2NoInputs", "/v2/models/house/infer", `{"inputs": []}`, 400, `the request has no inputs; model house takes rooms, area, garden, city, extra`},
		{"V2Unknown", "/v2/models/house/infer", infer(rooms + `, {"name": "aera", "shape": [1], "datatype": "FP64", "data": [1]}`), 400,
			`input tensor "aera" is not an input of model house; its inputs: rooms, area, garden, city, extra`},
		{"V2Missing", "/v2/models/house/infer", infer(rooms + "," + garden), 400,
			`input tensor "area" is missing (datatype FP64, shape [1]); model house takes rooms, area, garden, city, extra`},
		{"V2Twice", "/v2/models/house/infer", infer(rooms + "," + rooms), 400, `input tensor "rooms" is given twice`},
		{"V2WrongDatatype", "/v2/models/house/infer", infer(`{"name": "rooms", "shape": [1], "datatype": "BYTES", "data": ["3"]}`), 400,
			`input tensor "rooms": datatype BYTES does not fit this input: give INT64`},
		{"V2NoDatatype", "/v2/models/house/infer", infer(`{"name": "rooms", "shape": [1], "data": [3]}`), 400,
			`input tensor "rooms": datatype is required: give INT64`},
		{"V2BadDatatype", "/v2/models/house/infer", infer(`{"name": "rooms", "shape": [1], "datatype": "INT65", "data": [3]}`), 400,
			`input tensor "rooms": datatype "INT65" is not an Open Inference Protocol datatype; give INT64`},
		{"V2ShapeAndData", "/v2/models/house/infer", infer(`{"name": "rooms", "shape": [2], "datatype": "INT64", "data": [3]}`), 400,
			`input tensor "rooms": data has 1 elements but shape [2] needs 2`},
		{"V2BadShape", "/v2/models/house/infer", infer(`{"name": "rooms", "shape": [1, 2], "datatype": "INT64", "data": [3, 4]}`), 400,
			`input tensor "rooms": shape [1 2] does not fit: give [1], or [batch] for a batch`},
		{"V2BatchMismatch", "/v2/models/house/infer", infer(rooms + `, {"name": "area", "shape": [2], "datatype": "FP64", "data": [1, 2]}`), 400,
			`input tensor "area" has a batch of 2, others of 1: every input needs the same first dimension`},
		{"V2NotAnInteger", "/v2/models/house/infer", infer(`{"name": "rooms", "shape": [1], "datatype": "INT64", "data": [2.5]},` + area + "," + garden), 400,
			`input tensor "rooms": want an integer that fits a int, got 2.5`},
		{"V2NotABool", "/v2/models/house/infer", infer(rooms + "," + area + `, {"name": "garden", "shape": [1], "datatype": "BOOL", "data": [1]}`), 400,
			`input tensor "garden": want true or false, got 1`},
		{"V2Pre", "/v2/models/house/infer", infer(rooms + `, {"name": "area", "shape": [1], "datatype": "FP64", "data": [-3]},` + garden), 400,
			`input area: must be ≥ 0`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, "POST", ts.URL+tc.path, tc.body)
			assert.Equal(t, tc.code, code, body)
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(body), &e), body)
			assert.Equal(t, tc.want, e.Error)
		})
	}
}

func TestModelErrorsConcurrentSafe(t *testing.T) {
	_, ts := newLoaded(t, housePredictor(), writeModel(t, testWeights))
	for _, tc := range []struct {
		name, city string
		code       int
		want       string
	}{
		{"Fails", "fail", 500, `model house: no prices for this city`},
		{"Panics", "panic", 500, `model house: the model panicked: the model broke`},
		{"StillServes", "Lyon", 200, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			for range 4 { // the same request at once: the server is one handler for all
				go func() {
					defer func() { done <- struct{}{} }()
					code, body, err := send(t.Context(), "POST", ts.URL+"/v1/models/house:predict", `{"instances": [{"rooms": 1, "area": 1, "garden": false, "city": "`+tc.city+`"}]}`)
					assert.NoError(t, err)
					assert.Equal(t, tc.code, code, body)
					if tc.want != "" {
						assert.JSONEq(t, `{"error": `+quote(tc.want)+`}`, body)
					}
				}()
			}
			for range 4 {
				<-done
			}
		})
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestReadyOnlyAfterLoad(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{})
	p := housePredictor()
	load := p.Load
	p.Load = func(ctx context.Context, m serve.Model) (serve.Func[house, price], error) {
		close(entered)
		<-release
		return load(ctx, m)
	}
	srv, err := serve.NewServer(p, writeModel(t, testWeights), nil)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	loaded := make(chan error, 1)
	go func() { loaded <- srv.Load(t.Context()) }()
	<-entered

	code, body := do(t, "GET", ts.URL+"/v2/health/ready", "")
	assert.Equal(t, 503, code)
	assert.JSONEq(t, `{"ready": false, "error": "model house is not ready: it is still loading"}`, body)
	code, _ = do(t, "GET", ts.URL+"/v2/models/house/ready", "")
	assert.Equal(t, 503, code)
	code, _ = do(t, "GET", ts.URL+"/v1/models/house", "")
	assert.Equal(t, 503, code)
	code, body = do(t, "POST", ts.URL+"/v1/models/house:predict", `{"instances": [{"rooms": 1, "area": 1, "garden": false}]}`)
	assert.Equal(t, 503, code)
	assert.JSONEq(t, `{"error": "model house is not ready: it is still loading"}`, body)
	code, _ = do(t, "GET", ts.URL+"/v2/health/live", "")
	assert.Equal(t, 200, code, "live while loading")
	assert.False(t, srv.Ready())

	close(release)
	require.NoError(t, <-loaded)
	assert.True(t, srv.Ready())
	code, _ = do(t, "GET", ts.URL+"/v2/health/ready", "")
	assert.Equal(t, 200, code)
	code, body = do(t, "POST", ts.URL+"/v1/models/house:predict", `{"instances": [{"rooms": 1, "area": 1, "garden": false}]}`)
	assert.Equal(t, 200, code)
	assert.JSONEq(t, `{"predictions": [{"price": 17, "band": "low"}]}`, body)
}

func TestLoadErrors(t *testing.T) {
	good := writeModel(t, testWeights)
	for _, tc := range []struct {
		name   string
		model  serve.Model
		is     error
		want   string
		broken func(p *serve.Predictor[house, price])
	}{
		{name: "NoSuchFile", model: serve.Model{URI: "file:///nonexistent/model.json"}, is: serve.ErrNoModel,
			want: "serve: loading model house from file:///nonexistent/model.json: serve: model file:///nonexistent/model.json: no model at this URI (no such file)"},
		{name: "WrongDigest", model: serve.Model{URI: good.URI, Digest: "sha256:" + strings.Repeat("0", 64)}, is: artifact.ErrCorrupt,
			want: "not the model's digest sha256:0000"},
		{name: "BadDigest", model: serve.Model{URI: good.URI, Digest: "md5:1"}, want: `digest "md5:1" is not "sha256:" and 64 hex digits`},
		{name: "NotAnArtifactURI", model: serve.Model{URI: "http://example.com/model.json"}, want: `model URI "http://example.com/model.json": give a file://, s3://, gs:// or azblob:// URI of the model's bytes`},
		{name: "Directory", model: serve.Model{URI: "file:///tmp/"}, want: `names no object`},
		{name: "LoadFails", model: good, want: "serve: loading model house from " + good.URI + ": not a model", broken: func(p *serve.Predictor[house, price]) {
			p.Load = func(ctx context.Context, m serve.Model) (serve.Func[house, price], error) {
				return nil, errors.New("not a model")
			}
		}},
		{name: "LoadPanics", model: good, want: "Load panicked: boom", broken: func(p *serve.Predictor[house, price]) {
			p.Load = func(ctx context.Context, m serve.Model) (serve.Func[house, price], error) { panic("boom") }
		}},
		{name: "LoadReturnsNil", model: good, want: "Load returned a nil predict function and no error", broken: func(p *serve.Predictor[house, price]) {
			p.Load = func(ctx context.Context, m serve.Model) (serve.Func[house, price], error) { return nil, nil }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := housePredictor()
			if tc.broken != nil {
				tc.broken(&p)
			}
			srv, err := serve.NewServer(p, tc.model, nil)
			require.NoError(t, err)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			err = srv.Serve(t.Context(), l) // returns once the load failed
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			assert.False(t, srv.Ready())
			assert.Equal(t, err, srv.Load(t.Context()), "Load keeps the first error")
			ts := httptest.NewServer(srv.Handler())
			defer ts.Close()
			code, body := do(t, "POST", ts.URL+"/v1/models/house:predict", `{"instances": [{"rooms": 1, "area": 1, "garden": false}]}`)
			assert.Equal(t, 503, code, "no model to predict with: %s", body)
			assert.JSONEq(t, `{"error": "model house is not ready: the server is shutting down"}`, body)
		})
	}
}

func TestReadModel(t *testing.T) {
	m := writeModel(t, testWeights)
	want, err := json.Marshal(testWeights)
	require.NoError(t, err)
	path := strings.TrimPrefix(m.URI, "file://")
	for _, tc := range []struct {
		name string
		m    serve.Model
	}{
		{"Checked", m},
		{"Unchecked", serve.Model{URI: m.URI}},
		{"LocalPath", serve.Model{URI: path, Digest: m.Digest}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := serve.ReadModel(t.Context(), tc.m)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
	// Changed after it was written: the last read fails.
	require.NoError(t, os.WriteFile(path, append(want, ' '), 0o644))
	_, err = serve.ReadModel(t.Context(), m)
	assert.ErrorIs(t, err, artifact.ErrCorrupt)
}

func TestNewServerErrors(t *testing.T) {
	type key struct{ Field, Type string }
	keys := func(err error) []key {
		var out []key
		for _, fe := range field.Errors(err) {
			out = append(out, key{fe.Field, string(fe.Type)})
		}
		return out
	}
	p := serve.Predictor[house, price]{Name: "Bad Name"}
	_, err := serve.NewServer(p, serve.Model{Format: serve.SKLearn}, nil)
	require.Error(t, err)
	assert.Equal(t, []key{
		{"predictor.name", "Invalid"},
		{"predictor.load", "Required"},
		{"model.uri", "Required"},
		{"model.format", "NotSupported"},
	}, keys(err), err.Error())

	_, err = serve.NewServer(serve.Predictor[chan int, price]{Name: "c", Load: func(context.Context, serve.Model) (serve.Func[chan int, price], error) { return nil, nil }},
		serve.Model{URI: "file:///m"}, nil)
	require.Error(t, err)
	assert.Equal(t, []key{{"predictor.in", "Invalid"}}, keys(err))
	assert.Contains(t, err.Error(), `In must be a type that JSON encodes: chan int is a chan`)

	type withStringer struct {
		V fmt.Stringer `json:"v"`
	}
	_, err = serve.NewServer(serve.Predictor[withStringer, price]{Name: "s", Load: func(context.Context, serve.Model) (serve.Func[withStringer, price], error) { return nil, nil }},
		serve.Model{URI: "file:///m"}, nil)
	assert.Equal(t, []key{{"predictor.in", "Invalid"}}, keys(err))
	type withAny struct {
		V any `json:"v"`
	}
	_, err = serve.NewServer(serve.Predictor[withAny, price]{Name: "a", Load: func(context.Context, serve.Model) (serve.Func[withAny, price], error) { return nil, nil }},
		serve.Model{URI: "file:///m"}, nil)
	assert.NoError(t, err, "JSON decodes into any")
}
