package awsiamtest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
)

func TestTheDetailsFakePagesEveryRoleOnce(t *testing.T) {
	ctx := context.Background()
	e := awsiamtest.StartWith(awsiamtest.Options{AuthorizationDetails: true})
	defer e.Close()
	want := map[string]bool{}
	for i := range 5 {
		name := fmt.Sprintf("details-fake-%d", i)
		_, err := e.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), Path: aws.String("/details/"),
			AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)})
		if err != nil {
			t.Fatal(err)
		}
		want[name] = true
	}
	pages := iam.NewGetAccountAuthorizationDetailsPaginator(e.IAM, &iam.GetAccountAuthorizationDetailsInput{
		Filter: []iamtypes.EntityType{iamtypes.EntityTypeRole}, MaxItems: aws.Int32(2)})
	seen, n := map[string]int{}, 0
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n++
		if len(page.RoleDetailList) > 2 {
			t.Fatalf("a page of %d roles, asked for 2", len(page.RoleDetailList))
		}
		for _, r := range page.RoleDetailList {
			seen[aws.ToString(r.RoleName)]++
			if aws.ToString(r.AssumeRolePolicyDocument) == "" {
				t.Errorf("%s has no trust policy", aws.ToString(r.RoleName))
			}
		}
	}
	for name := range want {
		if seen[name] != 1 {
			t.Errorf("%s seen %d times, want once", name, seen[name])
		}
	}
	if n < 3 {
		t.Errorf("%d pages for 5 roles or more at 2 a page", n)
	}

	plain := awsiamtest.Start()
	defer plain.Close()
	_, err := plain.IAM.GetAccountAuthorizationDetails(ctx, &iam.GetAccountAuthorizationDetailsInput{})
	if err == nil {
		t.Error("without the option, the call is kumo's, which lacks it")
	}
}
