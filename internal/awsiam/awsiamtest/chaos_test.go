package awsiamtest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
)

const chaosTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`

func TestChaosLosesTheFirstAnswerOfEachCreate(t *testing.T) {
	e := awsiamtest.StartWith(awsiamtest.Options{Chaos: true})
	e.Chaos.Configure(0, 1, 0, true)
	ctx := context.Background()
	// The SDK retries the dropped connection, and the retry finds what the
	// first attempt created.
	_, err := e.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("chaos-lost"), AssumeRolePolicyDocument: aws.String(chaosTrust)})
	var exists *iamtypes.EntityAlreadyExistsException
	if !errors.As(err, &exists) {
		t.Fatalf("CreateRole after a lost answer: %v, want EntityAlreadyExists from the retry", err)
	}
	if _, err := e.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("chaos-lost")}); err != nil {
		t.Fatalf("the role the lost call created: %v", err)
	}
	if _, err := e.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("chaos-second"), AssumeRolePolicyDocument: aws.String(chaosTrust)}); err != nil {
		t.Fatalf("only the first CreateRole loses its answer: %v", err)
	}
	if got := e.Chaos.Counts()[awsiamtest.FaultLostReply]; got != 1 {
		t.Errorf("lost answers = %d, want 1", got)
	}
}

func TestChaosFailsCallsAtItsRate(t *testing.T) {
	e := awsiamtest.StartWith(awsiamtest.Options{Chaos: true})
	ctx := context.Background()
	noRetry := func(o *iam.Options) { o.RetryMaxAttempts = 1 }
	e.Chaos.Configure(1, 42, 10*time.Millisecond, false)
	var failed int
	for range 40 {
		if _, err := e.IAM.ListRoles(ctx, &iam.ListRolesInput{}, noRetry); err != nil {
			failed++
		}
	}
	counts := e.Chaos.Counts()
	// A slow answer still succeeds; every other fault fails the call.
	if want := 40 - counts[awsiamtest.FaultSlow]; failed != want {
		t.Errorf("%d of 40 calls failed, want %d (counts %v)", failed, want, counts)
	}
	for _, kind := range []string{awsiamtest.Fault503, awsiamtest.FaultThrottle, awsiamtest.FaultDrop, awsiamtest.FaultSlow} {
		if counts[kind] == 0 {
			t.Errorf("no %s fault in 40 calls at rate 1: %v", kind, counts)
		}
	}
	e.Chaos.Configure(0, 42, 0, false)
	if _, err := e.IAM.ListRoles(ctx, &iam.ListRolesInput{}, noRetry); err != nil {
		t.Errorf("rate 0 injects nothing: %v", err)
	}
	if _, err := e.STS.GetCallerIdentity(ctx, nil); err != nil {
		t.Errorf("STS is never touched: %v", err)
	}
}

// What a process outside the test called is counted by action, by what
// it names, and by the application ID in its user agent.
func TestChaosCountsTheCallsThatReachIt(t *testing.T) {
	e := awsiamtest.StartWith(awsiamtest.Options{Chaos: true})
	defer e.Close()
	ctx := context.Background()
	e.Chaos.ResetCalls()
	for _, name := range []string{"chaos-count-a", "chaos-count-b"} {
		if _, err := e.IAM.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(chaosTrust)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("chaos-count-a")}, func(o *iam.Options) { o.AppID = "chaos-test" }); err != nil {
		t.Fatal(err)
	}
	if got := e.Chaos.Calls(); got["CreateRole"] != 2 || got["GetRole"] != 1 || len(got) != 2 {
		t.Errorf("calls = %v, want 2 CreateRole and 1 GetRole", got)
	}
	if got := e.Chaos.CallsMentioning("chaos-count-a"); got["CreateRole"] != 1 || got["GetRole"] != 1 || len(got) != 2 {
		t.Errorf("calls naming chaos-count-a = %v, want its CreateRole and GetRole", got)
	}
	if got := e.Chaos.CallsOfApp("chaos-test"); got["GetRole"] != 1 || len(got) != 1 {
		t.Errorf("calls of app chaos-test = %v, want the one GetRole", got)
	}
	e.Chaos.ResetCalls()
	if got := e.Chaos.Calls(); len(got) != 0 {
		t.Errorf("calls after a reset = %v", got)
	}
}
