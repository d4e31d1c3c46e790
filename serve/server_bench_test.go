package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-ml/sluice/serve"
)

// BenchmarkServe measures the Go predictor's server against a bare
// net/http handler doing the same JSON decode, prediction and encode,
// on the same linear model, in one run: requests per second and the
// 99th percentile of the latency, over keep-alive connections on
// 127.0.0.1 from GOMAXPROCS×4 client goroutines.
//
//	go test -run '^$' -bench BenchmarkServe -benchtime 20000x ./serve/
func BenchmarkServe(b *testing.B) {
	path, body := benchModel(b)

	b.Run("Predictor", func(b *testing.B) {
		srv, err := serve.NewServer(linear, serve.Model{URI: "file://" + path}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := srv.Load(context.Background()); err != nil {
			b.Fatal(err)
		}
		benchServer(b, srv.Handler(), "/v1/models/linear:predict", body)
	})
	b.Run("BareHandler", func(b *testing.B) {
		fn, err := linear.Load(context.Background(), serve.Model{URI: "file://" + path})
		if err != nil {
			b.Fatal(err)
		}
		benchServer(b, bareHandler(fn), "/v1/models/linear:predict", body)
	})
}

// BenchmarkServeHandler measures the predictor's handler and the bare
// handler of BenchmarkServe without the network, interleaved in one loop
// (so that load from elsewhere falls on both alike): the time per request
// of each, and bare/predictor, the predictor's throughput as a share of
// the bare handler's.
//
//	go test -run '^$' -bench BenchmarkServeHandler -benchtime 50000x ./serve/
func BenchmarkServeHandler(b *testing.B) {
	path, body := benchModel(b)
	srv, err := serve.NewServer(linear, serve.Model{URI: "file://" + path}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Load(context.Background()); err != nil {
		b.Fatal(err)
	}
	fn, err := linear.Load(context.Background(), serve.Model{URI: "file://" + path})
	if err != nil {
		b.Fatal(err)
	}
	bare := bareHandler(fn)
	pred := srv.Handler()
	call := func(h http.Handler) time.Duration {
		req := httptest.NewRequest(http.MethodPost, "/v1/models/linear:predict", strings.NewReader(body))
		rec := httptest.NewRecorder()
		t0 := time.Now()
		h.ServeHTTP(rec, req)
		d := time.Since(t0)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		return d
	}
	var tp, tb time.Duration
	for b.Loop() {
		tp += call(pred)
		tb += call(bare)
	}
	b.ReportMetric(float64(tp.Nanoseconds())/float64(b.N), "predictor-ns/req")
	b.ReportMetric(float64(tb.Nanoseconds())/float64(b.N), "bare-ns/req")
	b.ReportMetric(float64(tb)/float64(tp), "bare/predictor")
}

// bareHandler is a plain net/http handler doing what the predictor's v1
// endpoint does for fn: decode, predict, encode.
func bareHandler(fn serve.Func[Features, Prediction]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Instances []Features `json:"instances"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp := struct {
			Predictions []Prediction `json:"predictions"`
		}{make([]Prediction, len(req.Instances))}
		for i, in := range req.Instances {
			var err error
			if resp.Predictions[i], err = fn(r.Context(), in); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
}

// benchModel writes the benchmarks' linear model (16 weights) and
// returns its path and a v1 request body of one instance.
func benchModel(b *testing.B) (path, body string) {
	path = filepath.Join(b.TempDir(), "linear.json")
	w := make([]float64, 16)
	x := make([]float64, 16)
	for i := range w {
		w[i], x[i] = float64(i)/10, float64(i%3)
	}
	model, _ := json.Marshal(map[string]any{"w": w, "b": 0.5})
	if err := os.WriteFile(path, model, 0o644); err != nil {
		b.Fatal(err)
	}
	in, _ := json.Marshal(Features{X: x})
	return path, `{"instances": [` + string(in) + `]}`
}

// benchServer posts body to path of h b.N times from parallel clients
// and reports requests/s and the p99 latency.
func benchServer(b *testing.B, h http.Handler, path, body string) {
	ts := httptest.NewServer(h)
	defer ts.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var (
		mu  sync.Mutex
		lat []time.Duration
	)
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t0 := time.Now()
			resp, err := client.Post(ts.URL+path, "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Error(fmt.Sprintf("status %d", resp.StatusCode))
				return
			}
			mine = append(mine, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
