package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/e2e-framework/klient/k8s/resources"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// faultProfiles is how many profiles converge under faults.
const faultProfiles = 100

var _ = Describe("Under faults", Label("local", "faults"), func() {
	It("converges 100 profiles through IAM faults, lost create answers and operator kills to the state of a fault-free run", func(ctx SpecContext) {
		if env.ChaosURL == "" || env.KillAndRestartOperator == nil {
			Skip(target.Name() + ": the suite cannot inject IAM faults or kill the operator here")
		}
		seed := uint64(time.Now().UnixNano())
		if s := os.Getenv("E2E_FAULT_SEED"); s != "" {
			var err error
			seed, err = strconv.ParseUint(s, 10, 64)
			Expect(err).NotTo(HaveOccurred(), "E2E_FAULT_SEED")
		}
		AddReportEntry("fault seed", seed)
		GinkgoWriter.Printf("fault seed %d (E2E_FAULT_SEED=%d repeats this run)\n", seed, seed)
		suffix := randomSuffix()
		policyARN := createPolicy(ctx, "faults-"+suffix, "s3:ListBucket")
		DeferCleanup(func(ctx SpecContext) {
			_, _ = env.IAM.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: aws.String(policyARN)})
		})
		baseline, chaos := "fb-"+suffix, "fc-"+suffix

		By("a fault-free run of the spec")
		createFaultSpec(ctx, baseline, policyARN)
		waitReadyWithin(ctx, baseline, 5*time.Minute)
		want := inventory(ctx, baseline)

		By(fmt.Sprintf("the same spec with 20%% of IAM calls failing, the first answer of each Create* lost, and the operator killed at random (seed %d)", seed))
		setChaos(ctx, fmt.Sprintf("rate=0.2&seed=%d&slow=700ms&lose-creates=true", seed))
		profileUIDs := map[string]string{}
		watchProfiles := func() {
			list := desired.NewProfileList()
			if err := env.Kube.Resources().List(ctx, list, resources.WithLabelSelector(desired.LabelOwner+"="+chaos)); err == nil {
				for _, p := range list.Items {
					if uid, seen := profileUIDs[p.GetName()]; !seen {
						profileUIDs[p.GetName()] = string(p.GetUID())
					} else {
						Expect(string(p.GetUID())).To(Equal(uid), "Profile %s was deleted and created again", p.GetName())
					}
				}
			}
		}
		createFaultSpec(ctx, chaos, policyARN)
		// Registered after the object's deletion, so it runs first: a failed
		// spec tears down without faults.
		DeferCleanup(func(ctx SpecContext) { setChaos(ctx, "rate=0") })
		// Kill points: one before any Profile exists, then when the number of
		// Profiles passes random thresholds, so that kills land at every stage
		// of the convergence.
		rng := rand.New(rand.NewPCG(seed, seed))
		thresholds := []int{0}
		for range 2 + rng.IntN(3) {
			thresholds = append(thresholds, 1+rng.IntN(faultProfiles-1))
		}
		slices.Sort(thresholds)
		for i, at := range thresholds {
			Eventually(func() int { watchProfiles(); return len(profileUIDs) }).WithTimeout(5*time.Minute).WithPolling(pollInterval).
				Should(BeNumerically(">=", at), "the convergence goes on between kills")
			GinkgoWriter.Printf("kill %d of %d at %d Profiles\n", i+1, len(thresholds), len(profileUIDs))
			Expect(env.KillAndRestartOperator(ctx)).To(Succeed())
		}
		Eventually(func() bool { watchProfiles(); return isReady(ctx, chaos) }).WithTimeout(5 * time.Minute).WithPolling(time.Second).Should(BeTrue())
		counts := chaosCounts(ctx)
		GinkgoWriter.Printf("faults injected: %v\n", counts)
		Expect(counts[awsiamtest.FaultLostReply]).To(BeNumerically(">=", 3), "lost answers of CreateOpenIDConnectProvider, CreatePolicy and CreateRole at least")

		By("with the faults off, within a resync the state is the fault-free run's")
		setChaos(ctx, "rate=0")
		wantText := normalize(want, baseline)
		Expect(os.WriteFile(filepath.Join(env.Artifacts, "faults-want.json"), []byte(wantText), 0o644)).To(Succeed())
		Eventually(func() string {
			watchProfiles()
			got := normalize(inventory(ctx, chaos), chaos)
			_ = os.WriteFile(filepath.Join(env.Artifacts, "faults-got.json"), []byte(got), 0o644)
			return got
		}).WithTimeout(pastAResync()+time.Minute).WithPolling(5*time.Second).Should(Equal(wantText),
			"diff %s/faults-want.json %s/faults-got.json", env.Artifacts, env.Artifacts)
		Expect(isReady(ctx, chaos)).To(BeTrue())
		Expect(profileUIDs).To(HaveLen(faultProfiles), "every Profile created once, none deleted")
	})
})

func faultProfileName(cluster string, i int) string { return fmt.Sprintf("%s-p%03d", cluster, i) }

// createFaultSpec creates an object for its own simulated cluster with
// faultProfiles profiles, each with a managed and an inline policy.
func createFaultSpec(ctx context.Context, cluster, policyARN string) {
	GinkgoHelper()
	cr := &v1alpha1.AwsKubeflowProfiles{
		ObjectMeta: metav1.ObjectMeta{Name: cluster},
		Spec: v1alpha1.AwsKubeflowProfilesSpec{
			Cluster: v1alpha1.ClusterSpec{
				Name: cluster, Region: env.Cluster.Region, AccountID: env.Cluster.ExpectAccountID,
				OIDCIssuerURL: "https://oidc.eks." + env.Cluster.Region + ".amazonaws.com/id/" + strings.ToUpper(cluster),
			},
			ProfileController: v1alpha1.ProfileControllerSpec{
				ServiceAccount:      v1alpha1.ObjectReference{Namespace: "kubeflow", Name: "pc-" + cluster},
				Deployment:          v1alpha1.ObjectReference{Namespace: "kubeflow", Name: "pc-" + cluster},
				RestartOnRoleChange: ptr.To(false),
			},
			IAM: v1alpha1.IAMSpec{Tags: []v1alpha1.Tag{{Key: "team", Value: "ml"}}},
		},
	}
	for i := range faultProfiles {
		name := faultProfileName(cluster, i)
		cr.Spec.Profiles = append(cr.Spec.Profiles, v1alpha1.ProfileSpec{
			Name: name, Owner: v1alpha1.ProfileOwner{Name: name + "@example.com"}, ManagedPolicyARNs: []string{policyARN},
			InlinePolicies: []v1alpha1.InlinePolicy{{Name: "read", Document: jsonDoc(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)}},
		})
	}
	Expect(env.Kube.Resources().Create(ctx, cr)).To(Succeed())
	DeferCleanup(func(ctx SpecContext) {
		_ = env.Kube.Resources().Delete(ctx, cr)
		Eventually(func() bool {
			return apierrors.IsNotFound(env.Kube.Resources().Get(ctx, cluster, "", &v1alpha1.AwsKubeflowProfiles{}))
		}).WithTimeout(5*time.Minute).Should(BeTrue(), "teardown of %s", cluster)
	})
}

func isReady(ctx context.Context, name string) bool {
	cr := &v1alpha1.AwsKubeflowProfiles{}
	return env.Kube.Resources().Get(ctx, name, "", cr) == nil && readyForItsGeneration(cr)
}

// readyForItsGeneration tells an object Ready for the spec it has now.
func readyForItsGeneration(cr *v1alpha1.AwsKubeflowProfiles) bool {
	c := meta.FindStatusCondition(cr.Status.Conditions, v1alpha1.ReadyCondition)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == cr.Generation
}

func waitReadyWithin(ctx context.Context, name string, d time.Duration) {
	GinkgoHelper()
	Eventually(func() bool { return isReady(ctx, name) }).WithTimeout(d).WithPolling(time.Second).Should(BeTrue(), "%s Ready", name)
}

func setChaos(ctx context.Context, query string) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.ChaosURL+"?"+query, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
}

func chaosCounts(ctx context.Context) map[string]int {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.ChaosURL, nil)
	Expect(err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	counts := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			counts[k], _ = strconv.Atoi(v)
		}
	}
	return counts
}

// inventory is everything the operator made for a cluster, in IAM and in
// Kubernetes, without what differs between two equal runs (IDs, dates).
type clusterInventory struct {
	// Status is what the object says it owns; the OIDC provider's ownership
	// is left out, because kumo keeps no tags on providers, so a provider
	// whose create answer was lost cannot be told from someone else's.
	Status          []string
	Roles           []roleInventory
	Policies        []string
	OIDCProviders   int
	Profiles        []string
	ServiceAccounts map[string]string
}

type roleInventory struct {
	Name, Path, Trust string
	Attached          []string
	Inline            map[string]string
	Tags              map[string]string
	MaxSession        int32
}

func inventory(ctx context.Context, cluster string) clusterInventory {
	GinkgoHelper()
	var inv clusterInventory
	// MaxItems explicitly: kumo stops at 100 and says the list is complete.
	pages := iam.NewListRolesPaginator(env.IAM, &iam.ListRolesInput{MaxItems: aws.Int32(1000)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, r := range page.Roles {
			name := aws.ToString(r.RoleName)
			if !strings.Contains(name, cluster) {
				continue
			}
			role, err := env.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: r.RoleName})
			Expect(err).NotTo(HaveOccurred())
			trust, err := policy.Parse(aws.ToString(role.Role.AssumeRolePolicyDocument))
			Expect(err).NotTo(HaveOccurred())
			ri := roleInventory{Name: name, Path: aws.ToString(r.Path), Trust: trust.Marshal(), Inline: map[string]string{}, Tags: map[string]string{},
				MaxSession: aws.ToInt32(role.Role.MaxSessionDuration), Attached: attached(ctx, name)}
			for _, t := range role.Role.Tags {
				ri.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
			}
			names, err := env.IAM.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: r.RoleName})
			Expect(err).NotTo(HaveOccurred())
			for _, p := range names.PolicyNames {
				doc, err := env.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: r.RoleName, PolicyName: aws.String(p)})
				Expect(err).NotTo(HaveOccurred())
				parsed, err := policy.Parse(aws.ToString(doc.PolicyDocument))
				Expect(err).NotTo(HaveOccurred())
				ri.Inline[p] = parsed.Marshal()
			}
			inv.Roles = append(inv.Roles, ri)
		}
	}
	slices.SortFunc(inv.Roles, func(a, b roleInventory) int { return strings.Compare(a.Name, b.Name) })
	policyPages := iam.NewListPoliciesPaginator(env.IAM, &iam.ListPoliciesInput{Scope: "Local", MaxItems: aws.Int32(1000)})
	for policyPages.HasMorePages() {
		page, err := policyPages.NextPage(ctx)
		Expect(err).NotTo(HaveOccurred())
		for _, p := range page.Policies {
			if strings.Contains(aws.ToString(p.PolicyName), cluster) {
				inv.Policies = append(inv.Policies, aws.ToString(p.PolicyName))
			}
		}
	}
	slices.Sort(inv.Policies)
	providers, err := env.IAM.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	Expect(err).NotTo(HaveOccurred())
	for _, p := range providers.OpenIDConnectProviderList {
		if strings.HasSuffix(strings.ToLower(aws.ToString(p.Arn)), "/id/"+cluster) {
			inv.OIDCProviders++
		}
	}
	list := desired.NewProfileList()
	Expect(env.Kube.Resources().List(ctx, list, resources.WithLabelSelector(desired.LabelOwner+"="+cluster))).To(Succeed())
	for _, p := range list.Items {
		plugins, _, _ := unstructured.NestedSlice(p.Object, "spec", "plugins")
		owner, _, _ := unstructured.NestedString(p.Object, "spec", "owner", "name")
		data, err := json.Marshal(plugins)
		Expect(err).NotTo(HaveOccurred())
		inv.Profiles = append(inv.Profiles, p.GetName()+" "+owner+" "+string(data))
	}
	slices.Sort(inv.Profiles)
	cr := &v1alpha1.AwsKubeflowProfiles{}
	Expect(env.Kube.Resources().Get(ctx, cluster, "", cr)).To(Succeed())
	pc := cr.Status.ProfileController
	inv.Status = append(inv.Status, "policy "+string(pc.Policy.Ownership), "role "+string(pc.Role.Ownership), "ready "+cr.Status.ProfilesReady)
	for _, p := range cr.Status.Profiles {
		inv.Status = append(inv.Status, fmt.Sprintf("%s %s ready=%v", p.Name, p.State, p.Ready))
	}
	sa, err := env.Clientset.CoreV1().ServiceAccounts("kubeflow").Get(ctx, "pc-"+cluster, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	inv.ServiceAccounts = map[string]string{sa.Name: sa.Annotations[roleARNAnnotation]}
	return inv
}

// normalize writes an inventory with its cluster's name replaced, so two
// runs for two clusters compare equal when they made the same things.
func normalize(inv clusterInventory, cluster string) string {
	data, err := json.MarshalIndent(inv, "", " ")
	Expect(err).NotTo(HaveOccurred())
	s := strings.ReplaceAll(string(data), strings.ToUpper(cluster), "CLUSTER")
	return strings.ReplaceAll(s, cluster, "CLUSTER")
}
