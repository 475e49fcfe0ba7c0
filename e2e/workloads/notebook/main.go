// Command notebook stands in for a Kubeflow notebook's AWS code in the node
// e2e target: it asks the AWS SDK for Go v2 for credentials through its
// default chain, exactly as a notebook's SDK would (the pod identity
// webhook's AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE lead it to
// sts:AssumeRoleWithWebIdentity), calls sts:GetCallerIdentity with them and
// prints the caller's ARN. It also prints the claims (never the token) of
// the projected token the kubelet wrote, for the suite to evaluate. It
// prints what failed and exits 1 otherwise.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/awskubeflowprofiles/operator/internal/policy"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	if f := os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE"); f != "" {
		token, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("the projected token is not there: %w", err)
		}
		fmt.Println("token file:", f)
		claims, err := policy.DecodeClaims(strings.TrimSpace(string(token)))
		if err != nil {
			return fmt.Errorf("reading the projected token: %w", err)
		}
		out, _ := json.Marshal(claims)
		fmt.Println("claims:", string(out))
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("loading the AWS configuration: %w", err)
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("calling sts:GetCallerIdentity: %w", err)
	}
	fmt.Println("caller:", aws.ToString(out.Arn))
	return nil
}
