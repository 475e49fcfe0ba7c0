package metricsauth_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/awskubeflowprofiles/operator/internal/metricsauth"
)

// TestFilterOnAControlPlane serves a handler behind the filter, with the
// identity and the RBAC the operator's manifests give it, and calls it as
// Prometheus and as others would.
func TestFilterOnAControlPlane(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver and etcd into bin/k8s")
	}
	g := NewWithT(t)
	ctx := context.Background()
	env := &envtest.Environment{}
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	admin := kubernetes.NewForConfigOrDie(cfg)

	// The manifests' roles, as kustomize installs them: the operator's
	// service account may review, the metrics reader may get /metrics.
	for _, ns := range []string{"system", "monitoring"} {
		_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	for _, sa := range []struct{ ns, name string }{{"system", "controller-manager"}, {"system", "no-rbac"}, {"monitoring", "prometheus"}, {"monitoring", "intruder"}} {
		_, err := admin.CoreV1().ServiceAccounts(sa.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa.name}}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	for _, file := range []string{"metrics_auth_role.yaml", "metrics_reader_role.yaml"} {
		role := manifest[rbacv1.ClusterRole](t, file)
		_, err := admin.RbacV1().ClusterRoles().Create(ctx, &role, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	binding := manifest[rbacv1.ClusterRoleBinding](t, "metrics_auth_role_binding.yaml")
	_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &binding, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	bindReader := func(ns, sa string) {
		_, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "metrics-reader-" + sa},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "metrics-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}},
		}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
	}
	bindReader("monitoring", "prometheus")
	token := func(ns, sa string) string {
		tr, err := admin.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		return tr.Status.Token
	}
	prometheus, intruder := token("monitoring", "prometheus"), token("monitoring", "intruder")

	var reviews atomic.Int32
	serve := func(identity string, opts metricsauth.Options) string {
		filterCfg := rest.CopyConfig(cfg)
		filterCfg.Impersonate = rest.ImpersonationConfig{UserName: identity}
		filterCfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
			return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
				if req.Method == http.MethodPost {
					reviews.Add(1)
				}
				return next.RoundTrip(req)
			})
		})
		return serveFiltered(t, filterCfg, opts)
	}
	operator := serve("system:serviceaccount:system:controller-manager", metricsauth.Options{DenyTTL: time.Second})

	cases := []struct {
		name, path, authorization string
		status                    int
		body                      string
	}{
		{"no token", "/metrics", "", http.StatusUnauthorized, "Authorization: Bearer"},
		{"not a bearer token", "/metrics", "Basic " + prometheus, http.StatusUnauthorized, "Unauthorized"},
		{"an empty bearer token", "/metrics", "Bearer ", http.StatusUnauthorized, "Unauthorized"},
		{"a token the API server did not issue", "/metrics", "Bearer not-a-token", http.StatusUnauthorized, "Unauthorized"},
		{"Prometheus", "/metrics", "Bearer " + prometheus, http.StatusOK, "metrics, and no Authorization header"},
		{"Prometheus, scheme in lower case", "/metrics", "bearer " + prometheus, http.StatusOK, "metrics"},
		{"Prometheus, words after the token, which the API server ignores too", "/metrics", "Bearer " + prometheus + " trailing", http.StatusOK, "metrics"},
		{"two spaces before the token, an empty token to the API server", "/metrics", "Bearer  " + prometheus, http.StatusUnauthorized, "Unauthorized"},
		{"Prometheus, on a path metrics-reader does not grant", "/debug/pprof/", "Bearer " + prometheus, http.StatusForbidden, "allows get on the non-resource URL /debug/pprof/"},
		{"a service account without metrics-reader", "/metrics", "Bearer " + intruder, http.StatusForbidden, "Authorization denied for user system:serviceaccount:monitoring:intruder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := get(t, operator+c.path, c.authorization)
			NewWithT(t).Expect(status).To(Equal(c.status), body)
			NewWithT(t).Expect(body).To(ContainSubstring(c.body))
		})
	}

	t.Run("reviews are cached", func(t *testing.T) {
		g := NewWithT(t)
		status, body := get(t, operator+"/metrics", "Bearer "+prometheus)
		g.Expect(status).To(Equal(http.StatusOK), body)
		before := reviews.Load()
		for range 5 {
			status, body := get(t, operator+"/metrics", "Bearer "+prometheus)
			g.Expect(status).To(Equal(http.StatusOK), body)
		}
		g.Expect(reviews.Load() - before).To(BeZero())
	})

	t.Run("a denial is cached, and forgotten after DenyTTL once the caller is bound", func(t *testing.T) {
		g := NewWithT(t)
		status, _ := get(t, operator+"/metrics", "Bearer "+intruder)
		g.Expect(status).To(Equal(http.StatusForbidden))
		before := reviews.Load()
		status, _ = get(t, operator+"/metrics", "Bearer "+intruder)
		g.Expect(status).To(Equal(http.StatusForbidden))
		g.Expect(reviews.Load()-before).To(BeZero(), "reviews of a denial within DenyTTL")
		bindReader("monitoring", "intruder")
		NewWithT(t).Eventually(func() int {
			status, _ := get(t, operator+"/metrics", "Bearer "+intruder)
			return status
		}).WithTimeout(15 * time.Second).WithPolling(200 * time.Millisecond).Should(Equal(http.StatusOK))
	})

	t.Run("an identity without the metrics-auth-role cannot review, and says so", func(t *testing.T) {
		nobody := serve("system:serviceaccount:system:no-rbac", metricsauth.Options{})
		status, body := get(t, nobody+"/metrics", "Bearer "+prometheus)
		NewWithT(t).Expect(status).To(Equal(http.StatusInternalServerError), body)
		NewWithT(t).Expect(body).To(ContainSubstring("Authentication failed"))
	})

	t.Run("a review the API server could not answer is made again, whole", func(t *testing.T) {
		g := NewWithT(t)
		busyCfg := rest.CopyConfig(cfg)
		busyCfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:system:controller-manager"}
		var mu sync.Mutex
		refused := map[string]bool{}
		var bodies []string
		busyCfg.Wrap(func(next http.RoundTripper) http.RoundTripper {
			return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
				if req.Method != http.MethodPost {
					return next.RoundTrip(req)
				}
				body, err := io.ReadAll(req.Body)
				if err != nil {
					return nil, err
				}
				req.Body = io.NopCloser(bytes.NewReader(body))
				mu.Lock()
				first := !refused[req.URL.Path]
				refused[req.URL.Path] = true
				bodies = append(bodies, string(body))
				mu.Unlock()
				if first {
					// The first review of each kind meets a busy API server.
					return &http.Response{StatusCode: http.StatusServiceUnavailable, Request: req, Header: http.Header{"Content-Type": {"application/json"}},
						Body: io.NopCloser(strings.NewReader(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503}`))}, nil
				}
				return next.RoundTrip(req)
			})
		})
		url := serveFiltered(t, busyCfg, metricsauth.Options{Backoff: wait.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 3}})
		status, body := get(t, url+"/metrics", "Bearer "+prometheus)
		g.Expect(status).To(Equal(http.StatusOK), body)
		g.Expect(bodies).To(HaveLen(4), "a TokenReview and a SubjectAccessReview, each tried twice")
		g.Expect(bodies[1]).To(Equal(bodies[0]), "the TokenReview tried again")
		g.Expect(bodies[1]).To(ContainSubstring(prometheus))
		g.Expect(bodies[3]).To(Equal(bodies[2]), "the SubjectAccessReview tried again")
		g.Expect(bodies[3]).To(ContainSubstring("/metrics"))
	})

	t.Run("an API server that does not answer fails the request after the retries", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		closed := "https://" + l.Addr().String()
		_ = l.Close()
		gone := rest.CopyConfig(cfg)
		gone.Host = closed
		var tries atomic.Int32
		gone.Wrap(func(next http.RoundTripper) http.RoundTripper {
			return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
				tries.Add(1)
				return next.RoundTrip(req)
			})
		})
		url := serveFiltered(t, gone, metricsauth.Options{Backoff: wait.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 3}})
		status, body := get(t, url+"/metrics", "Bearer "+prometheus)
		NewWithT(t).Expect(status).To(Equal(http.StatusInternalServerError), body)
		NewWithT(t).Expect(tries.Load()).To(BeEquivalentTo(3), "tries of the TokenReview")
	})
}

// serveFiltered serves, behind the filter built from cfg, a handler that
// answers "metrics" and says whether the caller's token reached it.
func serveFiltered(t *testing.T, cfg *rest.Config, opts metricsauth.Options) string {
	t.Helper()
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	filter, err := opts.FilterProvider(cfg, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	handler, err := filter(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") != "" {
			_, _ = io.WriteString(w, "metrics, and the caller's token")
			return
		}
		_, _ = io.WriteString(w, "metrics, and no Authorization header")
	}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, url, authorization string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// manifest reads one object of kind T from config/rbac.
func manifest[T any](t *testing.T, file string) T {
	t.Helper()
	var obj T
	raw, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", file))
	if err == nil {
		err = utilyaml.Unmarshal(raw, &obj)
	}
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	return obj
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
