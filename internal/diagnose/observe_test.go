package diagnose_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/diagnose"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// TestReaderOnAControlPlaneAndKumo reads a healthy chain as the plugin does,
// from a real API server and kumo, then the same with the permissions it
// needs taken away one at a time: each shows as "cannot check", naming it.
func TestReaderOnAControlPlaneAndKumo(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver and etcd into bin/k8s")
	}
	g := NewWithT(t)
	ctx := context.Background()
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases"), filepath.Join("..", "..", "hack", "crds")},
		ErrorIfCRDPathMissing: true, Scheme: scheme,
	}
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	kube, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	aws_ := awsiamtest.Start()
	t.Cleanup(aws_.Close)
	iamClient := awsiam.NewClient(aws_.IAM, aws_.STS, aws_.EKS, nil, awsiam.Options{})

	const profile = "diag-team"
	g.Expect(kube.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: profile}})).To(Succeed())
	g.Expect(kube.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: profile, Name: "default-editor"}})).To(Succeed())
	// The API server's issuer is what its tokens say.
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{policy.Audience}}}
	g.Expect(kube.SubResource("token").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: profile, Name: "default-editor"}}, tr)).To(Succeed())
	claims, err := policy.DecodeClaims(tr.Status.Token)
	g.Expect(err).NotTo(HaveOccurred())

	provider, err := aws_.IAM.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String(claims.Issuer), ClientIDList: []string{policy.Audience}, ThumbprintList: []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"}})
	g.Expect(err).NotTo(HaveOccurred())
	providerARN := aws.ToString(provider.OpenIDConnectProviderArn)
	role, err := aws_.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(profile + "-role"), Path: aws.String("/kubeflow/diag/"),
		AssumeRolePolicyDocument: aws.String(policy.WebIdentityTrust(providerARN, claims.Issuer, policy.ServiceAccountSubject(profile, "default-editor")).Marshal())})
	g.Expect(err).NotTo(HaveOccurred())
	roleARN := aws.ToString(role.Role.Arn)
	_, err = aws_.IAM.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(profile + "-role"), PolicyName: aws.String("s3"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`)})
	g.Expect(err).NotTo(HaveOccurred())

	p := desired.NewProfileObject()
	p.SetName(profile)
	g.Expect(unstructured.SetNestedField(p.Object, map[string]any{"kind": "User", "name": "a@example.com"}, "spec", "owner")).To(Succeed())
	g.Expect(unstructured.SetNestedSlice(p.Object, []any{map[string]any{
		"kind": "AwsIamForServiceAccount", "spec": map[string]any{"awsIamRole": roleARN, "annotateOnly": true},
	}}, "spec", "plugins")).To(Succeed())
	g.Expect(kube.Create(ctx, p)).To(Succeed())
	sa := &corev1.ServiceAccount{}
	g.Expect(kube.Get(ctx, client.ObjectKey{Namespace: profile, Name: "default-editor"}, sa)).To(Succeed())
	sa.Annotations = map[string]string{diagnose.RoleARNAnnotation: roleARN}
	g.Expect(kube.Update(ctx, sa)).To(Succeed())

	g.Expect(kube.Create(ctx, &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-identity-webhook"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:                    "iam-for-pods.amazonaws.com",
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "default", Name: "pod-identity-webhook"}},
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			AdmissionReviewVersions: []string{"v1"},
			// Matching nothing, so it does not stand between this test and its pods.
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"never": "matches"}},
		}},
	})).To(Succeed())
	g.Expect(kube.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "default", Name: "pod-identity-webhook-1", Labels: map[string]string{discoveryv1.LabelServiceName: "pod-identity-webhook"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
	})).To(Succeed())
	g.Expect(kube.Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: profile, Name: "nb-0"},
		Spec: corev1.PodSpec{ServiceAccountName: "default-editor", Containers: []corev1.Container{{Name: "nb", Image: "notebook",
			Env:          []corev1.EnvVar{{Name: "AWS_ROLE_ARN", Value: roleARN}, {Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Value: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}},
			VolumeMounts: []corev1.VolumeMount{{Name: "aws-iam-token", MountPath: "/var/run/secrets/eks.amazonaws.com/serviceaccount"}}}},
			Volumes: []corev1.Volume{{Name: "aws-iam-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: policy.Audience, Path: "token"}}}}}}}},
	})).To(Succeed())

	t.Run("a healthy chain is whole", func(t *testing.T) {
		g := NewWithT(t)
		r := diagnose.Diagnose(diagnose.Reader{Kube: kube, IAM: iamClient}.Observe(ctx, profile, "nb-0"))
		g.Expect(r.Whole()).To(BeTrue(), "%+v", r.Checks)
	})

	t.Run("a pod the webhook did not mutate is named, with the fix", func(t *testing.T) {
		g := NewWithT(t)
		// This API server keeps no managed fields for objects written
		// without server-side apply, so when the annotation was written is
		// unknown, and the diagnosis says so.
		g.Expect(kube.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: profile, Name: "nb-plain"},
			Spec: corev1.PodSpec{ServiceAccountName: "default-editor", Containers: []corev1.Container{{Name: "nb", Image: "notebook"}}}})).To(Succeed())
		r := diagnose.Diagnose(diagnose.Reader{Kube: kube, IAM: iamClient}.Observe(ctx, profile, "nb-plain"))
		g.Expect(r.Checks).To(ContainElement(And(HaveField("Link", diagnose.LinkPod), HaveField("Status", diagnose.Fail),
			HaveField("Detail", ContainSubstring("keeps no record of when default-editor was annotated")), HaveField("Fix", ContainSubstring("delete the pod")))))
	})

	t.Run("without a permission it uses, that link cannot be checked, naming it", func(t *testing.T) {
		g := NewWithT(t)
		// A user who may read everything but ask for tokens.
		user, err := env.AddUser(envtest.User{Name: "reader", Groups: []string{"readers"}}, nil)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(kube.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "readers-view"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "diag-reader"},
			Subjects: []rbacv1.Subject{{Kind: "Group", Name: "readers", APIGroup: "rbac.authorization.k8s.io"}}})).To(Succeed())
		g.Expect(kube.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "diag-reader"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list"}}}})).To(Succeed())
		readerKube, err := client.New(user.Config(), client.Options{Scheme: scheme})
		g.Expect(err).NotTo(HaveOccurred())
		remove := aws_.Recorder.Inject(awsiamtest.Fault{Code: "AccessDenied", Match: func(c awsiamtest.Call) bool { return c.Action == "GetRole" }})
		defer remove()
		g.Eventually(func(g Gomega) {
			r := diagnose.Diagnose(diagnose.Reader{Kube: readerKube, IAM: iamClient}.Observe(ctx, profile, "nb-0"))
			g.Expect(r.Broken()).To(BeFalse(), "%+v", r.Checks)
			g.Expect(r.Checks).To(ContainElement(And(HaveField("Link", diagnose.LinkToken), HaveField("Status", diagnose.CannotCheck),
				HaveField("Detail", ContainSubstring("you may not create serviceaccounts/token in namespace "+profile)))))
			g.Expect(r.Checks).To(ContainElement(And(HaveField("Link", diagnose.LinkTrust), HaveField("Status", diagnose.CannotCheck),
				HaveField("Detail", ContainSubstring("may not call iam:GetRole on "+roleARN)))))
		}).Should(Succeed())
	})
}
