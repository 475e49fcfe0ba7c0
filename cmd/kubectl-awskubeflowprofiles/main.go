// Command kubectl-awskubeflowprofiles is a kubectl plugin for the
// AwsKubeflowProfiles operator. Its diagnose command answers "why has my
// notebook no AWS credentials?": it reads, and never changes, what the
// cluster and IAM hold for a profile, and for one of its pods, and prints
// each link of the chain as a checked line with the action that fixes a
// broken one.
//
//	kubectl awskubeflowprofiles diagnose -n team-a [pod] [--output json]
//
// It exits 0 when the chain is whole, 1 when a link is broken, 2 when a
// link could not be checked (a permission it lacks, named) and none is
// known to be broken, 3 when it cannot reach the cluster or load the AWS
// configuration, and 64 on a usage error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/diagnose"
)

// Exit codes.
const (
	exitWhole      = 0
	exitBroken     = 1
	exitIncomplete = 2
	exitNoAccess   = 3
	exitUsage      = 64
)

const usage = `Usage: kubectl awskubeflowprofiles diagnose -n PROFILE [POD] [flags]

Checks, reading only, each link that gives a Kubeflow profile's notebook
pods the profile's AWS credentials, and prints the action that fixes a
broken one. Exits 0 when the chain is whole, 1 when a link is broken, 2
when a link could not be checked.

Flags:
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "diagnose" {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	fs := flag.NewFlagSet("diagnose", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	namespace := fs.String("n", "", "the profile, which is its namespace (required)")
	fs.StringVar(namespace, "namespace", "", "the same as -n")
	output := fs.String("output", "text", "text, or json for scripts")
	fs.StringVar(output, "o", "text", "the same as --output")
	kubeconfig := fs.String("kubeconfig", "", "the kubeconfig file; KUBECONFIG or ~/.kube/config when empty")
	kubeContext := fs.String("context", "", "the kubeconfig context; its current one when empty")
	timeout := fs.Duration("timeout", time.Minute, "how long the reads may take")
	if err := fs.Parse(reorder(fs, args[1:])); errors.Is(err, flag.ErrHelp) {
		return exitWhole
	} else if err != nil {
		return exitUsage
	}
	if *namespace == "" || fs.NArg() > 1 || (*output != "text" && *output != "json") {
		fs.Usage()
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	reader, err := newReader(ctx, *kubeconfig, *kubeContext)
	if err != nil {
		fmt.Fprintln(stderr, "kubectl-awskubeflowprofiles:", err)
		return exitNoAccess
	}
	report := diagnose.Diagnose(reader.Observe(ctx, *namespace, fs.Arg(0)))
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			diagnose.Report
			Whole  bool `json:"whole"`
			Broken bool `json:"broken"`
		}{report, report.Whole(), report.Broken()}); err != nil {
			fmt.Fprintln(stderr, "kubectl-awskubeflowprofiles: writing the report:", err)
		}
	} else {
		printText(stdout, report)
	}
	return exitCode(report)
}

func exitCode(report diagnose.Report) int {
	switch {
	case report.Whole():
		return exitWhole
	case report.Broken():
		return exitBroken
	}
	return exitIncomplete
}

// reorder puts flags before the pod's name, so that both
// "diagnose -n a pod" and "diagnose pod -n a" parse: the value of a flag
// that takes one stays with it.
func reorder(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil || isBool(f) || i+1 >= len(args) {
			continue
		}
		i++
		flags = append(flags, args[i])
	}
	return append(flags, rest...)
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

var marks = map[diagnose.Status]string{diagnose.Pass: "ok  ", diagnose.Fail: "FAIL", diagnose.CannotCheck: "??  "}

func printText(w io.Writer, r diagnose.Report) {
	what := "profile " + r.Profile
	if r.Pod != "" {
		what += ", pod " + r.Pod
	}
	fmt.Fprintf(w, "Diagnosing %s\n", what)
	for _, c := range r.Checks {
		fmt.Fprintf(w, "%s %-22s %s\n", marks[c.Status], c.Link, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "     %-22s fix: %s\n", "", c.Fix)
		}
	}
	switch {
	case r.Whole():
		fmt.Fprintln(w, "The chain is whole.")
	case r.Broken():
		fmt.Fprintln(w, "The chain is broken: fix the first FAIL line, then run this again.")
	default:
		fmt.Fprintln(w, "Some links could not be checked (??): grant what they name, then run this again.")
	}
}

// newReader connects to the cluster of the kubeconfig and to IAM with the
// AWS SDK's standard configuration (AWS_PROFILE, AWS_REGION, SSO, ...).
func newReader(ctx context.Context, kubeconfig, kubeContext string) (diagnose.Reader, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		return diagnose.Reader{}, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	kube, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return diagnose.Reader{}, fmt.Errorf("connecting to the cluster: %w", err)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return diagnose.Reader{}, errors.Join(errors.New("loading the AWS configuration"), err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1" // IAM is global; only the partition matters
	}
	iamClient := awsiam.NewClient(iam.NewFromConfig(awsCfg), sts.NewFromConfig(awsCfg), eks.NewFromConfig(awsCfg), nil, awsiam.Options{})
	return diagnose.Reader{Kube: kube, IAM: iamClient}, nil
}
