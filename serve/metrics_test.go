package serve_test

import (
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scrape reads the metrics at url.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// metric returns the series of family name whose labels include
// labels, failing the test if there is none.
func metric(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	fam, ok := fams[name]
	require.True(t, ok, "no metric %s", name)
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		return m
	}
	require.Failf(t, "no series", "%s%v", name, labels)
	return nil
}

func TestMetrics(t *testing.T) {
	_, ts := newLoaded(t, housePredictor(), writeModel(t, testWeights))
	ok := `{"instances": [{"rooms": 1, "area": 1, "garden": false}, {"rooms": 2, "area": 1, "garden": false}]}`
	for _, req := range []struct{ path, body string }{
		{"/v1/models/house:predict", ok},
		{"/v1/models/house:predict", ok},
		{"/v1/models/house:predict", `{"instances": [{"rooms": "one"}]}`},
		{"/v1/models/house:predict", `{"instances": [{"rooms": 1, "area": 1, "garden": false, "city": "fail"}]}`},
		{"/v1/models/house:predict", `{"instances": [{"rooms": 1, "area": 1, "garden": false, "city": "panic"}]}`},
		{"/v2/models/house/infer", `{"inputs": [{"name": "rooms", "shape": [1], "datatype": "INT64", "data": [1]}]}`},
		{"/v2/models/house/infer", `{"inputs": [{"name": "rooms", "shape": [2], "datatype": "INT64", "data": [1, 2]},
			{"name": "area", "shape": [2], "datatype": "FP64", "data": [1, 2]}, {"name": "garden", "shape": [2], "datatype": "BOOL", "data": [true, false]}]}`},
	} {
		do(t, "POST", ts.URL+req.path, req.body)
	}
	do(t, "GET", ts.URL+"/v2/health/ready", "")

	fams := scrape(t, ts.URL+"/metrics")
	const v1 = "POST /v1/models/{model}"
	const v2 = "POST /v2/models/{model}/infer"
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sluice_serve_requests_total", map[string]string{"model": "house", "endpoint": v1, "code": "200"}, 2},
		{"sluice_serve_requests_total", map[string]string{"model": "house", "endpoint": v1, "code": "400"}, 1},
		{"sluice_serve_requests_total", map[string]string{"model": "house", "endpoint": v1, "code": "500"}, 2},
		{"sluice_serve_requests_total", map[string]string{"model": "house", "endpoint": v2, "code": "400"}, 1},
		{"sluice_serve_requests_total", map[string]string{"model": "house", "endpoint": v2, "code": "200"}, 1},
		{"sluice_serve_requests_total", map[string]string{"model": "house", "endpoint": "GET /v2/health/ready", "code": "200"}, 1},
		{"sluice_serve_errors_total", map[string]string{"model": "house", "endpoint": v1, "reason": "input"}, 1},
		{"sluice_serve_errors_total", map[string]string{"model": "house", "endpoint": v1, "reason": "model"}, 1},
		{"sluice_serve_errors_total", map[string]string{"model": "house", "endpoint": v1, "reason": "panic"}, 1},
		{"sluice_serve_errors_total", map[string]string{"model": "house", "endpoint": v2, "reason": "input"}, 1},
		{"sluice_serve_predictions_total", map[string]string{"model": "house"}, 4 + 2},
	} {
		assert.Equal(t, c.want, metric(t, fams, c.name, c.labels).GetCounter().GetValue(), "%s%v", c.name, c.labels)
	}
	h := metric(t, fams, "sluice_serve_request_duration_seconds", map[string]string{"model": "house", "endpoint": v1}).GetHistogram()
	assert.Equal(t, uint64(5), h.GetSampleCount())
	assert.Positive(t, h.GetSampleSum())
	info := metric(t, fams, "sluice_serve_model_info", map[string]string{"model": "house", "version": "3"})
	assert.Equal(t, 1.0, info.GetGauge().GetValue())
	assert.Equal(t, 1.0, metric(t, fams, "sluice_serve_ready", nil).GetGauge().GetValue())
	assert.Contains(t, fams, "go_goroutines", "the Go runtime's metrics")

	// Each server has a registry of its own: a second one starts at zero.
	_, ts2 := newLoaded(t, housePredictor(), writeModel(t, testWeights))
	_, has := scrape(t, ts2.URL+"/metrics")["sluice_serve_requests_total"]
	assert.False(t, has, "a new server has answered no request")
}
