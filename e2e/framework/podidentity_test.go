package framework

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/awskubeflowprofiles/operator/internal/policy"
)

const testRole = "arn:aws:iam::123456789012:role/kubeflow/c/team-a"

// admit sends pod to the webhook's handler, as the API server does, and
// returns the pod its answer makes.
func admit(t *testing.T, w *PodIdentityWebhook, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	g := NewWithT(t)
	raw, err := json.Marshal(pod)
	g.Expect(err).NotTo(HaveOccurred())
	review, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &admissionv1.AdmissionRequest{UID: "u-1", Namespace: pod.Namespace, Object: runtime.RawExtension{Raw: raw}},
	})
	g.Expect(err).NotTo(HaveOccurred())
	rec := httptest.NewRecorder()
	w.serveMutate(rec, httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(review)))
	g.Expect(rec.Code).To(Equal(http.StatusOK), rec.Body.String())
	var answer admissionv1.AdmissionReview
	g.Expect(json.Unmarshal(rec.Body.Bytes(), &answer)).To(Succeed())
	g.Expect(answer.Response.UID).To(BeEquivalentTo("u-1"))
	g.Expect(answer.Response.Allowed).To(BeTrue())
	if answer.Response.Patch == nil {
		return pod
	}
	patch, err := jsonpatch.DecodePatch(answer.Response.Patch)
	g.Expect(err).NotTo(HaveOccurred())
	patched, err := patch.Apply(raw)
	g.Expect(err).NotTo(HaveOccurred())
	out := &corev1.Pod{}
	g.Expect(json.Unmarshal(patched, out)).To(Succeed())
	return out
}

func envMap(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		out[e.Name] = e.Value
	}
	return out
}

func TestPodIdentityWebhookMutatesAsEKSDoes(t *testing.T) {
	editor := func(annotations map[string]string) *corev1.ServiceAccount {
		return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "default-editor", Annotations: annotations}}
	}
	pod := func() *corev1.Pod {
		p := (&Env{}).NotebookPod("team-a", "nb")
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "x"}}
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "sidecar", Image: "x",
			Env: []corev1.EnvVar{{Name: "AWS_REGION", Value: "eu-west-1"}}})
		return p
	}
	t.Run("a service account with a role: every container, the token for its audience", func(t *testing.T) {
		g := NewWithT(t)
		w := &PodIdentityWebhook{env: &Env{Clientset: fake.NewClientset(editor(map[string]string{
			"eks.amazonaws.com/role-arn": testRole, audienceAnnotation: "vault"}))}, errs: make(chan error, 1)}
		w.env.Cluster.Region = "us-west-2"
		out := admit(t, w, pod())
		for _, c := range append(out.Spec.InitContainers, out.Spec.Containers...) {
			g.Expect(envMap(c)).To(HaveKeyWithValue("AWS_ROLE_ARN", testRole), c.Name)
			g.Expect(envMap(c)).To(HaveKeyWithValue("AWS_WEB_IDENTITY_TOKEN_FILE", TokenPath), c.Name)
			g.Expect(envMap(c)).To(HaveKeyWithValue("AWS_STS_REGIONAL_ENDPOINTS", "regional"), c.Name)
			g.Expect(c.VolumeMounts).To(ContainElement(corev1.VolumeMount{Name: tokenVolume, MountPath: tokenMountDir, ReadOnly: true}), c.Name)
		}
		g.Expect(envMap(out.Spec.Containers[0])).To(HaveKeyWithValue("AWS_REGION", "us-west-2"))
		g.Expect(envMap(out.Spec.Containers[1])).To(HaveKeyWithValue("AWS_REGION", "eu-west-1"), "a variable the pod sets is kept")
		g.Expect(out.Spec.Volumes).To(HaveLen(1))
		g.Expect(out.Spec.Volumes[0].Projected.Sources[0].ServiceAccountToken.Audience).To(Equal("vault"))
	})
	t.Run("containers the pod asks it to skip", func(t *testing.T) {
		g := NewWithT(t)
		w := &PodIdentityWebhook{env: &Env{Clientset: fake.NewClientset(editor(map[string]string{"eks.amazonaws.com/role-arn": testRole}))}, errs: make(chan error, 1)}
		p := pod()
		p.Annotations = map[string]string{skipContainersAnnot: "init,sidecar"}
		out := admit(t, w, p)
		g.Expect(envMap(out.Spec.Containers[0])).To(HaveKey("AWS_ROLE_ARN"))
		g.Expect(envMap(out.Spec.Containers[1])).NotTo(HaveKey("AWS_ROLE_ARN"))
		g.Expect(envMap(out.Spec.InitContainers[0])).NotTo(HaveKey("AWS_ROLE_ARN"))
		g.Expect(out.Spec.Volumes[0].Projected.Sources[0].ServiceAccountToken.Audience).To(Equal(policy.Audience))
	})
	t.Run("a service account without a role: the pod as it was", func(t *testing.T) {
		g := NewWithT(t)
		w := &PodIdentityWebhook{env: &Env{Clientset: fake.NewClientset(editor(nil))}, errs: make(chan error, 1)}
		g.Expect(admit(t, w, pod())).To(Equal(pod()))
	})
	t.Run("a pod already mutated: the same pod", func(t *testing.T) {
		g := NewWithT(t)
		w := &PodIdentityWebhook{env: &Env{Clientset: fake.NewClientset(editor(map[string]string{"eks.amazonaws.com/role-arn": testRole}))}, errs: make(chan error, 1)}
		once := admit(t, w, pod())
		g.Expect(admit(t, w, once.DeepCopy())).To(Equal(once))
	})
}

// The registration's CA verifies the certificate the webhook serves at
// 127.0.0.1, as the API server checks it.
func TestLoopbackCertificateVerifies(t *testing.T) {
	g := NewWithT(t)
	caPEM, cert, err := loopbackCertificate()
	g.Expect(err).NotTo(HaveOccurred())
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	g.Expect(pool.AppendCertsFromPEM(caPEM)).To(BeTrue())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
	resp, err := client.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	_ = resp.Body.Close()
}
