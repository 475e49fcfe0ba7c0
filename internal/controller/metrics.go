package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
)

// Metrics are the controller's collectors:
//
//   - awskubeflowprofiles_writes_total{resource,action}: writes made to IAM
//     and Kubernetes, by resource kind (oidc_provider, policy, role,
//     service_account, deployment, profile) and action (create, update,
//     delete, attach, detach, tag).
//   - awskubeflowprofiles_trust_findings{awskubeflowprofiles,reason}: roles
//     of Profiles no AwsKubeflowProfiles manages whose trust admits more
//     than their namespace's default-editor, or that could not be checked,
//     by how (AnySubject, WildcardSubject, ListedSubject, OtherProvider,
//     OtherPrincipal, Unevaluable, RoleMissing, CannotRead), as of the last
//     audit of each object.
type Metrics struct {
	writes        *prometheus.CounterVec
	trustFindings *prometheus.GaugeVec
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "awskubeflowprofiles_writes_total",
			Help: "Writes made by the operator to IAM and Kubernetes, by resource kind and action.",
		}, []string{"resource", "action"}),
		trustFindings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "awskubeflowprofiles_trust_findings",
			Help: "Roles of unmanaged Kubeflow Profiles whose trust admits more than the Profile's default-editor, or could not be checked, by reason, as of the last audit.",
		}, []string{"awskubeflowprofiles", "reason"}),
	}
	reg.MustRegister(m.writes, m.trustFindings)
	return m
}

// setTrustFindings replaces the object's trust finding counts.
func (m *Metrics) setTrustFindings(object string, findings []v1alpha1.TrustFinding) {
	m.trustFindings.DeletePartialMatch(prometheus.Labels{"awskubeflowprofiles": object})
	for _, f := range findings {
		m.trustFindings.WithLabelValues(object, f.Reason).Inc()
	}
}

// TrustFindings is the gauge of trust findings, exposed for tests.
func (m *Metrics) TrustFindings() *prometheus.GaugeVec { return m.trustFindings }

// Writes is the counter of writes, exposed for tests.
func (m *Metrics) Writes() *prometheus.CounterVec { return m.writes }
