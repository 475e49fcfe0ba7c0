package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// deploymentLogs names a Deployment whose pods' logs a failed run keeps.
type deploymentLogs struct {
	Namespace, Name string
}

// The components a failure on a cluster target is usually explained by:
// the operator, the pod identity webhook that mutates notebook pods, and
// Kubeflow's profile controller, which annotates default-editor and, for
// Profiles the operator does not manage, edits the role's trust.
var (
	operatorDeployment   = deploymentLogs{OperatorNamespace, "awskubeflowprofiles-controller-manager"}
	webhookDeployment    = deploymentLogs{"pod-identity-webhook", "pod-identity-webhook"}
	kubeflowProfiles     = deploymentLogs{"kubeflow", "profiles-deployment"}
	clusterComponentLogs = []deploymentLogs{operatorDeployment, webhookDeployment, kubeflowProfiles}
)

// writeDeploymentLogs writes the whole log of every container of every pod
// of each Deployment, and of its previous run after a restart, into
// dir/<namespace>/<pod>/<container>.log. A Deployment that is not there is
// noted in dir/missing.txt: on EKS the webhook runs on the control plane. It
// goes on past every failure and returns them all.
func writeDeploymentLogs(ctx context.Context, c kubernetes.Interface, dir string, deployments []deploymentLogs) error {
	var errs []error
	var missing []string
	for _, d := range deployments {
		dep, err := c.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			missing = append(missing, fmt.Sprintf("deployment %s/%s: not found\n", d.Namespace, d.Name))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading deployment %s/%s: %w", d.Namespace, d.Name, err))
			continue
		}
		selector, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
		if err != nil {
			errs = append(errs, fmt.Errorf("deployment %s/%s: %w", d.Namespace, d.Name, err))
			continue
		}
		pods, err := c.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: selector.String()})
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the pods of deployment %s/%s: %w", d.Namespace, d.Name, err))
			continue
		}
		for _, pod := range pods.Items {
			errs = append(errs, writePodLogs(ctx, c, filepath.Join(dir, d.Namespace, pod.Name), &pod))
		}
	}
	if len(missing) > 0 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return errors.Join(append(errs, err)...)
		}
		var text []byte
		for _, m := range missing {
			text = append(text, m...)
		}
		errs = append(errs, os.WriteFile(filepath.Join(dir, "missing.txt"), text, 0o644))
	}
	return errors.Join(errs...)
}

func writePodLogs(ctx context.Context, c kubernetes.Interface, dir string, pod *corev1.Pod) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var errs []error
	restarted := map[string]bool{}
	for _, s := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
		restarted[s.Name] = s.RestartCount > 0
	}
	for _, container := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		runs := []bool{false}
		if restarted[container.Name] {
			runs = append(runs, true)
		}
		for _, previous := range runs {
			file := container.Name + ".log"
			if previous {
				file = container.Name + ".previous.log"
			}
			raw, err := c.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: container.Name, Previous: previous}).DoRaw(ctx)
			if err != nil {
				raw = fmt.Appendf(nil, "reading the log: %v\n", err)
			}
			errs = append(errs, os.WriteFile(filepath.Join(dir, file), raw, 0o644))
		}
	}
	return errors.Join(errs...)
}
