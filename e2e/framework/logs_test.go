package framework

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestWriteDeploymentLogs(t *testing.T) {
	labels := map[string]string{"app": "profiles"}
	c := fake.NewClientset(
		&appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kubeflow", Name: "profiles-deployment"},
			Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}},
		},
		&corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kubeflow", Name: "profiles-1", Labels: labels},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "manager"}, {Name: "kfam"}}},
			Status:     corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "manager", RestartCount: 2}, {Name: "kfam"}}},
		},
		&corev1.Pod{ // another app's pod in the namespace is not collected
			ObjectMeta: metav1.ObjectMeta{Namespace: "kubeflow", Name: "other", Labels: map[string]string{"app": "other"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}},
		},
	)
	dir := t.TempDir()
	err := writeDeploymentLogs(context.Background(), c, dir, []deploymentLogs{kubeflowProfiles, webhookDeployment})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	want := []string{
		"kubeflow/profiles-1/kfam.log",
		"kubeflow/profiles-1/manager.log",
		"kubeflow/profiles-1/manager.previous.log", // it restarted: its last words are in the run before
		"missing.txt",
	}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("files = %v, want %v", files, want)
	}
	missing, _ := os.ReadFile(filepath.Join(dir, "missing.txt"))
	if !strings.Contains(string(missing), "deployment pod-identity-webhook/pod-identity-webhook: not found") {
		t.Errorf("missing.txt = %q", missing)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "kubeflow/profiles-1/manager.log"))
	if len(log) == 0 {
		t.Error("manager.log is empty")
	}
}
