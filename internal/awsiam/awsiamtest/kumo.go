// Package awsiamtest runs the kumo AWS emulator for tests and records every
// AWS call made through its clients at the HTTP layer, independently of the
// code under test, so tests can count calls by action and resource.
package awsiamtest

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	ekstypes "github.com/aws/aws-sdk-go-v2/service/eks/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/sivchari/kumo"

	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// AccountID is the account kumo puts in IAM ARNs, and the one its STS
// answers behind the proxy that Start puts in front of it.
const AccountID = "123456789012"

// Env is a running kumo with SDK clients whose calls are recorded.
type Env struct {
	// URL is the endpoint to give AWS SDK clients: kumo behind a proxy that
	// closes one of its gaps (see Start).
	URL      string
	Config   aws.Config
	IAM      *iam.Client
	STS      *sts.Client
	EKS      *eks.Client
	Recorder *Recorder
	// Chaos injects faults when StartWith was asked for it; nil otherwise.
	Chaos  *Chaos
	server *kumo.Server
	proxy  *httptest.Server
}

// Options change where and how Start serves kumo.
type Options struct {
	// ListenAddr is where the proxy in front of kumo listens; a random
	// loopback port when empty. Pods of a node reach the host at its bridge
	// gateway, so the node target listens on every address.
	ListenAddr string
	// TokenKey, when set, is the key web identity tokens must be signed
	// with to be exchanged at STS.
	TokenKey *rsa.PublicKey
	// Chaos puts a Chaos in front of the proxy, off until configured.
	Chaos bool
	// AuthorizationDetails serves iam:GetAccountAuthorizationDetails, which
	// kumo lacks, with a fake built from kumo's roles (see details.go).
	AuthorizationDetails bool
	// ListRolesLikeIAM answers iam:ListRoles without the roles' tags, as IAM
	// does (its ListRoles omits tags and boundaries) and kumo does not.
	ListRolesLikeIAM bool
}

// Start runs kumo on a random loopback port, behind a proxy on another that
// closes the gaps that matter to the operator and its tests:
//   - kumo's STS answers the account its IAM puts in ARNs (kumo's STS says
//     000000000000, its IAM 123456789012), so the operator can check a
//     spec's account against its credentials as it does on AWS;
//   - sts:AssumeRoleWithWebIdentity is decided as STS decides it, from the
//     token's claims, the account's OIDC providers and the role's trust
//     (kumo grants any token any role), and sts:GetCallerIdentity answers
//     the assumed role for the credentials it returned (kumo answers its
//     root).
//
// kumo keeps its state per process, not per server, so tests must use names
// no other test uses.
func Start() *Env { return StartWith(Options{}) }

// StartWith is Start with options.
func StartWith(o Options) *Env {
	srv := kumo.NewServer()
	target, err := url.Parse(srv.URL)
	if err != nil {
		panic(fmt.Sprintf("kumo's URL %q: %v", srv.URL, err))
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = oneAccount
	direct := Config(srv.URL, nil)
	guard := &stsGuard{next: rp, iam: iam.NewFromConfig(direct), verifyKey: o.TokenKey, details: o.AuthorizationDetails, untaggedLists: o.ListRolesLikeIAM, sessions: map[string]callerIdentity{}}
	var handler http.Handler = guard
	var chaos *Chaos
	if o.Chaos {
		chaos = NewChaos(guard)
		handler = chaos
	}
	proxy := httptest.NewUnstartedServer(handler)
	if o.ListenAddr != "" {
		l, err := net.Listen("tcp", o.ListenAddr)
		if err != nil {
			panic(fmt.Sprintf("listening on %s for kumo: %v", o.ListenAddr, err))
		}
		_ = proxy.Listener.Close()
		proxy.Listener = l
	}
	proxy.Start()
	cfg, rec := RecordedConfig(proxy.URL)
	return &Env{
		URL:      proxy.URL,
		Config:   cfg,
		IAM:      iam.NewFromConfig(cfg),
		STS:      sts.NewFromConfig(cfg),
		EKS:      eks.NewFromConfig(cfg),
		Recorder: rec,
		Chaos:    chaos,
		server:   srv,
		proxy:    proxy,
	}
}

// RecordedConfig is an SDK configuration for the endpoint whose calls a new
// Recorder of their own records, for a client whose calls must be told from
// those of the rest of a test.
func RecordedConfig(endpoint string) (aws.Config, *Recorder) {
	rec := &Recorder{}
	return Config(endpoint, &http.Client{Transport: &recordingTransport{next: http.DefaultTransport, rec: rec}}), rec
}

// kumoSTSAccount is the account kumo's STS answers.
const kumoSTSAccount = "000000000000"

// oneAccount rewrites the account in kumo's STS answers to AccountID.
func oneAccount(resp *http.Response) error {
	if !strings.Contains(resp.Header.Get("Content-Type"), "xml") {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if bytes.Contains(body, []byte("<GetCallerIdentityResult>")) || bytes.Contains(body, []byte("<AssumeRoleWithWebIdentityResult>")) {
		body = bytes.ReplaceAll(body, []byte(kumoSTSAccount), []byte(AccountID))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// Config is an SDK configuration for an emulator at endpoint: static
// credentials (kumo checks no signature, but unsigned requests lose fields)
// and region us-east-1.
func Config(endpoint string, httpClient aws.HTTPClient) aws.Config {
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIAKUMOLOCAL", "kumo-local-secret", ""),
		BaseEndpoint: aws.String(endpoint),
		HTTPClient:   httpClient,
	}
	if httpClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return cfg
}

// Close stops the proxy and the server.
func (e *Env) Close() {
	e.proxy.Close()
	e.server.Close()
}

// Call is one recorded AWS API call.
type Call struct {
	// Service is the signing name: iam, sts, eks.
	Service string
	// Action is the operation, e.g. GetRole.
	Action string
	// Params are the form parameters of query-protocol calls (IAM, STS).
	Params url.Values
}

// Write reports whether the call changes state: anything but a read.
func (c Call) Write() bool {
	for _, p := range []string{"Get", "List", "Describe"} {
		if strings.HasPrefix(c.Action, p) {
			return false
		}
	}
	return true
}

// Mentions reports whether any parameter of the call contains s, e.g. a role
// name or an ARN.
func (c Call) Mentions(s string) bool {
	for _, vs := range c.Params {
		for _, v := range vs {
			if strings.Contains(v, s) {
				return true
			}
		}
	}
	return false
}

// Recorder keeps the calls made through an Env's clients and answers those
// that match an injected Fault with an AWS error instead of passing them on.
type Recorder struct {
	mu     sync.Mutex
	calls  []Call
	faults map[int]Fault
	nextID int
}

// Fault answers the calls it matches with an AWS error, the way IAM or STS
// would, without passing them to kumo. It stands in for what kumo cannot do:
// fail.
type Fault struct {
	// Match selects the calls that fail.
	Match func(Call) bool
	// Status is the HTTP status of the answer; 400 when zero, which the SDK
	// does not retry, so each failure reaches the operator at once.
	Status int
	// Code is the AWS error code; InjectedFault when empty.
	Code string
}

// Inject makes matching calls fail until the returned function is called.
func (r *Recorder) Inject(f Fault) (remove func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.faults == nil {
		r.faults = map[int]Fault{}
	}
	id := r.nextID
	r.nextID++
	r.faults[id] = f
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.faults, id)
	}
}

// fault returns the fault that matches c, if any.
func (r *Recorder) fault(c Call) (Fault, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.faults {
		if f.Match(c) {
			return f, true
		}
	}
	return Fault{}, false
}

// response is the error answer of the AWS query protocol that IAM and STS
// use.
func (f Fault) response(req *http.Request) *http.Response {
	status, code := f.Status, f.Code
	if status == 0 {
		status = http.StatusBadRequest
	}
	if code == "" {
		code = "InjectedFault"
	}
	body := `<ErrorResponse><Error><Type>Sender</Type><Code>` + code +
		`</Code><Message>injected by the test</Message></Error><RequestId>injected</RequestId></ErrorResponse>`
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"text/xml"}},
		Body:   io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body)), Request: req,
	}
}

// Calls returns the calls recorded since the last Reset.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Reset forgets the recorded calls.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = nil
}

// Matching returns the calls for which keep is true.
func (r *Recorder) Matching(keep func(Call) bool) []Call {
	var out []Call
	for _, c := range r.Calls() {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// Actions lists the actions of calls, in order.
func Actions(calls []Call) []string {
	out := make([]string, 0, len(calls))
	for _, c := range calls {
		out = append(out, c.Action)
	}
	return out
}

func (r *Recorder) add(c Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

// recordingTransport records each request before passing it on.
type recordingTransport struct {
	next http.RoundTripper
	rec  *Recorder
}

var scopeService = regexp.MustCompile(`Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request`)

func (t *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	call := Call{}
	if m := scopeService.FindStringSubmatch(req.Header.Get("Authorization")); m != nil {
		call.Service = m[1]
	}
	if req.Body != nil && strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		_ = req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		if form, err := url.ParseQuery(string(body)); err == nil {
			call.Action = form.Get("Action")
			call.Params = form
		}
	}
	if call.Action == "" {
		// REST services such as EKS: the operation is in the path.
		call.Action = restAction(req)
	}
	t.rec.add(call)
	if f, ok := t.rec.fault(call); ok {
		return f.response(req), nil
	}
	return t.next.RoundTrip(req)
}

func restAction(req *http.Request) string {
	if req.Method == http.MethodGet && strings.HasPrefix(req.URL.Path, "/clusters/") {
		return "DescribeCluster"
	}
	return req.Method + " " + req.URL.Path
}

// CreateCluster creates an EKS cluster in kumo and returns its OIDC issuer.
func (e *Env) CreateCluster(ctx context.Context, name string) (string, error) {
	out, err := e.EKS.CreateCluster(ctx, &eks.CreateClusterInput{
		Name:               aws.String(name),
		RoleArn:            aws.String("arn:aws:iam::" + AccountID + ":role/eks-cluster"),
		ResourcesVpcConfig: &ekstypes.VpcConfigRequest{},
	})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Cluster.Identity.Oidc.Issuer), nil
}

// RoleTrust reads and parses the trust policy of a role.
func RoleTrust(ctx context.Context, api *iam.Client, role string) (policy.Document, error) {
	out, err := api.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(role)})
	if err != nil {
		return policy.Document{}, err
	}
	return policy.Parse(aws.ToString(out.Role.AssumeRolePolicyDocument))
}

// AttachedPolicyARNs lists, sorted, the managed policies attached to a role.
func AttachedPolicyARNs(ctx context.Context, api *iam.Client, role string) ([]string, error) {
	out, err := api.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(role)})
	if err != nil {
		return nil, err
	}
	arns := make([]string, 0, len(out.AttachedPolicies))
	for _, p := range out.AttachedPolicies {
		arns = append(arns, aws.ToString(p.PolicyArn))
	}
	slices.Sort(arns)
	return arns, nil
}
