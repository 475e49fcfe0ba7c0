package awsiamtest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// stsGuard stands in front of kumo's STS for what kumo does not do: it
// decides sts:AssumeRoleWithWebIdentity the way STS does, from the token's
// claims, the account's OIDC providers and the role's trust policy (kumo
// grants any token any role), and it answers sts:GetCallerIdentity for the
// credentials it let through with their assumed role (kumo always answers
// its root). Everything else passes to kumo unchanged.
type stsGuard struct {
	next http.Handler
	iam  *iam.Client
	// verifyKey, when set, is the key the tokens must be signed with.
	verifyKey *rsa.PublicKey
	// details serves a fake of iam:GetAccountAuthorizationDetails.
	details bool
	// untaggedLists answers iam:ListRoles without the roles' tags.
	untaggedLists bool

	mu sync.Mutex
	// sessions maps the access key of credentials the guard let through to
	// the assumed-role ARN and user ID they stand for.
	sessions map[string]callerIdentity
}

type callerIdentity struct{ arn, userID, account string }

func (g *stsGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	form, body, err := readForm(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	switch form.Get("Action") {
	case "AssumeRoleWithWebIdentity":
		if code, msg := g.authorize(r.Context(), form); code != "" {
			writeSTSError(w, http.StatusForbidden, code, msg)
			return
		}
		g.exchange(w, r, form)
	case "GetCallerIdentity":
		if id, ok := g.session(r); ok {
			writeCallerIdentity(w, id)
			return
		}
		g.next.ServeHTTP(w, withBody(r, body))
	case "ListRoles":
		if g.untaggedLists {
			g.rewritten(w, withBody(r, body), func(answer []byte) []byte { return roleTags.ReplaceAll(answer, nil) })
			return
		}
		g.next.ServeHTTP(w, withBody(r, body))
	case "GetAccountAuthorizationDetails":
		if g.details {
			g.authorizationDetails(w, r, form)
			return
		}
		g.next.ServeHTTP(w, withBody(r, body))
	default:
		g.next.ServeHTTP(w, withBody(r, body))
	}
}

// roleTags are the tags of a role in a ListRoles answer, which IAM leaves
// out and kumo does not.
var roleTags = regexp.MustCompile(`(?s)<Tags>.*?</Tags>`)

// authorize returns an STS error code and message when the web identity
// may not assume the role, or "" when it may.
func (g *stsGuard) authorize(ctx context.Context, form url.Values) (string, string) {
	claims, err := g.claims(form.Get("WebIdentityToken"))
	if err != nil {
		return "InvalidIdentityToken", err.Error()
	}
	roleARN := form.Get("RoleArn")
	account, roleName := roleOfARN(roleARN)
	if roleName == "" {
		return "ValidationError", "RoleArn is not a role ARN: " + roleARN
	}
	host := policy.IssuerHost(claims.Issuer)
	providerARN := "arn:aws:iam::" + account + ":oidc-provider/" + host
	provider, err := g.iam.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(providerARN)})
	if err != nil {
		return "InvalidIdentityToken", "No OpenIDConnect provider found in your account for " + claims.Issuer
	}
	audienceKnown := false
	for _, aud := range claims.Audience {
		for _, id := range provider.ClientIDList {
			audienceKnown = audienceKnown || aud == id
		}
	}
	if !audienceKnown {
		return "InvalidIdentityToken", fmt.Sprintf("Incorrect token audience %v for provider %s", claims.Audience, providerARN)
	}
	role, err := g.iam.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(roleName)})
	if err != nil {
		return "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity: " + err.Error()
	}
	trust, err := policy.Parse(aws.ToString(role.Role.AssumeRolePolicyDocument))
	if err != nil {
		return "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity: unreadable trust policy"
	}
	d, err := policy.Evaluate(trust, policy.WebIdentityRequest(providerARN, claims.Issuer, claims.Subject, claims.Audience))
	if err != nil || !d.Allowed {
		return "AccessDenied", fmt.Sprintf("Not authorized to perform sts:AssumeRoleWithWebIdentity: %s may not assume %s", claims.Subject, roleARN)
	}
	return "", ""
}

// claims reads a JWT's claims, checking its RS256 signature when the guard
// has a key.
func (g *stsGuard) claims(token string) (policy.Claims, error) {
	if g.verifyKey != nil {
		parts := strings.Split(token, ".")
		if len(parts) != 3 {
			return policy.Claims{}, fmt.Errorf("the web identity token is not a JWT")
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			return policy.Claims{}, fmt.Errorf("the token's signature: %w", err)
		}
		sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		if err := rsa.VerifyPKCS1v15(g.verifyKey, crypto.SHA256, sum[:], sig); err != nil {
			return policy.Claims{}, fmt.Errorf("the token's signature does not verify")
		}
	}
	return policy.DecodeClaims(token)
}

var roleARNPattern = regexp.MustCompile(`^arn:[a-z-]+:iam::([0-9]{12}):role/(?:.*/)?([^/]+)$`)

func roleOfARN(arn string) (account, name string) {
	m := roleARNPattern.FindStringSubmatch(arn)
	if m == nil {
		return "", ""
	}
	return m[1], m[2]
}

// remember notes the credentials of a successful AssumeRoleWithWebIdentity
// answer.
func (g *stsGuard) remember(answer []byte) {
	var out struct {
		Result struct {
			Credentials struct {
				AccessKeyID string `xml:"AccessKeyId"`
			} `xml:"Credentials"`
			User struct {
				Arn string `xml:"Arn"`
				ID  string `xml:"AssumedRoleId"`
			} `xml:"AssumedRoleUser"`
		} `xml:"AssumeRoleWithWebIdentityResult"`
	}
	if err := xml.Unmarshal(answer, &out); err != nil || out.Result.Credentials.AccessKeyID == "" {
		return
	}
	account := ""
	if parts := strings.Split(out.Result.User.Arn, ":"); len(parts) > 4 {
		account = parts[4]
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sessions[out.Result.Credentials.AccessKeyID] = callerIdentity{arn: out.Result.User.Arn, userID: out.Result.User.ID, account: account}
}

var credentialKey = regexp.MustCompile(`Credential=([^/]+)/`)

func (g *stsGuard) session(r *http.Request) (callerIdentity, bool) {
	m := credentialKey.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return callerIdentity{}, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	id, ok := g.sessions[m[1]]
	return id, ok
}

func writeCallerIdentity(w http.ResponseWriter, id callerIdentity) {
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>%s</Arn><UserId>%s</UserId><Account>%s</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>awsiamtest</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
		xmlEscape(id.arn), xmlEscape(id.userID), xmlEscape(id.account))
}

func writeSTSError(w http.ResponseWriter, status int, code, msg string) {
	writeQueryError(w, status, "https://sts.amazonaws.com/doc/2011-06-15/", code, msg)
}

// writeQueryError answers with an error of the AWS query protocol that STS
// and IAM use, in the service's XML namespace.
func writeQueryError(w http.ResponseWriter, status int, namespace, code, msg string) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>awsiamtest</RequestId></ErrorResponse>`,
		namespace, xmlEscape(code), xmlEscape(msg))
}

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// exchange passes an AssumeRoleWithWebIdentity the guard allowed to kumo
// and remembers the credentials it returns. kumo's conversion of the query
// protocol turns a session name of digits into a number, which it then
// cannot read, and the SDK's web identity provider names its sessions with
// the time in nanoseconds: such a name reaches kumo with a prefix, and the
// answer is given back without it.
func (g *stsGuard) exchange(w http.ResponseWriter, r *http.Request, form url.Values) {
	session := form.Get("RoleSessionName")
	const mark = "awsiamtest-"
	if _, err := strconv.ParseFloat(session, 64); err == nil || session == "true" || session == "false" {
		form.Set("RoleSessionName", mark+session)
	}
	answer := g.rewritten(w, withBody(r, []byte(form.Encode())), func(answer []byte) []byte {
		return bytes.ReplaceAll(answer, []byte(mark+session), []byte(session))
	})
	g.remember(answer)
}

// rewritten passes r to kumo and answers with what rewrite makes of kumo's
// answer, which it returns.
func (g *stsGuard) rewritten(w http.ResponseWriter, r *http.Request, rewrite func([]byte) []byte) []byte {
	rec := httptest.NewRecorder()
	g.next.ServeHTTP(rec, r)
	answer := rewrite(rec.Body.Bytes())
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(answer)
	return answer
}

// readForm reads a query-protocol request's form, leaving the body to be
// read again.
func readForm(r *http.Request) (url.Values, []byte, error) {
	if r.Body == nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return url.Values{}, nil, nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return url.Values{}, body, nil
	}
	return form, body, nil
}

func withBody(r *http.Request, body []byte) *http.Request {
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	return r
}
