package awsiam

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the collectors of outbound AWS calls:
//
//   - awskubeflowprofiles_aws_calls_total{service,operation,outcome}: calls by
//     outcome (success, not_found, throttled, terminal, unsupported, error).
//   - awskubeflowprofiles_aws_call_duration_seconds{service,operation}:
//     latency, retries by the SDK included.
type Metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awskubeflowprofiles_aws_calls_total",
			Help: "AWS API calls made by the operator, by service, operation and outcome.",
		}, []string{"service", "operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "awskubeflowprofiles_aws_call_duration_seconds",
			Help:    "Latency of AWS API calls made by the operator, SDK retries included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, []string{"service", "operation"}),
	}
	reg.MustRegister(m.calls, m.duration)
	return m
}

// Calls is the counter of calls, exposed for tests.
func (m *Metrics) Calls() *prometheus.CounterVec { return m.calls }

func outcome(err error) string {
	switch {
	case err == nil:
		return "success"
	case IsNotFound(err):
		return "not_found"
	case IsThrottled(err):
		return "throttled"
	case IsUnsupported(err):
		return "unsupported"
	case IsTerminal(err):
		return "terminal"
	default:
		return "error"
	}
}
