package framework

import (
	"bytes"
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"

	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// Claims are the claims of a service-account token that IAM's web-identity
// federation reads.
type Claims = policy.Claims

// ServiceAccountToken asks the API server for a token of namespace/name
// with the given audience, as the kubelet does for a projected volume.
func (e *Env) ServiceAccountToken(ctx context.Context, namespace, name, audience string) (string, Claims, error) {
	tr, err := e.Clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", Claims{}, fmt.Errorf("requesting a token for %s/%s: %w", namespace, name, err)
	}
	claims, err := DecodeClaims(tr.Status.Token)
	return tr.Status.Token, claims, err
}

// DecodeClaims reads iss, sub and aud from a JWT without verifying it: the
// token came straight from the API server over TLS.
func DecodeClaims(token string) (Claims, error) { return policy.DecodeClaims(token) }

// EnsureNamespaceAndServiceAccount creates what Kubeflow's profile
// controller creates for a Profile (its namespace and default-editor) on
// targets without that controller.
func (e *Env) EnsureNamespaceAndServiceAccount(ctx context.Context, namespace, name string) error {
	_, err := e.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = e.Clientset.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// AWSCLIImage runs `aws` in the notebook stand-in pod.
const AWSCLIImage = "public.ecr.aws/aws-cli/aws-cli:2.22.35"

// RunNotebookPod starts a pod that runs as default-editor in namespace, as
// a Kubeflow notebook does, with the AWS CLI, and waits until it runs. env
// adds variables, such as AWS_ENDPOINT_URL for LocalStack.
func (e *Env) RunNotebookPod(ctx context.Context, namespace, name string, env []corev1.EnvVar) (*corev1.Pod, error) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app": "awskubeflowprofiles-e2e"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default-editor",
			Containers: []corev1.Container{{
				Name: "notebook", Image: AWSCLIImage,
				Command: []string{"sleep", "3600"},
				Env:     env,
			}},
		},
	}
	if err := e.Kube.Resources().Create(ctx, pod); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	if err := wait.For(conditions.New(e.Kube.Resources()).PodRunning(pod), wait.WithTimeout(5*time.Minute), wait.WithInterval(time.Second), wait.WithContext(ctx)); err != nil {
		return nil, fmt.Errorf("waiting for pod %s/%s to run: %w", namespace, name, err)
	}
	return pod, e.Kube.Resources().Get(ctx, name, namespace, pod)
}

// Exec runs a command in the pod's first container.
func (e *Env) Exec(ctx context.Context, pod *corev1.Pod, command ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	err := e.Kube.Resources().ExecInPod(ctx, pod.Namespace, pod.Name, pod.Spec.Containers[0].Name, command, &stdout, &stderr)
	if err != nil {
		return stdout.String(), fmt.Errorf("%v: %w: %s", command, err, stderr.String())
	}
	return stdout.String(), nil
}
