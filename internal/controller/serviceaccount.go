package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

// RoleARNAnnotation is the service-account annotation the EKS pod identity
// webhook reads.
const RoleARNAnnotation = desired.RoleARNAnnotation

// RestartAnnotation is set on the pod template of the profile controller's
// Deployment to the role ARN its pods should have. Changing it rolls the
// pods once, so the webhook injects the new role.
const RestartAnnotation = "kubeflow.aws/profile-controller-role-arn"

// ensureServiceAccount annotates the profile controller's service account
// with the role, creating the account when missing, and releases accounts
// the operator annotated before under another name.
func (r *Reconciler) ensureServiceAccount(ctx context.Context, s *scope, roleARN string) error {
	key := s.state.ControllerServiceAccount
	sa := &corev1.ServiceAccount{}
	err := r.APIReader.Get(ctx, key, sa)
	switch {
	case apierrors.IsNotFound(err):
		if err := r.requireNamespace(ctx, key.Namespace); err != nil {
			return err
		}
		sa = &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
			Namespace:   key.Namespace,
			Name:        key.Name,
			Labels:      map[string]string{desired.LabelOwner: s.cr.Name},
			Annotations: map[string]string{RoleARNAnnotation: roleARN},
		}}
		if err := r.Client.Create(ctx, sa); err != nil {
			return fmt.Errorf("creating service account %s: %w", key, err)
		}
		r.emit(ctx, s, []awsiam.Change{{Reason: "ServiceAccountCreated", Resource: "service_account", Action: "create",
			Message: fmt.Sprintf("Created service account %s annotated with IAM role %s", key, roleARN)}})
	case err != nil:
		return fmt.Errorf("reading service account %s: %w", key, err)
	case sa.Labels[desired.LabelOwner] != "" && sa.Labels[desired.LabelOwner] != s.cr.Name && !s.isGone(sa.Labels[desired.LabelOwner]):
		return fmt.Errorf("%w: service account %s is managed by AwsKubeflowProfiles %s; one object per cluster manages the profile controller's IRSA, so delete one of them",
			awsiam.ErrNotOwned, key, sa.Labels[desired.LabelOwner])
	case sa.Annotations[RoleARNAnnotation] != roleARN || sa.Labels[desired.LabelOwner] != s.cr.Name:
		patch := client.MergeFrom(sa.DeepCopy())
		setMapValue(&sa.Annotations, RoleARNAnnotation, roleARN)
		setMapValue(&sa.Labels, desired.LabelOwner, s.cr.Name)
		if err := r.Client.Patch(ctx, sa, patch); err != nil {
			return fmt.Errorf("annotating service account %s: %w", key, err)
		}
		r.emit(ctx, s, []awsiam.Change{{Reason: "ServiceAccountAnnotated", Resource: "service_account", Action: "update",
			Message: fmt.Sprintf("Annotated service account %s with IAM role %s", key, roleARN)}})
	}
	return r.releaseServiceAccounts(ctx, s, key.String())
}

// releaseServiceAccounts removes the operator's label and role annotation
// from every service account it labelled except keep ("" releases all).
// It labels them in the profile controller's namespace only, the one where
// it may write them; the cache also holds every default-editor.
func (r *Reconciler) releaseServiceAccounts(ctx context.Context, s *scope, keep string) error {
	list := &corev1.ServiceAccountList{}
	if err := r.Client.List(ctx, list, client.InNamespace(controllerNamespace(r.ProfileControllerNamespace)),
		client.MatchingLabels{desired.LabelOwner: s.cr.Name}); err != nil {
		return fmt.Errorf("listing service accounts labelled %s=%s: %w", desired.LabelOwner, s.cr.Name, err)
	}
	for i := range list.Items {
		sa := &list.Items[i]
		key := client.ObjectKeyFromObject(sa).String()
		if key == keep {
			continue
		}
		patch := client.MergeFrom(sa.DeepCopy())
		delete(sa.Labels, desired.LabelOwner)
		delete(sa.Annotations, RoleARNAnnotation)
		if err := r.Client.Patch(ctx, sa, patch); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("removing the role annotation from service account %s: %w", key, err)
		}
		r.emit(ctx, s, []awsiam.Change{{Reason: "ServiceAccountReleased", Resource: "service_account", Action: "update",
			Message: fmt.Sprintf("Removed the IAM role annotation from service account %s, which the spec no longer names", key)}})
	}
	return nil
}

func (r *Reconciler) requireNamespace(ctx context.Context, name string) error {
	err := r.APIReader.Get(ctx, types.NamespacedName{Name: name}, &corev1.Namespace{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: namespace %s of the profile controller's service account does not exist; install Kubeflow first or set spec.profileController.serviceAccount.namespace",
			errNamespaceMissing, name)
	}
	if err != nil {
		return fmt.Errorf("reading namespace %s: %w", name, err)
	}
	return nil
}

// restartController rolls the profile controller's pods once per role ARN:
// the pod identity webhook only injects credentials into new pods.
func (r *Reconciler) restartController(ctx context.Context, s *scope, roleARN string) error {
	key := s.state.ControllerDeployment
	if key == nil {
		return nil
	}
	dep := &appsv1.Deployment{}
	err := r.APIReader.Get(ctx, *key, dep)
	if apierrors.IsNotFound(err) {
		// Pods created later get the annotation's role from the webhook.
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading deployment %s: %w", key, err)
	}
	if dep.Spec.Template.Annotations[RestartAnnotation] == roleARN {
		return nil
	}
	patch := client.MergeFrom(dep.DeepCopy())
	setMapValue(&dep.Spec.Template.Annotations, RestartAnnotation, roleARN)
	if err := r.Client.Patch(ctx, dep, patch); err != nil {
		return fmt.Errorf("restarting the pods of deployment %s: %w", key, err)
	}
	r.emit(ctx, s, []awsiam.Change{{Reason: "ProfileControllerRestarted", Resource: "deployment", Action: "update",
		Message: fmt.Sprintf("Restarted the pods of deployment %s so they receive IAM role %s", key, roleARN)}})
	return nil
}

func setMapValue(m *map[string]string, k, v string) {
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = v
}
