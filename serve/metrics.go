package serve

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are a server's Prometheus metrics, in a registry of its own
// (never the global default), served on GET /metrics. Every series has
// the label model.
type metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.CounterVec   // sluice_serve_requests_total{endpoint, code}
	latency     *prometheus.HistogramVec // sluice_serve_request_duration_seconds{endpoint}
	errors      *prometheus.CounterVec   // sluice_serve_errors_total{endpoint, reason}
	predictions prometheus.Counter       // sluice_serve_predictions_total
	inflight    prometheus.Gauge         // sluice_serve_requests_in_flight
	ready       prometheus.Gauge         // sluice_serve_ready
	info        *prometheus.GaugeVec     // sluice_serve_model_info{version, digest, uri}
}

func newMetrics(model string) *metrics {
	labels := prometheus.Labels{"model": model}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_serve_requests_total", ConstLabels: labels,
			Help: "HTTP requests answered, by endpoint (the route's pattern) and status code.",
		}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_serve_request_duration_seconds", ConstLabels: labels,
			Help:    "Time from a request's arrival to its answer, by endpoint.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_serve_errors_total", ConstLabels: labels,
			Help: "Requests answered with an error, by endpoint and reason: input (400), model (500), panic (500), not_ready (503), not_found (404).",
		}, []string{"endpoint", "reason"}),
		predictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_serve_predictions_total", ConstLabels: labels,
			Help: "Instances predicted: a request may hold several (v1 instances, a v2 batch).",
		}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_serve_requests_in_flight", ConstLabels: labels,
			Help: "Requests being answered.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_serve_ready", ConstLabels: labels,
			Help: "1 when the model is loaded and the server is not draining.",
		}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_serve_model_info", ConstLabels: labels,
			Help: "1 for the loaded model, labelled with its version, digest and URI.",
		}, []string{"version", "digest", "uri"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.errors, m.predictions, m.inflight, m.ready, m.info,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// loaded records the loaded model.
func (m *metrics) loaded(mod Model) {
	m.info.WithLabelValues(mod.Version, mod.Digest, mod.URI).Set(1)
	m.ready.Set(1)
}

// observe records an answered request.
func (m *metrics) observe(endpoint string, code int, took time.Duration) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(endpoint).Observe(took.Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
