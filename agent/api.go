package agent

// Stub of the socket API's entry points; the real server replaces this file.

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/s3mounts/s3mounts/config"
)

// Metrics are the agent's Prometheus metrics that the reconciler updates.
// Mount states and API request counts are collected by the API itself.
type Metrics struct {
	// ReconcileErrors counts failed mount/unmount attempts; label "connector".
	ReconcileErrors *prometheus.CounterVec
	// WorkerRestarts counts restarts of dead mount workers; label "connector".
	WorkerRestarts *prometheus.CounterVec
	Registry       *prometheus.Registry
}

// NewMetrics creates the registry and the metrics; ctrl feeds the
// mount-state gauges at scrape time.
func NewMetrics(ctrl Controller) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		ReconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "s3mounts_reconcile_errors_total", Help: "Failed mount or unmount attempts."}, []string{"connector"}),
		WorkerRestarts:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "s3mounts_worker_restarts_total", Help: "Restarts of dead mount workers."}, []string{"connector"}),
		Registry:        reg,
	}
	reg.MustRegister(m.ReconcileErrors, m.WorkerRestarts)
	return m
}

// APIOptions configure the socket API.
type APIOptions struct {
	Controller Controller
	Agent      *config.Agent
	Metrics    *Metrics
	Log        *slog.Logger
}

// API is the socket API server.
type API struct{ o APIOptions }

// NewAPI returns the API server.
func NewAPI(o APIOptions) *API { return &API{o: o} }

// Serve answers on ln until ctx is done, then closes ln. Each connection's
// peer credentials (SO_PEERCRED) identify the caller.
func (a *API) Serve(ctx context.Context, ln net.Listener) error { return errors.New("stub") }

// MetricsHandler serves /metrics for the optional TCP metrics_listen address.
func (a *API) MetricsHandler() http.Handler { return http.NotFoundHandler() }
