package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/awskubeflowprofiles/operator/internal/controller"
)

// The metrics endpoint is served as in a cluster: over HTTPS, to a bearer
// token whose user may get /metrics, as config/rbac's metrics-reader allows.
var _ = Describe("Metrics", func() {
	It("serves its metrics over HTTPS only to a service account bound to metrics-reader", Label("local", "node", "eks", "metrics"), func(ctx SpecContext) {
		if env.MetricsURL == nil {
			Skip(target.Name() + ": the suite cannot reach the operator's metrics endpoint here")
		}
		url, err := env.MetricsURL(ctx)
		Expect(err).NotTo(HaveOccurred())
		suffix := randomSuffix()
		ns := "e2e-metrics-" + suffix
		cs := env.Clientset
		_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})).To(Succeed())
		})
		token := func(sa string) string {
			GinkgoHelper()
			_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			return tr.Status.Token
		}

		By("binding a scraper to the rules of config/rbac's metrics-reader")
		reader := metricsReaderRole()
		reader.Name = "e2e-metrics-reader-" + suffix
		_, err = cs.RbacV1().ClusterRoles().Create(ctx, &reader, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(cs.RbacV1().ClusterRoles().Delete(ctx, reader.Name, metav1.DeleteOptions{})).To(Succeed())
		})
		_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: reader.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: reader.Name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "scraper"}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(cs.RbacV1().ClusterRoleBindings().Delete(ctx, reader.Name, metav1.DeleteOptions{})).To(Succeed())
		})
		scraper, stranger := token("scraper"), token("stranger")

		By("refusing a caller without a token, and one whose account is not bound")
		// The endpoint may still be starting, as right after the faults
		// spec restarts the operator, or the Service has no endpoint yet.
		Eventually(func(g Gomega) {
			status, body, err := scrapeOnce(ctx, url, "")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(status).To(Equal(http.StatusUnauthorized), body)
		}).Should(Succeed())
		status, body := scrape(ctx, url, stranger)
		Expect(status).To(Equal(http.StatusForbidden), body)
		Expect(body).To(ContainSubstring("system:serviceaccount:" + ns + ":stranger"))

		By("serving the bound scraper the operator's metrics")
		// RBAC reaches the API server's authorizer a moment after the
		// binding is created.
		Eventually(func(g Gomega) {
			status, body := scrape(ctx, url, scraper)
			g.Expect(status).To(Equal(http.StatusOK), body)
			g.Expect(body).To(ContainSubstring(`controller_runtime_reconcile_total{controller="` + controller.ControllerName + `"`))
		}).Should(Succeed())
	})
})

// metricsReaderRole is config/rbac/metrics_reader_role.yaml.
func metricsReaderRole() rbacv1.ClusterRole {
	GinkgoHelper()
	raw, err := os.ReadFile(filepath.Join("..", "config", "rbac", "metrics_reader_role.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var role rbacv1.ClusterRole
	Expect(utilyaml.Unmarshal(raw, &role)).To(Succeed())
	return role
}

// scrape gets url as Prometheus does with a bearer token ("" for none).
func scrape(ctx context.Context, url, token string) (int, string) {
	GinkgoHelper()
	status, body, err := scrapeOnce(ctx, url, token)
	Expect(err).NotTo(HaveOccurred())
	return status, body
}

// scrapeOnce is scrape that returns its error. The serving certificate is the
// operator's own, self-signed unless a cluster gives it one, so it is not
// verified.
func scrapeOnce(ctx context.Context, url, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // see above
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}
