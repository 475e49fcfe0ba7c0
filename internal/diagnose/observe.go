package diagnose

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/desired"
	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// Reader reads, and never writes, what a diagnosis needs: from the cluster
// with Kube, from IAM with IAM. Its one create is a TokenRequest, which
// issues a short-lived token and stores nothing.
type Reader struct {
	Kube client.Client
	IAM  *awsiam.Client
}

// tokenLifetime is how long the token the diagnosis requests lives: as short
// as the API server allows.
const tokenLifetime = 600

// Observe reads the chain of profile, and of pod when not "".
func (r Reader) Observe(ctx context.Context, profile, pod string) Observation {
	o := Observation{Profile: profile}
	o.KubeflowObject = r.profile(ctx, profile)
	o.ServiceAccount = r.serviceAccount(ctx, profile)
	o.Operator = r.operator(ctx, profile)
	o.Webhooks = r.webhooks(ctx)
	if pod != "" {
		p := r.pod(ctx, profile, pod)
		o.Pod = &p
	}
	o.Token = r.token(ctx, profile, o.Audience())
	roleARN := o.KubeflowObject.Value.RoleARN
	if o.KubeflowObject.Found && roleARN != "" {
		o.Role = r.role(ctx, roleARN)
		if o.Token.Found {
			o.OIDCProvider = r.oidcProvider(ctx, roleARN, o.Token.Value.Issuer)
		}
	}
	return o
}

// kubeErr turns a refusal of the API server into what to grant.
func kubeErr(err error, verb, resource, namespace string) error {
	where := "cluster-wide"
	if namespace != "" {
		where = "in namespace " + namespace
	}
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("cannot check: you may not %s %s %s; grant it (see the README's Troubleshooting for the permissions)", verb, resource, where)
	}
	return fmt.Errorf("cannot check: %s %s %s: %w", verb, resource, where, err)
}

// iamErr turns a refusal of IAM into the permission it names, and
// credentials IAM does not take into what to do about them.
func iamErr(err error, action, resource string) error {
	switch {
	case awsiam.IsCredentialsRejected(err):
		return fmt.Errorf("cannot check: IAM does not take the AWS credentials (%s): refresh them (aws sso login, AWS_PROFILE), or set AWS_REGION to one of the role's partition", awsiam.Code(err))
	case awsiam.IsAccessDenied(err):
		return fmt.Errorf("cannot check: the AWS credentials may not call %s on %s; grant it", action, resource)
	}
	return fmt.Errorf("cannot check: %s on %s: %w", action, resource, err)
}

func (r Reader) profile(ctx context.Context, name string) Read[Profile] {
	u := desired.NewProfileObject()
	err := r.Kube.Get(ctx, client.ObjectKey{Name: name}, u)
	switch {
	case apierrors.IsNotFound(err):
		return Read[Profile]{}
	case err != nil:
		return Failed[Profile](kubeErr(err, "get", "profiles.kubeflow.org", ""))
	}
	roleARN, annotateOnly, found := desired.ProfilePlugin(u)
	return Found(Profile{HasPlugin: found, RoleARN: roleARN, AnnotateOnly: annotateOnly})
}

func (r Reader) serviceAccount(ctx context.Context, namespace string) Read[ServiceAccount] {
	sa := &corev1.ServiceAccount{}
	err := r.Kube.Get(ctx, client.ObjectKey{Namespace: namespace, Name: EditorServiceAccount}, sa)
	switch {
	case apierrors.IsNotFound(err):
		return Read[ServiceAccount]{}
	case err != nil:
		return Failed[ServiceAccount](kubeErr(err, "get", "serviceaccounts", namespace))
	}
	return Found(ServiceAccountOf(sa))
}

// ServiceAccountOf is what the diagnosis needs of a service account: its
// role and audience annotations and, where its managed fields say, when
// the annotation was written.
func ServiceAccountOf(sa *corev1.ServiceAccount) ServiceAccount {
	out := ServiceAccount{RoleARN: sa.Annotations[RoleARNAnnotation], Audience: sa.Annotations[AudienceAnnotation]}
	// The API server keeps no time per field: the nearest is when the
	// field manager that set the annotation last wrote.
	for _, mf := range sa.ManagedFields {
		if mf.FieldsV1 != nil && mf.Time != nil && strings.Contains(string(mf.FieldsV1.Raw), `"f:`+RoleARNAnnotation+`"`) && mf.Time.After(out.AnnotatedAt) {
			out.AnnotatedAt, out.AnnotatedBy = mf.Time.Time, mf.Manager
		}
	}
	return out
}

func (r Reader) operator(ctx context.Context, profile string) Read[Operator] {
	list := &v1alpha1.AwsKubeflowProfilesList{}
	err := r.Kube.List(ctx, list)
	switch {
	case meta.IsNoMatchError(err):
		return Read[Operator]{} // the operator is not installed
	case err != nil:
		return Failed[Operator](kubeErr(err, "list", "awskubeflowprofiles.kubeflow.aws", ""))
	}
	for _, cr := range list.Items {
		if st, ok := cr.Status.Profile(profile); ok && st.State == v1alpha1.ProfileStateManaged {
			return Found(Operator{Object: cr.Name, RoleARN: st.RoleARN, Ready: st.Ready, Message: st.Message})
		}
	}
	return Read[Operator]{}
}

// webhooks finds the mutating webhooks for pod identity, by their name or
// the name of their service.
func (r Reader) webhooks(ctx context.Context) Read[[]Webhook] {
	list := &admissionregistrationv1.MutatingWebhookConfigurationList{}
	if err := r.Kube.List(ctx, list); err != nil {
		return Failed[[]Webhook](kubeErr(err, "list", "mutatingwebhookconfigurations", ""))
	}
	var out []Webhook
	for _, cfg := range list.Items {
		for _, hook := range cfg.Webhooks {
			svc := hook.ClientConfig.Service
			if !strings.Contains(hook.Name, "pod-identity") && !strings.Contains(cfg.Name, "pod-identity") &&
				(svc == nil || !strings.Contains(svc.Name, "pod-identity")) {
				continue
			}
			w := Webhook{Name: hook.Name}
			if svc == nil {
				// EKS serves it from its control plane, at a URL.
				w.URL = ptr.Deref(hook.ClientConfig.URL, "")
			} else {
				w.Service = svc.Namespace + "/" + svc.Name
				reachable, err := r.readyEndpoint(ctx, svc.Namespace, svc.Name)
				if err != nil {
					return Failed[[]Webhook](err)
				}
				w.Reachable = reachable
			}
			out = append(out, w)
		}
	}
	return Found(out)
}

func (r Reader) readyEndpoint(ctx context.Context, namespace, service string) (bool, error) {
	list := &discoveryv1.EndpointSliceList{}
	if err := r.Kube.List(ctx, list, client.InNamespace(namespace), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
		return false, kubeErr(err, "list", "endpointslices.discovery.k8s.io", namespace)
	}
	for _, s := range list.Items {
		// An endpoint that does not say is ready, as the API defines it.
		if slices.ContainsFunc(s.Endpoints, func(e discoveryv1.Endpoint) bool { return ptr.Deref(e.Conditions.Ready, true) }) {
			return true, nil
		}
	}
	return false, nil
}

func (r Reader) pod(ctx context.Context, namespace, name string) Read[Pod] {
	p := &corev1.Pod{}
	err := r.Kube.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, p)
	switch {
	case apierrors.IsNotFound(err):
		return Read[Pod]{Value: Pod{Name: name}}
	case err != nil:
		return Read[Pod]{Value: Pod{Name: name}, Err: kubeErr(err, "get", "pods", namespace)}
	}
	return Found(podOf(p))
}

// podOf reads what the webhook wrote into a pod: the variables of each
// container, and the token volume mounted where AWS_WEB_IDENTITY_TOKEN_FILE
// points.
func podOf(p *corev1.Pod) Pod {
	out := Pod{Name: p.Name, ServiceAccount: p.Spec.ServiceAccountName, Created: p.CreationTimestamp.Time}
	skip := strings.Split(p.Annotations["eks.amazonaws.com/skip-containers"], ",")
	var mounts []corev1.VolumeMount
	for _, c := range slices.Concat(p.Spec.InitContainers, p.Spec.Containers) {
		roleARN, tokenFile := "", ""
		for _, e := range c.Env {
			switch e.Name {
			case "AWS_ROLE_ARN":
				roleARN = e.Value
			case "AWS_WEB_IDENTITY_TOKEN_FILE":
				tokenFile = e.Value
			}
		}
		switch {
		case roleARN == "" && !slices.Contains(skip, c.Name):
			out.Unmutated = append(out.Unmutated, c.Name)
		case roleARN != "" && out.RoleARN == "":
			out.RoleARN, out.TokenFile, mounts = roleARN, tokenFile, c.VolumeMounts
		}
	}
	if out.RoleARN == "" {
		out.Unmutated = nil // none was: the pod as a whole was not mutated
		return out
	}
	dir, file := path.Split(out.TokenFile)
	for _, m := range mounts {
		if path.Clean(m.MountPath) != path.Clean(dir) {
			continue
		}
		for _, v := range p.Spec.Volumes {
			if v.Name != m.Name || v.Projected == nil {
				continue
			}
			for _, src := range v.Projected.Sources {
				if t := src.ServiceAccountToken; t != nil && t.Path == file {
					out.TokenAudience = t.Audience
				}
			}
		}
	}
	return out
}

// token asks the API server for a token of default-editor for STS's
// audience, as the webhook's projected volume gets one.
func (r Reader) token(ctx context.Context, namespace, audience string) Read[policy.Claims] {
	sa := &corev1.ServiceAccount{}
	sa.Namespace, sa.Name = namespace, EditorServiceAccount
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		Audiences: []string{audience}, ExpirationSeconds: ptr.To[int64](tokenLifetime),
	}}
	if err := r.Kube.SubResource("token").Create(ctx, sa, req); err != nil {
		return Failed[policy.Claims](kubeErr(err, "create", "serviceaccounts/token", namespace))
	}
	claims, err := policy.DecodeClaims(req.Status.Token)
	if err != nil {
		return Failed[policy.Claims](fmt.Errorf("cannot check: the API server's token: %w", err))
	}
	return Found(claims)
}

func (r Reader) role(ctx context.Context, roleARN string) Read[Role] {
	parsed, err := arn.Parse(roleARN)
	if err != nil {
		return Failed[Role](fmt.Errorf("cannot check: the Profile's role %q is not an ARN: %w", roleARN, err))
	}
	// IAM reads roles of the credentials' own account only.
	account, err := r.IAM.CallerAccount(ctx)
	switch {
	case err != nil:
		return Failed[Role](iamErr(err, "sts:GetCallerIdentity", "your credentials"))
	case account != parsed.AccountID:
		return Failed[Role](fmt.Errorf("cannot check: role %s is in account %s, and the AWS credentials are of account %s; use credentials of %s", roleARN, parsed.AccountID, account, parsed.AccountID))
	}
	name := parsed.Resource[strings.LastIndex(parsed.Resource, "/")+1:]
	have, err := r.IAM.GetRole(ctx, name)
	switch {
	case awsiam.IsNotFound(err):
		return Read[Role]{}
	case err != nil:
		return Failed[Role](iamErr(err, "iam:GetRole", roleARN))
	}
	out := Role{Trust: have.Trust}
	if out.Attached, err = r.IAM.AttachedPolicies(ctx, name); err != nil {
		out.PoliciesErr = iamErr(err, "iam:ListAttachedRolePolicies", roleARN)
	} else if out.Inline, err = r.IAM.InlinePolicyNames(ctx, name); err != nil {
		out.PoliciesErr = iamErr(err, "iam:ListRolePolicies", roleARN)
	}
	return Found(out)
}

// oidcProvider reads the provider of issuer in the account, and partition,
// of the role.
func (r Reader) oidcProvider(ctx context.Context, roleARN, issuer string) Read[OIDCProvider] {
	parsed, err := arn.Parse(roleARN)
	if err != nil {
		return Failed[OIDCProvider](fmt.Errorf("cannot check: the Profile's role %q is not an ARN: %w", roleARN, err))
	}
	providerARN := fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", parsed.Partition, parsed.AccountID, policy.IssuerHost(issuer))
	p, err := r.IAM.GetOIDCProvider(ctx, providerARN)
	switch {
	case awsiam.IsNotFound(err):
		return Read[OIDCProvider]{Value: OIDCProvider{ARN: providerARN}}
	case err != nil:
		return Failed[OIDCProvider](iamErr(err, "iam:GetOpenIDConnectProvider", providerARN))
	}
	return Found(OIDCProvider{ARN: providerARN, ClientIDs: p.ClientIDs})
}
