package framework

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// The EKS pod identity webhook's names, as its documentation gives them.
const (
	tokenVolume          = "aws-iam-token"
	tokenMountDir        = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	tokenExpiration      = 86400
	audienceAnnotation   = "eks.amazonaws.com/audience"
	skipContainersAnnot  = "eks.amazonaws.com/skip-containers"
	podIdentityWebhookID = "iam-for-pods.amazonaws.com"
)

// mutateForPodIdentity writes into pod what the EKS pod identity webhook
// writes into a pod whose service account names roleARN: AWS_ROLE_ARN,
// AWS_WEB_IDENTITY_TOKEN_FILE, AWS_REGION, AWS_DEFAULT_REGION and
// AWS_STS_REGIONAL_ENDPOINTS in each container the pod does not ask it to
// skip, and a projected token for audience mounted in them. As the webhook
// does, it keeps a variable, volume or mount the pod already has.
func mutateForPodIdentity(pod *corev1.Pod, roleARN, region, audience string) {
	env := []corev1.EnvVar{
		{Name: "AWS_ROLE_ARN", Value: roleARN},
		{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: TokenPath},
		{Name: "AWS_REGION", Value: region},
		{Name: "AWS_DEFAULT_REGION", Value: region},
		{Name: "AWS_STS_REGIONAL_ENDPOINTS", Value: "regional"},
	}
	skip := strings.Split(pod.Annotations[skipContainersAnnot], ",")
	mutate := func(containers []corev1.Container) {
		for i := range containers {
			c := &containers[i]
			if slices.Contains(skip, c.Name) {
				continue
			}
			for _, v := range env {
				if !slices.ContainsFunc(c.Env, func(have corev1.EnvVar) bool { return have.Name == v.Name }) {
					c.Env = append(c.Env, v)
				}
			}
			if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == tokenVolume }) {
				c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: tokenVolume, MountPath: tokenMountDir, ReadOnly: true})
			}
		}
	}
	mutate(pod.Spec.InitContainers)
	mutate(pod.Spec.Containers)
	if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == tokenVolume }) {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: tokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience: audience, ExpirationSeconds: ptr.To[int64](tokenExpiration), Path: "token",
			}}},
		}}})
	}
}

// PodIdentityWebhook stands in for the EKS pod identity webhook, whose
// module is not served here: a real mutating admission webhook that the
// suite serves on loopback with a CA of its own, registered, as EKS
// registers its own, under the name pod-identity-webhook and called at a
// URL. It writes mutateForPodIdentity into the pods it is sent whose service
// account is annotated with a role, read when the pod is created, so a pod
// created before the annotation is left as it was. It needs an API server
// on this machine: the node target's.
type PodIdentityWebhook struct {
	env    *Env
	server *http.Server
	name   string
	// errs are the admission requests it could not answer; the API server
	// then creates the pod unmutated (failurePolicy Ignore, as on EKS).
	errs chan error
}

// StartPodIdentityWebhook serves the webhook and registers it for the pods
// created in namespaces. Stop removes it.
func (e *Env) StartPodIdentityWebhook(ctx context.Context, namespaces ...string) (*PodIdentityWebhook, error) {
	caPEM, cert, err := loopbackCertificate()
	if err != nil {
		return nil, err
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the pod identity webhook: %w", err)
	}
	w := &PodIdentityWebhook{env: e, name: "pod-identity-webhook", errs: make(chan error, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", w.serveMutate)
	w.server = &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = w.server.ServeTLS(listener, "", "") }()

	cfg := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: w.name, Labels: map[string]string{"app": "awskubeflowprofiles-e2e"}},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name: podIdentityWebhookID,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL: ptr.To("https://" + listener.Addr().String() + "/mutate"), CABundle: caPEM,
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: namespaces,
			}}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
		}},
	}
	if _, err := e.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		_ = w.server.Close()
		return nil, fmt.Errorf("registering the pod identity webhook: %w", err)
	}
	return w, nil
}

// Stop unregisters the webhook and stops serving it. It returns the first
// admission request the webhook could not answer, if any.
func (w *PodIdentityWebhook) Stop(ctx context.Context) error {
	err := w.env.Clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, w.name, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		err = nil
	}
	closeErr := w.server.Close()
	select {
	case failed := <-w.errs:
		return errors.Join(failed, err, closeErr)
	default:
		return errors.Join(err, closeErr)
	}
}

func (w *PodIdentityWebhook) serveMutate(rw http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		w.fail(rw, fmt.Errorf("pod identity webhook: an admission review it cannot read: %v", err))
		return
	}
	resp, err := w.mutate(r.Context(), review.Request)
	if err != nil {
		w.fail(rw, fmt.Errorf("pod identity webhook: %w", err))
		return
	}
	review.Response, review.Request = resp, nil
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(review)
}

func (w *PodIdentityWebhook) fail(rw http.ResponseWriter, err error) {
	select {
	case w.errs <- err:
	default:
	}
	http.Error(rw, err.Error(), http.StatusBadRequest)
}

// mutate answers one admission request for a pod.
func (w *PodIdentityWebhook) mutate(ctx context.Context, req *admissionv1.AdmissionRequest) (*admissionv1.AdmissionResponse, error) {
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	pod := &corev1.Pod{}
	if err := json.Unmarshal(req.Object.Raw, pod); err != nil {
		return nil, fmt.Errorf("reading pod %s/%s: %w", req.Namespace, req.Name, err)
	}
	name := pod.Spec.ServiceAccountName
	if name == "" {
		name = "default"
	}
	sa, err := w.env.Clientset.CoreV1().ServiceAccounts(req.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading service account %s/%s: %w", req.Namespace, name, err)
	}
	roleARN := sa.Annotations[desired.RoleARNAnnotation]
	if roleARN == "" {
		return resp, nil
	}
	audience := sa.Annotations[audienceAnnotation]
	if audience == "" {
		audience = policy.Audience
	}
	mutateForPodIdentity(pod, roleARN, w.env.Cluster.Region, audience)
	// "add" replaces a member that is there, so one operation a field
	// serves both a pod with volumes and one without.
	patch := []map[string]any{
		{"op": "add", "path": "/spec/containers", "value": pod.Spec.Containers},
		{"op": "add", "path": "/spec/volumes", "value": pod.Spec.Volumes},
	}
	if len(pod.Spec.InitContainers) > 0 {
		patch = append(patch, map[string]any{"op": "add", "path": "/spec/initContainers", "value": pod.Spec.InitContainers})
	}
	raw, err := json.Marshal(patch)
	if err != nil {
		return nil, err
	}
	resp.Patch, resp.PatchType = raw, ptr.To(admissionv1.PatchTypeJSONPatch)
	return resp, nil
}

// loopbackCertificate is a CA, PEM-encoded for the webhook's registration,
// and a serving certificate it signed for 127.0.0.1.
func loopbackCertificate() ([]byte, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "awskubeflowprofiles-e2e pod identity webhook CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}, nil
}
