/*
Copyright 2026 The AwsKubeflowProfiles Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command manager runs the AwsKubeflowProfiles operator.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
	"github.com/awskubeflowprofiles/operator/internal/awsiam"
	"github.com/awskubeflowprofiles/operator/internal/controller"
	"github.com/awskubeflowprofiles/operator/internal/metricsauth"
)

// options are the manager's command-line flags.
type options struct {
	metricsAddr          string
	secureMetrics        bool
	probeAddr            string
	pprofAddr            string
	leaderElect          bool
	enableHTTP2          bool
	resyncPeriod         time.Duration
	awsRequestsPerSecond float64
	awsBurst             int
	awsMaxAttempts       int
	awsCallTimeout       time.Duration
	profileConcurrency   int
	deletionPatience     time.Duration
	controllerNamespace  string
	zap                  zap.Options
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", "0",
		"Address of the metrics endpoint, :8443 for HTTPS or :8080 for HTTP; 0 turns it off.")
	flag.BoolVar(&o.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS with authentication and authorization.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of the health and readiness probes.")
	flag.StringVar(&o.pprofAddr, "pprof-bind-address", "", "Address of Go's pprof profiles, for measuring the operator; empty turns them off.")
	flag.BoolVar(&o.leaderElect, "leader-elect", false,
		"Elect a leader so that only one replica reconciles at a time.")
	flag.BoolVar(&o.enableHTTP2, "enable-http2", false,
		"Serve metrics over HTTP/2; off by default because of CVE-2023-44487 and CVE-2023-39325.")
	flag.DurationVar(&o.resyncPeriod, "resync-period", 10*time.Minute,
		"How often IAM, which has no watch, is read again to repair drift.")
	flag.Float64Var(&o.awsRequestsPerSecond, "aws-requests-per-second", 10,
		"Client-side limit on AWS API calls per second, shared by all reconciles.")
	flag.IntVar(&o.awsBurst, "aws-burst", 20, "Burst of AWS API calls allowed above the rate limit.")
	flag.IntVar(&o.awsMaxAttempts, "aws-max-attempts", 5,
		"Attempts per AWS call, with jittered exponential backoff, for throttling and transient errors.")
	flag.DurationVar(&o.awsCallTimeout, "aws-call-timeout", awsiam.DefaultCallTimeout,
		"Deadline of one AWS call, its retries included, so a hung connection cannot stall reconciling.")
	flag.IntVar(&o.profileConcurrency, "profile-concurrency", 4, "Profiles reconciled at once per object.")
	flag.StringVar(&o.controllerNamespace, "profile-controller-namespace", controller.DefaultProfileControllerNamespace,
		"The namespace of Kubeflow's profile controller: the only one where the operator annotates or creates a service account and restarts a Deployment.")
	flag.DurationVar(&o.deletionPatience, "profile-deletion-patience", controller.DefaultProfileDeletionPatience,
		"How long a Profile the deletion policy deletes may take to go before the teardown is reported as stuck.")
	o.zap = zap.Options{Development: false}
	o.zap.BindFlags(flag.CommandLine)
	flag.Parse()
	return o
}

func newScheme() *runtime.Scheme {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))
	return scheme
}

func main() {
	opts := parseFlags()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts.zap)))
	setupLog := ctrl.Log.WithName("setup")
	if err := run(opts); err != nil {
		setupLog.Error(err, "Unable to run the manager")
		os.Exit(1)
	}
}

func run(opts options) error {
	setupLog := ctrl.Log.WithName("setup")
	ctx := ctrl.SetupSignalHandler()

	var tlsOpts []func(*tls.Config)
	if !opts.enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{BindAddress: opts.metricsAddr, SecureServing: opts.secureMetrics, TLSOpts: tlsOpts}
	if opts.secureMetrics {
		metricsOpts.FilterProvider = metricsauth.FilterProvider
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 newScheme(),
		Metrics:                metricsOpts,
		WebhookServer:          webhook.NewServer(webhook.Options{TLSOpts: tlsOpts}),
		HealthProbeBindAddress: opts.probeAddr,
		PprofBindAddress:       opts.pprofAddr,
		LeaderElection:         opts.leaderElect,
		LeaderElectionID:       "awskubeflowprofiles.kubeflow.aws",
		Cache:                  controller.CacheOptions(opts.controllerNamespace),
		Client:                 controller.ClientOptions(),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}
	iamClient, err := newAWSClient(ctx, opts)
	if err != nil {
		return err
	}
	r := &controller.Reconciler{
		Client:                     mgr.GetClient(),
		APIReader:                  mgr.GetAPIReader(),
		IAM:                        iamClient,
		Recorder:                   mgr.GetEventRecorder(controller.ControllerName),
		Metrics:                    controller.NewMetrics(metrics.Registry),
		ResyncPeriod:               opts.resyncPeriod,
		ProfileConcurrency:         opts.profileConcurrency,
		ProfileDeletionPatience:    opts.deletionPatience,
		ProfileControllerNamespace: opts.controllerNamespace,
		Clock:                      clock.RealClock{},
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}
	setupLog.Info("Starting manager", "resyncPeriod", opts.resyncPeriod)
	return mgr.Start(ctx)
}

// newAWSClient builds the AWS clients from the SDK's standard configuration,
// so AWS_REGION, AWS_ENDPOINT_URL and IRSA credentials work unchanged.
func newAWSClient(ctx context.Context, opts options) (*awsiam.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = opts.awsMaxAttempts })
	}))
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		// Each object's IAM and STS calls use the region of its cluster,
		// which selects the partition; this is only the fallback.
		cfg.Region = "us-east-1"
	}
	return awsiam.NewClient(iam.NewFromConfig(cfg), sts.NewFromConfig(cfg), eks.NewFromConfig(cfg),
		awsiam.NewMetrics(metrics.Registry),
		awsiam.Options{RequestsPerSecond: opts.awsRequestsPerSecond, Burst: opts.awsBurst, CallTimeout: opts.awsCallTimeout}), nil
}
