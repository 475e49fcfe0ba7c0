package controller_test

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/controller"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

var _ = Describe("Trust audit", Label("trust-audit", "invariant:no-foreign-writes"), func() {
	// unmanagedProfile creates, as a Kubeflow user would without the
	// operator, a Profile whose plugin names roleARN.
	unmanagedProfile := func(name, roleARN string) {
		GinkgoHelper()
		p := desired.NewProfileObject()
		p.SetName(name)
		Expect(unstructured.SetNestedField(p.Object, map[string]any{"kind": "User", "name": name + "@example.com"}, "spec", "owner")).To(Succeed())
		Expect(unstructured.SetNestedSlice(p.Object, []any{map[string]any{
			"kind": "AwsIamForServiceAccount", "spec": map[string]any{"awsIamRole": roleARN},
		}}, "spec", "plugins")).To(Succeed())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		DeferCleanup(func() { _ = k8s.Delete(ctx, p) })
	}
	role := func(name, trust string) string {
		GinkgoHelper()
		out, err := aws_.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _, _ = aws_.IAM.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String(name)}) })
		return aws.ToString(out.Role.Arn)
	}

	It("reports, reading only, the unmanaged Profiles whose role admits more than their default-editor, once per resync", func() {
		cluster := testCluster()
		cr := newCR(cluster)
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		eventuallyReady(cluster)
		provider, host := providerARNOf(cluster), "oidc.eks.us-west-2.amazonaws.com/id/"+cluster
		trust := func(cond string) string {
			return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":%s}]}`, provider, cond)
		}
		sub := func(ns string) string { return "system:serviceaccount:" + ns + ":default-editor" }
		exact, open, wild, second := "exact-"+cluster, "open-"+cluster, "wild-"+cluster, "second-"+cluster
		roles := map[string]string{
			exact:  role("audit-exact-"+cluster, trust(fmt.Sprintf(`{"StringEquals":{"%s:aud":"sts.amazonaws.com","%s:sub":%q}}`, host, host, sub(exact)))),
			open:   role("audit-open-"+cluster, trust(fmt.Sprintf(`{"StringEquals":{"%s:aud":"sts.amazonaws.com"}}`, host))),
			wild:   role("audit-wild-"+cluster, trust(fmt.Sprintf(`{"StringLike":{"%s:sub":"system:serviceaccount:*:default-editor"}}`, host))),
			second: role("audit-second-"+cluster, trust(fmt.Sprintf(`{"StringEquals":{"%s:sub":[%q,%q]}}`, host, sub(second), sub("someone-else")))),
		}
		missing, foreign := "missing-"+cluster, "foreign-"+cluster
		for name, arn := range roles {
			unmanagedProfile(name, arn)
		}
		unmanagedProfile(missing, "arn:aws:iam::"+awsiamtest.AccountID+":role/no-such-role-"+cluster)
		unmanagedProfile(foreign, "arn:aws:iam::210987654321:role/elsewhere")

		By("an audit a resync period after the last")
		// Its own recorder: other objects of the suite audit these Profiles
		// too when their audit is due, which is not this reconciler's count.
		r, own := reconcilerWithOwnRecorder(aws_.URL)
		rec := events.NewFakeRecorder(100)
		r.Recorder = rec
		r.Clock = clocktesting.NewFakePassiveClock(time.Now().Add(2 * time.Hour))
		// The manager may write the status in between, and a pass whose
		// status write loses that race keeps nothing: run it until one lands.
		Eventually(func(g Gomega) {
			_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: cluster}, cr)).To(Succeed())
			g.Expect(cr.Status.TrustAudit.CheckedAt).NotTo(BeNil())
		}).Should(Succeed())
		audit := cr.Status.TrustAudit
		got := map[string]v1alpha1.TrustFinding{}
		for _, f := range audit.Findings {
			got[f.Profile] = f
		}
		want := map[string]string{open: "AnySubject", wild: "WildcardSubject", second: "ListedSubject", missing: controller.TrustRoleMissing, foreign: controller.TrustCannotRead}
		for name, reason := range want {
			Expect(got).To(HaveKey(name))
			Expect(got[name].Reason).To(Equal(reason), "profile %s: %s", name, got[name].Message)
		}
		Expect(got).NotTo(HaveKey(exact), "a closed trust is no finding")
		Expect(got[second].Message).To(ContainSubstring("system:serviceaccount:someone-else:default-editor"))
		Expect(got[second].Message).To(ContainSubstring(roles[second]))
		Expect(got[foreign].Message).To(ContainSubstring("account 210987654321"))
		Expect(audit.Profiles).To(BeNumerically(">=", 6))

		By("a Warning Event naming each Profile and its role, and the metric by reason")
		var warnings []string
		for len(rec.Events) > 0 {
			warnings = append(warnings, <-rec.Events)
		}
		for _, name := range []string{open, wild, second, missing, foreign} {
			Expect(warnings).To(ContainElement(And(ContainSubstring(controller.TrustTooWideReason), ContainSubstring("Profile "+name+":"))))
		}
		for reason, n := range map[string]float64{"AnySubject": 1, "WildcardSubject": 1, "ListedSubject": 1, controller.TrustRoleMissing: 1, controller.TrustCannotRead: 1} {
			Expect(testutil.ToFloat64(r.Metrics.TrustFindings().WithLabelValues(cluster, reason))).To(BeNumerically(">=", n), reason)
		}

		By("reads only: nothing the operator does not own is written")
		audited := append(slices.Collect(maps.Values(roles)), "no-such-role-"+cluster)
		reads, writes := callsAbout(own, audited)
		Expect(writes).To(BeZero())
		Expect(reads).To(BeNumerically(">=", len(audited)), "a GetRole per role in the account")

		By("no second audit within the period, and no second Event for the same finding")
		own.Reset()
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: cluster}})
		Expect(err).NotTo(HaveOccurred())
		reads, writes = callsAbout(own, audited)
		Expect(reads+writes).To(BeZero(), "no call for those roles within the period")
		Expect(rec.Events).To(BeEmpty())
	})

	It("audits a Profile that a deleted object retained, which no one manages any more", func() {
		cluster := testCluster()
		retained := "retained-" + cluster
		first := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Name = "first-" + cluster
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: retained, Owner: owner("a")}}
		})
		Expect(k8s.Create(ctx, first)).To(Succeed())
		eventuallyReady(first.Name)
		deleteAndWait(first)
		p, err := getProfile(retained)
		Expect(err).NotTo(HaveOccurred(), "the deletion policy retains the Profile")
		Expect(p.GetLabels()).To(HaveKeyWithValue(desired.LabelOwner, first.Name), "still labelled with the object that is gone")
		DeferCleanup(func() { _ = k8s.Delete(ctx, p) })
		roleARN, _, _ := desired.ProfilePlugin(p)

		By("its role's trust opened later is reported by the object now managing the cluster")
		_, err = aws_.IAM.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(roleName(roleARN)),
			PolicyDocument: aws.String(fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/%s:aud":"sts.amazonaws.com"}}}]}`, providerARNOf(cluster), cluster))})
		Expect(err).NotTo(HaveOccurred())
		second := newCR(cluster)
		Expect(k8s.Create(ctx, second)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(second) })
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(second), second)).To(Succeed())
			g.Expect(second.Status.TrustAudit.Findings).To(ContainElement(And(
				HaveField("Profile", retained), HaveField("RoleARN", roleARN), HaveField("Reason", "AnySubject"))))
		}).Should(Succeed())
	})

})

// callsAbout counts the recorded reads and writes whose parameters name one
// of the roles of arns.
func callsAbout(rec *awsiamtest.Recorder, arns []string) (reads, writes int) {
	for _, c := range rec.Matching(func(c awsiamtest.Call) bool {
		return slices.ContainsFunc(arns, func(arn string) bool { return c.Mentions(roleName(arn)) })
	}) {
		if c.Write() {
			writes++
		} else {
			reads++
		}
	}
	return reads, writes
}
