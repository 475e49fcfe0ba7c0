package framework

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/e2e-framework/klient/k8s"
	"sigs.k8s.io/e2e-framework/klient/wait"
	"sigs.k8s.io/e2e-framework/klient/wait/conditions"

	"github.com/awskubeflowprofiles/operator/internal/desired"
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
// targets without that controller. As Kubeflow does, the namespace is owned
// by the Profile, so where a garbage collector runs, deleting the Profile
// deletes the namespace.
func (e *Env) EnsureNamespaceAndServiceAccount(ctx context.Context, namespace, name string) error {
	profile := desired.NewProfileObject()
	if err := e.Kube.Resources().Get(ctx, namespace, "", profile); err != nil {
		return fmt.Errorf("reading Kubeflow Profile %s: %w", namespace, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace, OwnerReferences: []metav1.OwnerReference{{
		APIVersion: desired.ProfileGVK.GroupVersion().String(), Kind: desired.ProfileGVK.Kind,
		Name: profile.GetName(), UID: profile.GetUID(), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}}}
	_, err := e.Clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	_, err = e.Clientset.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// TokenPath is where the EKS pod identity webhook mounts the projected
// service-account token.
const TokenPath = tokenMountDir + "/token"

// NotebookPod is a notebook stand-in, running as default-editor in
// namespace, as a user writes it: where pods reach AWS through an emulator,
// the variables that point the SDK at it, and nothing of the pod identity
// webhook's.
func (e *Env) NotebookPod(namespace, name string) *corev1.Pod {
	var env []corev1.EnvVar
	if e.PodAWSEndpoint != "" {
		// The SDK's web identity provider calls STS with its own client,
		// which takes the STS-specific endpoint, not the global one.
		env = append(env, corev1.EnvVar{Name: "AWS_ENDPOINT_URL", Value: e.PodAWSEndpoint},
			corev1.EnvVar{Name: "AWS_ENDPOINT_URL_STS", Value: e.PodAWSEndpoint})
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"app": "awskubeflowprofiles-e2e"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default-editor",
			RestartPolicy:      corev1.RestartPolicyNever,
			Containers:         []corev1.Container{{Name: "notebook", Image: e.NotebookImage, ImagePullPolicy: corev1.PullNever, Env: env}},
		},
	}
}

// WebIdentityPod is NotebookPod with the EKS pod identity webhook's
// documented mutation for roleARN written into it (see mutateForPodIdentity).
// It is for targets without the webhook, whose module cannot be built here.
func (e *Env) WebIdentityPod(namespace, name, roleARN string) *corev1.Pod {
	pod := e.NotebookPod(namespace, name)
	mutateForPodIdentity(pod, roleARN, e.Cluster.Region, policy.Audience)
	return pod
}

// RunToCompletion creates the pod, waits until it has run to its end, and
// returns its phase and log, read through the kubelet.
func (e *Env) RunToCompletion(ctx context.Context, pod *corev1.Pod) (corev1.PodPhase, string, error) {
	if err := e.Kube.Resources().Create(ctx, pod); err != nil {
		return "", "", err
	}
	done := func(obj k8s.Object) bool {
		p := obj.(*corev1.Pod)
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	}
	if err := wait.For(conditions.New(e.Kube.Resources()).ResourceMatch(pod, done), wait.WithTimeout(3*time.Minute), wait.WithInterval(time.Second), wait.WithContext(ctx)); err != nil {
		return pod.Status.Phase, "", fmt.Errorf("waiting for pod %s/%s to end: %w; %s", pod.Namespace, pod.Name, err, e.whyNotDone(ctx, pod))
	}
	raw, err := e.Clientset.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	return pod.Status.Phase, string(raw), err
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

// whyNotDone says what holds a pod up: its phase, each container's waiting
// reason (ErrImageNeverPull, CreateContainerError, …) and its events.
func (e *Env) whyNotDone(ctx context.Context, pod *corev1.Pod) string {
	parts := []string{fmt.Sprintf("phase %s", pod.Status.Phase)}
	for _, c := range pod.Status.ContainerStatuses {
		if w := c.State.Waiting; w != nil {
			parts = append(parts, fmt.Sprintf("container %s waiting: %s %s", c.Name, w.Reason, w.Message))
		}
	}
	events, err := e.Clientset.CoreV1().Events(pod.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
	if err == nil {
		for _, ev := range events.Items {
			parts = append(parts, fmt.Sprintf("event %s %s: %s", ev.Type, ev.Reason, ev.Message))
		}
	}
	return strings.Join(parts, "; ")
}
