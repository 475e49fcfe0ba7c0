// Command notebook stands in for a Kubeflow notebook's AWS code in the node
// e2e target: it asks the AWS SDK for Go v2 for credentials through its
// default chain, exactly as a notebook's SDK would (the pod identity
// webhook's AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE lead it to
// sts:AssumeRoleWithWebIdentity), calls sts:GetCallerIdentity with them and
// prints the caller's ARN. It prints what failed and exits 1 otherwise.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
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
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("the projected token is not there: %w", err)
		}
		fmt.Println("token file:", f)
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
