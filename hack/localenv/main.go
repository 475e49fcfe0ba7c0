// Command localenv is the local proving ground: a real kube-apiserver and etcd
// (envtest), the kumo AWS emulator on loopback, the CRDs (ours and Kubeflow's
// Profile), and a simulated EKS cluster in kumo whose OIDC issuer is the one
// the local API server signs service-account tokens with. It needs no cloud,
// no cluster, no Docker and no internet.
//
//	localenv run --assets DIR --manager bin/manager --sample FILE
//	    applies the sample, runs the operator in the foreground and shows it
//	    converge; Ctrl-C prints what exists in IAM and tears everything down.
//	localenv up --assets DIR --env-file FILE
//	    starts the environment, writes how to reach it to FILE and waits for
//	    SIGTERM or SIGINT; the e2e suite's local target uses it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCommand(os.Args[2:])
	case "up":
		err = upCommand(os.Args[2:])
	default:
		usage()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "localenv:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: localenv run|up [flags]; see `localenv run -h`")
	os.Exit(2)
}

// commonFlags are shared by both subcommands.
type commonFlags struct {
	assets  string
	cluster string
	region  string
	root    string
	chaos   bool
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory with kube-apiserver and etcd (make envtest)")
	fs.StringVar(&c.cluster, "cluster", "local", "name of the simulated EKS cluster")
	fs.StringVar(&c.region, "region", "us-east-1", "region of the simulated EKS cluster")
	fs.StringVar(&c.root, "root", ".", "project root, where config/ and hack/crds are")
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func upCommand(args []string) error {
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	var common commonFlags
	common.register(fs)
	envFile := fs.String("env-file", "", "file to write KUBECONFIG, AWS_ENDPOINT_URL and friends to, as KEY=value lines")
	fs.BoolVar(&common.chaos, "chaos", false, "put fault injection in front of kumo, off until configured at AWS_ENDPOINT_URL"+awsiamtest.ChaosPath)
	_ = fs.Parse(args)
	if *envFile == "" {
		return fmt.Errorf("--env-file is required")
	}
	ctx, stop := signalContext()
	defer stop()
	env, err := start(ctx, common, logTo(os.Stderr))
	if err != nil {
		return err
	}
	defer env.stop()
	if err := env.writeEnvFile(*envFile); err != nil {
		return err
	}
	env.log("environment is up; env file %s", *envFile)
	<-ctx.Done()
	env.log("stopping")
	return nil
}
