package diagnose

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// mutated is a pod as the webhook leaves it, with an Istio sidecar's token
// volume beside the webhook's.
func mutated() *corev1.Pod {
	env := []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: "arn:aws:iam::123456789012:role/r"},
		{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}}
	mount := corev1.VolumeMount{Name: "aws-iam-token", MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount"}
	token := func(name, audience, path string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: audience, Path: path}}}}}}
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "nb-0"},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default-editor",
			InitContainers:     []corev1.Container{{Name: "init", Env: env, VolumeMounts: []corev1.VolumeMount{mount}}},
			Containers: []corev1.Container{
				{Name: "notebook", Env: env, VolumeMounts: []corev1.VolumeMount{mount}},
				{Name: "istio-proxy", Env: env, VolumeMounts: []corev1.VolumeMount{mount, {Name: "istio-token", MountPath: "/var/run/secrets/tokens"}}},
			},
			// Istio's volume comes last, as it does when its injector runs after the webhook.
			Volumes: []corev1.Volume{token("aws-iam-token", "sts.amazonaws.com", "token"), token("istio-token", "istio-ca", "istio-token")},
		},
	}
}

func TestWhatTheWebhookWroteIsReadFromWhereItPoints(t *testing.T) {
	cases := map[string]struct {
		change        func(p *corev1.Pod)
		wantAudience  string
		wantUnmutated []string
	}{
		"the token mounted at AWS_WEB_IDENTITY_TOKEN_FILE, not Istio's": {wantAudience: "sts.amazonaws.com"},
		"a container the webhook did not reach": {
			change:        func(p *corev1.Pod) { p.Spec.Containers[1].Env = nil },
			wantAudience:  "sts.amazonaws.com",
			wantUnmutated: []string{"istio-proxy"},
		},
		"an init container the webhook did not reach": {
			change:        func(p *corev1.Pod) { p.Spec.InitContainers[0].Env = nil },
			wantAudience:  "sts.amazonaws.com",
			wantUnmutated: []string{"init"},
		},
		"a container the pod asks the webhook to skip": {
			change: func(p *corev1.Pod) {
				p.Spec.Containers[1].Env = nil
				p.Annotations = map[string]string{"eks.amazonaws.com/skip-containers": "istio-proxy"}
			},
			wantAudience: "sts.amazonaws.com",
		},
		"no volume where the variable points": {
			change: func(p *corev1.Pod) { p.Spec.Volumes = p.Spec.Volumes[1:] },
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			p := mutated()
			if tc.change != nil {
				tc.change(p)
			}
			got := podOf(p)
			g.Expect(got.RoleARN).To(Equal("arn:aws:iam::123456789012:role/r"))
			g.Expect(got.TokenAudience).To(Equal(tc.wantAudience))
			g.Expect(got.Unmutated).To(Equal(tc.wantUnmutated))
		})
	}
}
