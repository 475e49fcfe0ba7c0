package controller

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the controller's collectors:
//
//   - awskubeflowprofiles_writes_total{resource,action}: writes made to IAM
//     and Kubernetes, by resource kind (oidc_provider, policy, role,
//     service_account, deployment, profile) and action (create, update,
//     delete, attach, detach, tag).
type Metrics struct {
	writes *prometheus.CounterVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awskubeflowprofiles_writes_total",
			Help: "Writes made by the operator to IAM and Kubernetes, by resource kind and action.",
		}, []string{"resource", "action"}),
	}
	reg.MustRegister(m.writes)
	return m
}

// Writes is the counter of writes, exposed for tests.
func (m *Metrics) Writes() *prometheus.CounterVec { return m.writes }
