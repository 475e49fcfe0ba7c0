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
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/controller"
	"github.com/awskubeflowprofiles/operator/internal/desired"
)

var _ = Describe("Resync at scale", Label("resync", "invariant:minimal-calls"), func() {
	const n = 30
	const period = 10 * time.Minute
	// withProfiles is an object of n profiles, and their roles' names. Its
	// deletion deletes them: retained, they would be the trust audit's of
	// every other object in the suite.
	withProfiles := func(cluster string) (*v1alpha1.AwsKubeflowProfiles, []string) {
		var roles []string
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.DeletionPolicy = v1alpha1.DeletionPolicySpec{Profiles: v1alpha1.DeletionPolicyDelete, ClusterIAM: v1alpha1.DeletionPolicyDelete}
			for i := range n {
				name := fmt.Sprintf("team-%02d-%s", i, cluster)
				cr.Spec.Profiles = append(cr.Spec.Profiles, v1alpha1.ProfileSpec{Name: name, Owner: owner(name)})
				roles = append(roles, desired.ProfileRoleName(name, cluster))
			}
		})
		return cr, roles
	}
	// restarted is a reconciler with no memory, as after a restart, on a
	// clock the spec moves, whose calls to endpoint its own recorder counts.
	restarted := func(endpoint string) (*controller.Reconciler, *awsiamtest.Recorder, *clocktesting.FakePassiveClock) {
		r, own := reconcilerWithOwnRecorder(endpoint)
		clock := clocktesting.NewFakePassiveClock(time.Now())
		r.Clock, r.ResyncPeriod = clock, period
		return r, own, clock
	}
	reconcile := func(r *controller.Reconciler, name string) {
		GinkgoHelper()
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: name}})
		Expect(err).NotTo(HaveOccurred())
	}
	// byRole counts, by role, the recorded calls that name it.
	byRole := func(rec *awsiamtest.Recorder, roles []string) map[string][]string {
		out := map[string][]string{}
		for _, c := range rec.Calls() {
			if i := slices.Index(roles, c.Params.Get("RoleName")); i >= 0 {
				out[roles[i]] = append(out[roles[i]], c.Action)
			}
		}
		return out
	}

	DescribeTable("checks each profile role once per period, from one listing and what it lacks",
		func(o awsiamtest.Options, atRestart, wantPerRole []string, maxPerProfile float64) {
			cluster := testCluster()
			cr, roles := withProfiles(cluster)
			Expect(k8s.Create(ctx, cr)).To(Succeed())
			DeferCleanup(func() { deleteAndWait(cr) })
			eventuallyReady(cluster)
			env := awsiamtest.StartWith(o)
			DeferCleanup(env.Close)
			r, own, clock := restarted(env.URL)

			By("after a restart, the roles of the object ready before are read from one listing, and what it lacks")
			reconcile(r, cluster)
			for _, role := range roles {
				Expect(byRole(own, roles)[role]).To(ConsistOf(atRestart), role)
			}
			Expect(awsiamtest.Actions(own.Calls())).To(ContainElement("ListRoles"))

			By("a period later, each role is checked once, and nothing is written")
			own.Reset()
			clock.SetTime(clock.Now().Add(period + time.Second))
			Expect(r.VerifyDue(ctx)).To(BeEmpty())
			calls := own.Calls()
			Expect(slices.ContainsFunc(calls, awsiamtest.Call.Write)).To(BeFalse(), "%v", awsiamtest.Actions(calls))
			perRole := byRole(own, roles)
			for _, role := range roles {
				Expect(perRole[role]).To(ConsistOf(wantPerRole), role)
			}
			Expect(float64(len(calls))/n).To(BeNumerically("<=", maxPerProfile), "calls per profile: %v", awsiamtest.Actions(calls))

			By("and nothing is due again within the period")
			own.Reset()
			clock.SetTime(clock.Now().Add(period / 2))
			Expect(r.VerifyDue(ctx)).To(BeEmpty())
			Expect(own.Calls()).To(BeEmpty())
		},
		// ListRoles, and an attempt at the details kumo lacks, the first time.
		Entry("with ListRoles that lists tags, as kumo's does: the policies of each role, two reads", awsiamtest.Options{},
			[]string(nil), []string{"ListAttachedRolePolicies", "ListRolePolicies"}, 2.0+2.0/n),
		Entry("with ListRoles as IAM answers it, without tags: each role whole, three reads", awsiamtest.Options{ListRolesLikeIAM: true},
			[]string{"GetRole", "ListAttachedRolePolicies", "ListRolePolicies"}, []string{"GetRole", "ListAttachedRolePolicies", "ListRolePolicies"}, 3.0+2.0/n),
		Entry("with GetAccountAuthorizationDetails: no read of any role on its own", awsiamtest.Options{AuthorizationDetails: true},
			[]string(nil), []string(nil), 0.1),
	)

	It("with GetAccountAuthorizationDetails, settles the roles that come due by one listing, not one by one", func() {
		cluster := testCluster()
		cr, roles := withProfiles(cluster)
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		eventuallyReady(cluster)
		env := awsiamtest.StartWith(awsiamtest.Options{AuthorizationDetails: true})
		DeferCleanup(env.Close)
		r, own, clock := restarted(env.URL)
		reconcile(r, cluster)

		// Half a period on, about half of the roles are due.
		own.Reset()
		clock.SetTime(clock.Now().Add(period / 2))
		Expect(r.VerifyDue(ctx)).To(BeEmpty())
		Expect(byRole(own, roles)).To(BeEmpty(), "no role is read on its own")
		Expect(awsiamtest.Actions(own.Calls())).To(ConsistOf("ListRoles", "GetAccountAuthorizationDetails"))

		By("and the listing made them all due a period later, not before")
		own.Reset()
		clock.SetTime(clock.Now().Add(period - time.Second))
		Expect(r.VerifyDue(ctx)).To(BeEmpty())
		Expect(own.Calls()).To(BeEmpty())
	})

	It("finds the drift of an object's only role from the listing", func() {
		cluster := testCluster()
		cr := newCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) {
			cr.Spec.Profiles = []v1alpha1.ProfileSpec{{Name: "only-" + cluster, Owner: owner("a")}}
			cr.Spec.DeletionPolicy = v1alpha1.DeletionPolicySpec{Profiles: v1alpha1.DeletionPolicyDelete, ClusterIAM: v1alpha1.DeletionPolicyDelete}
		})
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		eventuallyReady(cluster)
		r, _, clock := restarted(aws_.URL)
		reconcile(r, cluster)
		role := desired.ProfileRoleName("only-"+cluster, cluster)
		_, err := aws_.IAM.UpdateRole(ctx, &iam.UpdateRoleInput{RoleName: aws.String(role), Description: aws.String("edited by hand")})
		Expect(err).NotTo(HaveOccurred())
		clock.SetTime(clock.Now().Add(period + time.Second))
		Expect(r.VerifyDue(ctx)).To(ConsistOf(client.ObjectKey{Name: cluster}), "every role of the object differs, and the pass still says which object")
	})

	It("hands a role that drifted to the reconcile, and an edit does not wait for the checks that are due", Label("invariant:drift"), func() {
		cluster := testCluster()
		cr, roles := withProfiles(cluster)
		Expect(k8s.Create(ctx, cr)).To(Succeed())
		DeferCleanup(func() { deleteAndWait(cr) })
		eventuallyReady(cluster)
		out, err := aws_.IAM.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("extra-" + cluster),
			PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}`)})
		Expect(err).NotTo(HaveOccurred())
		extra := aws.ToString(out.Policy.Arn)
		r, own, clock := restarted(aws_.URL)
		reconcile(r, cluster)

		By("policies attached out of band are found by the next check and removed by the reconcile it asks for")
		drifted := roles[3:5]
		for _, role := range drifted {
			_, err = aws_.IAM.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String(role), PolicyArn: aws.String(extra)})
			Expect(err).NotTo(HaveOccurred())
		}
		clock.SetTime(clock.Now().Add(period + time.Second))
		Expect(r.VerifyDue(ctx)).To(ConsistOf(client.ObjectKey{Name: cluster}))
		// Late enough that the reconcile lists the roles again.
		clock.SetTime(clock.Now().Add(period / 5))
		own.Reset()
		reconcile(r, cluster)
		for _, role := range drifted {
			Expect(attachedPolicies(role)).To(BeEmpty(), "%s is repaired, not taken as verified from a listing", role)
		}
		Expect(slices.Collect(maps.Keys(byRole(own, roles)))).To(ConsistOf(drifted), "only the drifted roles are read again")

		By("with every check due, an edit of one profile reads and writes that profile's role only")
		clock.SetTime(clock.Now().Add(period + time.Second))
		updateCR(cluster, func(cr *v1alpha1.AwsKubeflowProfiles) { cr.Spec.Profiles[5].ManagedPolicyARNs = []string{extra} })
		own.Reset()
		reconcile(r, cluster)
		Expect(attachedPolicies(roles[5])).To(ConsistOf(extra))
		Expect(slices.Collect(maps.Keys(byRole(own, roles)))).To(ConsistOf(roles[5]))
	})
})
