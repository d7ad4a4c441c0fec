package plugins

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

type metrics struct {
	calls    *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	restarts *prometheus.CounterVec
	up       *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "parley", Subsystem: "plugin", Name: "calls_total",
			Help: "Calls made to policy plugins.",
		}, []string{"plugin", "method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "parley", Subsystem: "plugin", Name: "call_errors_total",
			Help: "Calls to policy plugins that returned an error (including deadline exceeded).",
		}, []string{"plugin", "method"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "parley", Subsystem: "plugin", Name: "call_duration_seconds",
			Help:    "Latency of calls to policy plugins.",
			Buckets: []float64{50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1.6e-3, 3.2e-3, 6.4e-3, 12.8e-3, 25.6e-3, 0.1, 0.5, 2},
		}, []string{"plugin", "method"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "parley", Subsystem: "plugin", Name: "restarts_total",
			Help: "Times a policy plugin was restarted after exiting or failing health checks.",
		}, []string{"plugin"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "parley", Subsystem: "plugin", Name: "up",
			Help: "1 while the policy plugin is running and healthy.",
		}, []string{"plugin"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.calls, m.errors, m.latency, m.restarts, m.up} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("plugin metrics: %w (one Supervisor per registry)", err)
			}
			return nil, fmt.Errorf("plugin metrics: %w", err)
		}
	}
	return m, nil
}

// interceptor puts the default deadline on calls without one and records
// metrics for the plugin.
func (m *metrics) interceptor(plugin string, timeout time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		start := time.Now()
		err := invoker(ctx, method, req, reply, cc, opts...)
		m.latency.WithLabelValues(plugin, method).Observe(time.Since(start).Seconds())
		m.calls.WithLabelValues(plugin, method).Inc()
		if err != nil {
			m.errors.WithLabelValues(plugin, method).Inc()
		}
		return err
	}
}
