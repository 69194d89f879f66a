package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

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
	// APIRefused counts callers refused for holding too much; label
	// "limit" (connections or event_streams).
	APIRefused *prometheus.CounterVec
	Registry   *prometheus.Registry
	// Node holds the per-node aggregates only (no connector id, no
	// per-connector state): what metrics_listen serves unless
	// metrics_connectors = true.
	Node *prometheus.Registry
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
		APIRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "s3mounts_api_refused_total", Help: "Socket API connections or event streams refused by the per-uid limits."},
			[]string{"limit"}),
		Registry: reg,
	}
	reg.MustRegister(m.ReconcileErrors, m.WorkerRestarts, m.APIRequests, m.APIDuration, m.APIRefused,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "s3mounts_build_info", Help: "Always 1; the version is a label.",
			ConstLabels: prometheus.Labels{"version": Version}}, func() float64 { return 1 }),
	)
	node := prometheus.NewRegistry()
	node.MustRegister(m.APIRequests, m.APIDuration, m.APIRefused,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "s3mounts_build_info", Help: "Always 1; the version is a label.",
			ConstLabels: prometheus.Labels{"version": Version}}, func() float64 { return 1 }),
	)
	agg := &nodeCollector{ctrl: ctrl, m: m}
	node.MustRegister(agg)
	reg.MustRegister(agg)
	m.Node = node
	if ctrl != nil {
		reg.MustRegister(&stateCollector{ctrl: ctrl})
	}
	return m
}

// handler serves the registry in the Prometheus text format.
func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// nodeHandler serves the per-node aggregates only.
func (m *Metrics) nodeHandler() http.Handler {
	return promhttp.HandlerFor(m.Node, promhttp.HandlerOpts{Registry: m.Node})
}

var (
	nodeStateDesc = prometheus.NewDesc("s3mounts_node_connectors",
		"Number of connectors in each state on this node.", []string{"state"}, nil)
	nodeReconcileDesc = prometheus.NewDesc("s3mounts_node_reconcile_errors_total",
		"Failed mount or unmount attempts, all connectors together.", nil, nil)
	nodeRestartsDesc = prometheus.NewDesc("s3mounts_node_worker_restarts_total",
		"Restarts of dead mount workers, all connectors together.", nil, nil)
)

// nodeCollector sums the per-connector series into per-node ones.
type nodeCollector struct {
	ctrl Controller
	m    *Metrics
}

func (n *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- nodeStateDesc
	ch <- nodeReconcileDesc
	ch <- nodeRestartsDesc
}

func (n *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	if n.ctrl != nil {
		count := map[client.State]int{}
		for _, v := range n.ctrl.Connectors() {
			count[v.Connector.State]++
		}
		for _, st := range allStates {
			ch <- prometheus.MustNewConstMetric(nodeStateDesc, prometheus.GaugeValue, float64(count[st]), string(st))
		}
	}
	ch <- prometheus.MustNewConstMetric(nodeReconcileDesc, prometheus.CounterValue, sumCounters(n.m.ReconcileErrors))
	ch <- prometheus.MustNewConstMetric(nodeRestartsDesc, prometheus.CounterValue, sumCounters(n.m.WorkerRestarts))
}

// sumCounters adds up every series of a counter vector.
func sumCounters(v *prometheus.CounterVec) float64 {
	ch := make(chan prometheus.Metric, 16)
	go func() { v.Collect(ch); close(ch) }()
	sum := 0.0
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) == nil {
			sum += d.GetCounter().GetValue()
		}
	}
	return sum
}

var (
	stateDesc = prometheus.NewDesc("s3mounts_connector_state",
		"1 for the connector's current state, 0 for the others.", []string{"connector", "state"}, nil)
	activeDesc = prometheus.NewDesc("s3mounts_connector_active",
		"1 when the connector is desired active (file or API activation).", []string{"connector"}, nil)
	stagingDesc = prometheus.NewDesc("s3mounts_connector_staging_bytes",
		"Disk space the mount's write staging takes in cache_dir (built-in backend).", []string{"connector"}, nil)
	requestsDesc = prometheus.NewDesc("s3mounts_connector_s3_requests_total",
		"S3 requests the mount has sent, by operation (built-in backend).", []string{"connector", "op"}, nil)
	metaBytesDesc = prometheus.NewDesc("s3mounts_connector_metadata_cache_bytes",
		"Memory the mount's metadata cache takes (built-in backend; bounded by [cache] metadata_max).", []string{"connector"}, nil)
	metaEntriesDesc = prometheus.NewDesc("s3mounts_connector_metadata_cache_entries",
		"Entries the mount's metadata cache holds (built-in backend).", []string{"connector"}, nil)
)

// stateCollector reads connector states from the Controller at each scrape.
type stateCollector struct{ ctrl Controller }

func (s *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- activeDesc
	ch <- stagingDesc
	ch <- requestsDesc
	ch <- metaBytesDesc
	ch <- metaEntriesDesc
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
		if st := v.Stats; st != nil {
			for op, n := range st.Requests {
				ch <- prometheus.MustNewConstMetric(requestsDesc, prometheus.CounterValue, float64(n), c.ID, op)
			}
			ch <- prometheus.MustNewConstMetric(metaBytesDesc, prometheus.GaugeValue, float64(st.MetadataBytes), c.ID)
			ch <- prometheus.MustNewConstMetric(metaEntriesDesc, prometheus.GaugeValue, float64(st.MetadataEntries), c.ID)
		}
	}
}
