package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/s3mounts/s3mounts/agent/client"
)

// Metrics are the agent's Prometheus metrics, in a registry of their own.
// The reconciler increments ReconcileErrors and WorkerRestarts; the API
// counts its requests; mount states are read from the Controller at scrape
// time. No metric ever carries a secret, or a secret's length.
type Metrics struct {
	// ReconcileErrors counts failed mount/unmount attempts; label "connector".
	ReconcileErrors *prometheus.CounterVec
	// WorkerRestarts counts restarts of dead mount workers; label "connector".
	WorkerRestarts *prometheus.CounterVec
	// APIRequests counts socket API requests; labels "route" (the route's
	// pattern, never the raw path) and "code" (HTTP status).
	APIRequests *prometheus.CounterVec
	// APIDuration is the latency of socket API requests by route
	// (the events stream is not timed: it lasts as long as the client).
	APIDuration *prometheus.HistogramVec
	Registry    *prometheus.Registry
}

// allStates lists every connector state, so that each gauge series exists
// (0 or 1) whatever the current state.
var allStates = []client.State{client.StateInactive, client.StateMounting, client.StateMounted,
	client.StateUnmounting, client.StateError}

// NewMetrics creates the registry and the metrics; ctrl (may be nil) feeds
// the mount-state gauges at scrape time.
func NewMetrics(ctrl Controller) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		ReconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3mounts_reconcile_errors_total", Help: "Failed mount or unmount attempts."}, []string{"connector"}),
		WorkerRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3mounts_worker_restarts_total", Help: "Restarts of dead mount workers."}, []string{"connector"}),
		APIRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3mounts_api_requests_total", Help: "Socket API requests by route and HTTP status."},
			[]string{"route", "code"}),
		APIDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "s3mounts_api_request_duration_seconds", Help: "Socket API request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}},
			[]string{"route"}),
		Registry: reg,
	}
	reg.MustRegister(m.ReconcileErrors, m.WorkerRestarts, m.APIRequests, m.APIDuration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "s3mounts_build_info", Help: "Always 1; the version is a label.",
			ConstLabels: prometheus.Labels{"version": Version}}, func() float64 { return 1 }),
	)
	if ctrl != nil {
		reg.MustRegister(&stateCollector{ctrl: ctrl})
	}
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

var (
	stateDesc = prometheus.NewDesc("s3mounts_connector_state",
		"1 for the connector's current state, 0 for the others.", []string{"connector", "state"}, nil)
	activeDesc = prometheus.NewDesc("s3mounts_connector_active",
		"1 when the connector is desired active (file or API activation).", []string{"connector"}, nil)
	stagingDesc = prometheus.NewDesc("s3mounts_connector_staging_bytes",
		"Disk space the mount's write staging takes in cache_dir (built-in backend).", []string{"connector"}, nil)
)

// stateCollector reads connector states from the Controller at each scrape.
type stateCollector struct{ ctrl Controller }

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- activeDesc
	ch <- stagingDesc
}

func (s *stateCollector) Collect(ch chan<- prometheus.Metric) {
	for _, v := range s.ctrl.Connectors() {
		c := v.Connector
		for _, st := range allStates {
			val := 0.0
			if c.State == st {
				val = 1
			}
			ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, val, c.ID, string(st))
		}
		act := 0.0
		if c.Active {
			act = 1
		}
		ch <- prometheus.MustNewConstMetric(activeDesc, prometheus.GaugeValue, act, c.ID)
		if c.StagingBytes != nil {
			ch <- prometheus.MustNewConstMetric(stagingDesc, prometheus.GaugeValue, float64(*c.StagingBytes), c.ID)
		}
	}
}
