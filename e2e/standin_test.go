package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/e2e/framework"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// kubeflowFinalizer is the finalizer Kubeflow's profile controller puts on
// every Profile; where it does not run, the suite holds it.
const kubeflowFinalizer = "profile-finalizer"

// restartAnnotation is set by the operator on the profile controller's pod
// template to the role its pods should have.
const restartAnnotation = "kubeflow.aws/profile-controller-role-arn"

// standInForKubeflow does what Kubeflow's profile controller does for each
// Profile where it is not installed: its namespace, owned by the Profile,
// and the default-editor service account in it.
func standInForKubeflow(ctx context.Context, why string, profiles ...string) {
	GinkgoHelper()
	By(fmt.Sprintf("%s: %s; the suite creates each Profile's namespace (owned by the Profile) and %s, as it would", target.Name(), why, editor))
	for _, p := range profiles {
		Expect(env.EnsureNamespaceAndServiceAccount(ctx, p, editor)).To(Succeed())
	}
}

// setFinalizer adds or removes Kubeflow's finalizer on a Profile.
func setFinalizer(ctx context.Context, profile string, on bool) {
	GinkgoHelper()
	Eventually(func() error {
		u := desired.NewProfileObject()
		if err := env.Kube.Resources().Get(ctx, profile, "", u); err != nil {
			return err
		}
		if on {
			controllerutil.AddFinalizer(u, kubeflowFinalizer)
		} else {
			controllerutil.RemoveFinalizer(u, kubeflowFinalizer)
		}
		return env.Kube.Resources().Update(ctx, u)
	}).Should(Succeed())
}

// claimsIn reads the claims the notebook stand-in printed.
func claimsIn(log string) policy.Claims {
	GinkgoHelper()
	for _, line := range strings.Split(log, "\n") {
		if rest, ok := strings.CutPrefix(line, "claims: "); ok {
			var c policy.Claims
			Expect(json.Unmarshal([]byte(rest), &c)).To(Succeed())
			return c
		}
	}
	Fail("the notebook printed no claims:\n" + log)
	return policy.Claims{}
}

// allowed evaluates a role's trust for a web identity with these claims,
// through the cluster's OIDC provider.
func allowed(ctx context.Context, cr *v1alpha1.AwsKubeflowProfiles, roleARN string, c policy.Claims) bool {
	GinkgoHelper()
	d, err := policy.Evaluate(trustOf(ctx, roleName(roleARN)), policy.WebIdentityRequest(cr.Status.OIDCProvider.ARN, c.Issuer, c.Subject, c.Audience))
	Expect(err).NotTo(HaveOccurred())
	return d.Allowed
}

// profilesDeployment stands in for Kubeflow's profiles-deployment.
func profilesDeployment(image string) *appsv1.Deployment {
	labels := map[string]string{"app": "e2e-profiles-controller"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kubeflow", Name: "profiles-deployment"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            controllerSA,
					TerminationGracePeriodSeconds: ptr.To[int64](1),
					Containers:                    []corev1.Container{{Name: "manager", Image: image, ImagePullPolicy: corev1.PullNever}},
				},
			},
		},
	}
}

// revisionAnnotation is where the Deployment controller counts rollouts.
const revisionAnnotation = "deployment.kubernetes.io/revision"

// revisionOf is the Deployment's rollout count.
func revisionOf(ctx context.Context, dep *appsv1.Deployment) int {
	GinkgoHelper()
	Expect(env.Kube.Resources().Get(ctx, dep.Name, dep.Namespace, dep)).To(Succeed())
	r, err := strconv.Atoi(dep.Annotations[revisionAnnotation])
	Expect(err).NotTo(HaveOccurred(), "annotation %s of %s", revisionAnnotation, dep.Name)
	return r
}

// waitRolledTo waits until the Deployment's template names roleARN and the
// Deployment controller has replaced every pod with one that does, and
// returns the Deployment's revision.
func waitRolledTo(ctx context.Context, dep *appsv1.Deployment, roleARN string) int {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		g.Expect(env.Kube.Resources().Get(ctx, dep.Name, dep.Namespace, dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Annotations).To(HaveKeyWithValue(restartAnnotation, roleARN))
		pods := &corev1.PodList{}
		g.Expect(env.Kube.Resources(dep.Namespace).List(ctx, pods)).To(Succeed())
		var running []string
		for _, p := range pods.Items {
			if p.Labels["app"] != "e2e-profiles-controller" || p.DeletionTimestamp != nil {
				continue
			}
			g.Expect(p.Annotations).To(HaveKeyWithValue(restartAnnotation, roleARN), "pod %s is from an old template", p.Name)
			if p.Status.Phase == corev1.PodRunning {
				running = append(running, p.Name)
			}
		}
		g.Expect(running).To(HaveLen(1))
		g.Expect(dep.Status.ObservedGeneration).To(Equal(dep.Generation))
		g.Expect(dep.Status.UpdatedReplicas).To(Equal(*dep.Spec.Replicas))
	}).Should(Succeed())
	return revisionOf(ctx, dep)
}

// updateSpec applies mutate to the latest version of the object.
func updateSpec(ctx context.Context, name string, mutate func(*v1alpha1.AwsKubeflowProfiles)) {
	GinkgoHelper()
	Eventually(func() error {
		cr := &v1alpha1.AwsKubeflowProfiles{}
		if err := env.Kube.Resources().Get(ctx, name, "", cr); err != nil {
			return err
		}
		mutate(cr)
		return env.Kube.Resources().Update(ctx, cr)
	}).Should(Succeed())
}

// deleteRole deletes a role the suite made the operator create and then
// leave, detaching its managed policies first, as IAM requires.
func deleteRole(ctx context.Context, role string) {
	GinkgoHelper()
	out, err := env.IAM.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	var missing *iamtypes.NoSuchEntityException
	if errors.As(err, &missing) {
		return
	}
	Expect(err).NotTo(HaveOccurred())
	for _, p := range out.AttachedPolicies {
		_, err := env.IAM.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String(role), PolicyArn: p.PolicyArn})
		Expect(err).NotTo(HaveOccurred())
	}
	_, err = env.IAM.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(role)})
	Expect(err).NotTo(HaveOccurred(), "deleting role %s", role)
}

// namespacesOfProfiles makes sure, where pods run, that both Profiles'
// namespaces exist before a teardown spec shows what becomes of them, also
// when the specs that create them were filtered out.
func namespacesOfProfiles(ctx context.Context, profiles ...string) {
	GinkgoHelper()
	if ok, _ := target.Has(framework.NeedsPod); !ok {
		return
	}
	if ok, why := target.Has(framework.NeedsKubeflow); !ok {
		standInForKubeflow(ctx, why, profiles...)
	}
	Eventually(func(g Gomega) {
		for _, p := range profiles {
			ns, err := env.Clientset.CoreV1().Namespaces().Get(ctx, p, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(ns.DeletionTimestamp).To(BeNil(), "namespace %s", p)
		}
	}).Should(Succeed())
}

// pastAResync is how long to watch for something the operator must not do:
// past its next resync, when it would act on anything its watches missed.
func pastAResync() time.Duration {
	GinkgoHelper()
	d, err := time.ParseDuration(env.ResyncPeriod)
	Expect(err).NotTo(HaveOccurred(), "the target's resync period")
	return d + 2*time.Second
}
