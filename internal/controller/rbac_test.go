package controller_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
)

// generatedRoles reads the ClusterRole and Roles that controller-gen writes
// from the RBAC markers.
func generatedRoles() ([]rbacv1.ClusterRole, []rbacv1.Role) {
	GinkgoHelper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var clusterRoles []rbacv1.ClusterRole
	var roles []rbacv1.Role
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var obj struct {
			metav1.TypeMeta `json:",inline"`
		}
		var doc runtime.RawExtension
		if err := dec.Decode(&doc); err == io.EOF {
			break
		} else {
			Expect(err).NotTo(HaveOccurred())
		}
		if len(doc.Raw) == 0 {
			continue
		}
		Expect(utilyaml.Unmarshal(doc.Raw, &obj)).To(Succeed())
		switch obj.Kind {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			Expect(utilyaml.Unmarshal(doc.Raw, &r)).To(Succeed())
			clusterRoles = append(clusterRoles, r)
		case "Role":
			var r rbacv1.Role
			Expect(utilyaml.Unmarshal(doc.Raw, &r)).To(Succeed())
			roles = append(roles, r)
		}
	}
	return clusterRoles, roles
}

// The operator runs here as its own service account with exactly the RBAC
// the project ships, on a control plane of its own, so that what it may
// touch is what Kubernetes enforces, not what an admin test client may.
var _ = Describe("The operator's RBAC", Label("controller-irsa", "invariant:least-privilege"), func() {
	It("is enough to converge, reaches service accounts and Deployments in the profile controller's namespace only, and says so for a spec naming another", func() {
		scheme := newScheme()
		adminCfg := startControlPlane(scheme, filepath.Join("..", "..", "hack", "crds"))
		admin, err := client.New(adminCfg, client.Options{Scheme: scheme})
		Expect(err).NotTo(HaveOccurred())
		for _, ns := range []string{"kubeflow", "operator-system", "elsewhere"} {
			Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "operator-system", Name: "operator"}}
		Expect(admin.Create(ctx, sa)).To(Succeed())
		subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: sa.Namespace}}

		clusterRoles, roles := generatedRoles()
		Expect(clusterRoles).To(HaveLen(1))
		for _, rule := range clusterRoles[0].Rules {
			Expect(rule.Resources).NotTo(ContainElements("serviceaccounts", "deployments"),
				"the ClusterRole must not reach service accounts or Deployments in every namespace")
		}
		Expect(roles).To(ContainElement(HaveField("ObjectMeta.Namespace", "kubeflow")))
		for i := range clusterRoles {
			cr := &clusterRoles[i]
			Expect(admin.Create(ctx, cr)).To(Succeed())
			Expect(admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: cr.Name}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name}})).To(Succeed())
		}
		for i := range roles {
			r := &roles[i]
			Expect(admin.Create(ctx, r)).To(Succeed())
			Expect(admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: r.Name}, Subjects: subject,
				RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: r.Name}})).To(Succeed())
		}

		By("Kubernetes refuses the operator what the profile controller's namespace does not hold")
		user := "system:serviceaccount:operator-system:operator"
		for _, attrs := range []authorizationv1.ResourceAttributes{
			{Namespace: "elsewhere", Verb: "patch", Group: "apps", Resource: "deployments"},
			{Namespace: "elsewhere", Verb: "create", Resource: "serviceaccounts"},
			{Namespace: "kube-system", Verb: "patch", Resource: "serviceaccounts"},
		} {
			review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: &attrs}}
			Expect(admin.Create(ctx, review)).To(Succeed())
			Expect(review.Status.Allowed).To(BeFalse(), "%s %s in %s", attrs.Verb, attrs.Resource, attrs.Namespace)
		}

		operatorCfg := rest.CopyConfig(adminCfg)
		operatorCfg.Impersonate = rest.ImpersonationConfig{UserName: user}
		startOperator(operatorCfg, scheme)

		By("with only that, it converges")
		cluster := testCluster()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: "rbac-" + cluster, Owner: owner("r")}}
		})
		Expect(admin.Create(ctx, cr)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(admin.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			ready := condition(cr, v1alpha1.ReadyCondition)
			g.Expect(ready.Status).To(Equal(metav1.ConditionTrue), "%s: %s", ready.Reason, ready.Message)
		}, time.Minute).Should(Succeed())

		By("a spec naming the profile controller in another namespace is refused, saying why")
		other := testCluster()
		cr = newCR(other, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.ProfileController.ServiceAccount.Namespace = "elsewhere"
			cr.Spec.ProfileController.Deployment.Namespace = "elsewhere"
		})
		Expect(admin.Create(ctx, cr)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(admin.Get(ctx, client.ObjectKey{Name: other}, cr)).To(Succeed())
			c := condition(cr, v1alpha1.ControllerIRSAReadyCondition)
			g.Expect(c.Reason).To(Equal(v1alpha1.InvalidSpecReason))
			g.Expect(c.Message).To(ContainSubstring("manages the profile controller in namespace kubeflow only"))
		}).Should(Succeed())
		Expect(admin.Get(ctx, client.ObjectKey{Namespace: "elsewhere", Name: "pc-" + other}, &corev1.ServiceAccount{})).NotTo(Succeed())
	})
})
