package awsiamtest

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
)

// A fake of iam:GetAccountAuthorizationDetails, which kumo lacks. It is
// answered, for roles only, from what kumo holds, read through kumo's own
// API: names, paths, trust, tags, managed and inline policies (kumo keeps
// no permissions boundary). Pages are of MaxItems roles in name order,
// Marker being the next one's index. It is a fake, not IAM: it serves the
// operator's path through that call in tests, where real IAM cannot be.

type detailsResponse struct {
	XMLName xml.Name      `xml:"GetAccountAuthorizationDetailsResponse"`
	Xmlns   string        `xml:"xmlns,attr"`
	Result  detailsResult `xml:"GetAccountAuthorizationDetailsResult"`
}

type detailsResult struct {
	IsTruncated bool         `xml:"IsTruncated"`
	Marker      string       `xml:"Marker,omitempty"`
	Roles       []roleDetail `xml:"RoleDetailList>member"`
}

type roleDetail struct {
	RoleName string          `xml:"RoleName"`
	RoleID   string          `xml:"RoleId"`
	Arn      string          `xml:"Arn"`
	Path     string          `xml:"Path"`
	Trust    string          `xml:"AssumeRolePolicyDocument"`
	Inline   []inlineDetail  `xml:"RolePolicyList>member"`
	Attached []attachedEntry `xml:"AttachedManagedPolicies>member"`
	Tags     []tagEntry      `xml:"Tags>member"`
}

type inlineDetail struct {
	Name     string `xml:"PolicyName"`
	Document string `xml:"PolicyDocument"`
}

type attachedEntry struct {
	Name string `xml:"PolicyName"`
	Arn  string `xml:"PolicyArn"`
}

type tagEntry struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

// maxDetailsPage is IAM's largest page of the call.
const maxDetailsPage = 1000

func (g *stsGuard) authorizationDetails(w http.ResponseWriter, r *http.Request, form url.Values) {
	if f := form.Get("Filter.member.1"); f != "" && f != string(iamtypes.EntityTypeRole) || form.Get("Filter.member.2") != "" {
		writeQueryError(w, http.StatusBadRequest, iamNamespace, "InvalidInput", "this fake of GetAccountAuthorizationDetails serves the Role filter only")
		return
	}
	size := maxDetailsPage
	if n, err := strconv.Atoi(form.Get("MaxItems")); err == nil && n > 0 && n < size {
		size = n
	}
	start, _ := strconv.Atoi(form.Get("Marker"))
	roles, err := g.allRoles(r.Context())
	if err != nil {
		writeQueryError(w, http.StatusInternalServerError, iamNamespace, "ServiceFailure", err.Error())
		return
	}
	res := detailsResult{}
	end := min(start+size, len(roles))
	for _, role := range roles[min(start, end):end] {
		d, err := g.roleDetail(r.Context(), role)
		if err != nil {
			writeQueryError(w, http.StatusInternalServerError, iamNamespace, "ServiceFailure", err.Error())
			return
		}
		res.Roles = append(res.Roles, d)
	}
	if end < len(roles) {
		res.IsTruncated, res.Marker = true, strconv.Itoa(end)
	}
	w.Header().Set("Content-Type", "text/xml")
	_ = xml.NewEncoder(w).Encode(detailsResponse{Xmlns: iamNamespace, Result: res})
}

// allRoles reads every role kumo holds, in name order; kumo answers one
// page of up to MaxItems, whatever the marker.
func (g *stsGuard) allRoles(ctx context.Context) ([]iamtypes.Role, error) {
	out, err := g.iam.ListRoles(ctx, &iam.ListRolesInput{MaxItems: aws.Int32(1 << 20)})
	if err != nil {
		return nil, err
	}
	roles := out.Roles
	slices.SortFunc(roles, func(a, b iamtypes.Role) int {
		return strings.Compare(aws.ToString(a.RoleName), aws.ToString(b.RoleName))
	})
	return roles, nil
}

func (g *stsGuard) roleDetail(ctx context.Context, role iamtypes.Role) (roleDetail, error) {
	name := role.RoleName
	d := roleDetail{RoleName: *name, RoleID: aws.ToString(role.RoleId), Arn: aws.ToString(role.Arn), Path: aws.ToString(role.Path),
		Trust: url.PathEscape(aws.ToString(role.AssumeRolePolicyDocument))}
	for _, t := range role.Tags {
		d.Tags = append(d.Tags, tagEntry{Key: aws.ToString(t.Key), Value: aws.ToString(t.Value)})
	}
	attached, err := g.iam.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: name})
	if err != nil {
		return d, err
	}
	for _, p := range attached.AttachedPolicies {
		d.Attached = append(d.Attached, attachedEntry{Name: aws.ToString(p.PolicyName), Arn: aws.ToString(p.PolicyArn)})
	}
	inline, err := g.iam.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: name})
	if err != nil {
		return d, err
	}
	for _, p := range inline.PolicyNames {
		doc, err := g.iam.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: name, PolicyName: aws.String(p)})
		if err != nil {
			return d, err
		}
		d.Inline = append(d.Inline, inlineDetail{Name: p, Document: url.PathEscape(aws.ToString(doc.PolicyDocument))})
	}
	return d, nil
}
