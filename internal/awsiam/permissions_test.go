package awsiam_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// sdkCalls are the AWS operations the package's code calls, as IAM policy
// actions, read from the source: every c.iam.X(...), c.sts.X(...) and
// c.eks.X(...) call.
func sdkCalls(t *testing.T) []string {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			method, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			field, ok := method.X.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if recv, ok := field.X.(*ast.Ident); ok && recv.Name == "c" && slices.Contains([]string{"iam", "sts", "eks"}, field.Sel.Name) {
				seen[field.Sel.Name+":"+method.Sel.Name] = true
			}
			return true
		})
	}
	return slices.Sorted(func(yield func(string) bool) {
		for k := range seen {
			if !yield(k) {
				return
			}
		}
	})
}

// readmePolicy is the IAM policy the README tells users to grant the
// operator, with <account> filled in.
func readmePolicy(t *testing.T) policy.Document {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	i := strings.Index(text, "Grant it these permissions")
	if i < 0 {
		t.Fatal("README.md has no 'Grant it these permissions' step")
	}
	block := regexp.MustCompile("(?s)```json\n(.*?)```").FindStringSubmatch(text[i:])
	if block == nil {
		t.Fatal("no json block after 'Grant it these permissions' in README.md")
	}
	doc, err := policy.Parse(strings.ReplaceAll(block[1], "<account>", "123456789012"))
	if err != nil {
		t.Fatalf("the README's policy does not parse: %v", err)
	}
	return doc
}

// The narrow SDK interfaces list exactly what the code calls: nothing the
// operator never does is part of what it needs.
func TestInterfacesListOnlyWhatTheCodeCalls(t *testing.T) {
	g := NewWithT(t)
	var methods []string
	for prefix, typ := range map[string]reflect.Type{
		"iam": reflect.TypeFor[awsiam.IAMAPI](),
		"sts": reflect.TypeFor[awsiam.STSAPI](),
		"eks": reflect.TypeFor[awsiam.EKSAPI](),
	} {
		for i := range typ.NumMethod() {
			methods = append(methods, prefix+":"+typ.Method(i).Name)
		}
	}
	g.Expect(methods).To(ConsistOf(sdkCalls(t)))
}

// The README's policy for the operator covers exactly the calls the code
// makes, no more and no less, each on every resource some spec can make the
// operator touch.
func TestReadmePolicyCoversExactlyTheCalls(t *testing.T) {
	g := NewWithT(t)
	doc := readmePolicy(t)
	granted := map[string][]string{}
	for _, s := range doc.Statement {
		g.Expect(s.Effect).To(Equal(policy.Allow))
		for _, a := range s.Action {
			granted[a] = append(granted[a], s.Resource...)
		}
	}
	calls := sdkCalls(t)
	g.Expect(slices.Sorted(func(yield func(string) bool) {
		for a := range granted {
			if !yield(a) {
				return
			}
		}
	})).To(Equal(calls), "README.md grants other actions than the code calls")

	// What each kind of call may touch, for every configuration the spec
	// allows.
	const acct = "arn:aws:iam::123456789012:"
	reach := []struct {
		what    string
		actions []string
		arns    []string
	}{{
		what:    "discovery",
		actions: []string{"sts:GetCallerIdentity", "eks:DescribeCluster"},
		arns:    []string{"arn:aws:eks:us-west-2:123456789012:cluster/prod"},
	}, {
		what: "the OIDC provider, of EKS or of any other issuer",
		actions: []string{"iam:GetOpenIDConnectProvider", "iam:CreateOpenIDConnectProvider", "iam:TagOpenIDConnectProvider",
			"iam:UpdateOpenIDConnectProviderThumbprint", "iam:DeleteOpenIDConnectProvider"},
		arns: []string{acct + "oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/ABC", acct + "oidc-provider/issuer.example.com/k8s"},
	}, {
		what:    "the policies a spec names, customer and AWS managed, and the controller policy",
		actions: []string{"iam:GetPolicy"},
		arns:    []string{acct + "policy/team/datasets", "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess", acct + "policy/kf-profile-controller-prod-policy"},
	}, {
		what: "the controller policy, under its default, legacy or any chosen name",
		actions: []string{"iam:GetPolicyVersion", "iam:ListPolicyVersions", "iam:CreatePolicy", "iam:CreatePolicyVersion",
			"iam:DeletePolicyVersion", "iam:DeletePolicy", "iam:TagPolicy"},
		arns: []string{acct + "policy/kf-profile-controller-prod-policy", acct + "policy/kf-profile-controller-policy", acct + "policy/my-controller-policy"},
	}, {
		what: "profile roles under any role path, adopted roles anywhere, the controller role under any name",
		actions: []string{"iam:GetRole", "iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole", "iam:TagRole", "iam:UpdateAssumeRolePolicy",
			"iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary", "iam:ListAttachedRolePolicies", "iam:AttachRolePolicy",
			"iam:DetachRolePolicy", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
			"iam:ListInstanceProfilesForRole"},
		arns: []string{acct + "role/kubeflow/prod/team-a-prod-role", acct + "role/teams/prod/team-a", acct + "role/legacy-team-role",
			acct + "role/kf-profile-controller-prod-role", acct + "role/my-controller"},
	}, {
		what:    "the bulk reads of roles, which IAM authorizes on no resource",
		actions: []string{"iam:ListRoles", "iam:GetAccountAuthorizationDetails"},
		arns:    []string{"*"},
	}}
	var classified []string
	for _, r := range reach {
		for _, action := range r.actions {
			classified = append(classified, action)
			for _, arn := range r.arns {
				g.Expect(slices.ContainsFunc(granted[action], func(pattern string) bool { return glob(pattern, arn) })).To(BeTrue(),
					"%s: README.md grants %s on %v, which does not cover %s", r.what, action, granted[action], arn)
			}
		}
	}
	g.Expect(classified).To(ConsistOf(calls), "every call the code makes has a reach above")
}

// glob is IAM's resource matching for the wildcard *.
func glob(pattern, s string) bool {
	re := "^" + strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*") + "$"
	return regexp.MustCompile(re).MatchString(s)
}
