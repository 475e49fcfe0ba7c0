// Command nodeenv runs a real single-node Kubernetes cluster on this machine
// for the node e2e target, without Docker: etcd, kube-apiserver (signing
// service-account tokens as a simulated EKS cluster's issuer),
// kube-controller-manager, kube-scheduler, containerd with runc and the CNI
// bridge, kubelet and kube-proxy, all as processes, and the kumo AWS
// emulator on the host, which pods reach at the bridge's gateway. What it
// changes on the host, and why, is in e2e/README.md.
//
//	nodeenv up --assets DIR --images DIR --env-file FILE
//	    starts it all, writes how to reach it to FILE, waits for SIGTERM or
//	    SIGINT, then stops it all and restores the host: every sysctl,
//	    iptables table, cgroup, link, mount and directory the run changed.
//	    It exits 1 if the host then differs from before, saying how.
//
// It needs root and the Debian packages containerd, runc,
// containernetworking-plugins, iptables and nftables, and installs the
// packages when missing. Where it cannot, it exits 3 with the reason, which
// the e2e runner reports as a skip. One run at a time: a second waits for
// the first's lock.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/awskubeflowprofiles/operator/internal/awsiam/awsiamtest"
)

// exitUnavailable tells the e2e runner that this machine cannot run a node.
const exitUnavailable = 3

// Images the node runs, imported from the tarballs hack/image writes.
const (
	pauseImage    = "awskubeflowprofiles.local/pause:e2e"
	operatorImage = "awskubeflowprofiles.local/operator:e2e"
	notebookImage = "awskubeflowprofiles.local/notebook:e2e"
)

// packages are the Debian packages the node needs, by the command each
// provides.
var packages = map[string]string{
	"containerd":          "containerd",
	"runc":                "runc",
	"iptables-save":       "iptables",
	"nft":                 "nftables",
	"/usr/lib/cni/bridge": "containernetworking-plugins",
}

type node struct {
	assets, images, run string
	logs                string
	cluster             string
	hostIP              string
	issuer              string
	pki                 *pki
	kumo                *awsiamtest.Env
	procs               []*proc
	etcdURL             string
	apiserverURL        string
	containerdSock      string
	kubeProxyConfig     string
	log                 func(string, ...any)
}

type unavailable struct{ why string }

func (u unavailable) Error() string { return u.why }

func main() {
	if len(os.Args) < 2 || os.Args[1] != "up" {
		fmt.Fprintln(os.Stderr, "usage: nodeenv up --assets DIR --images DIR --env-file FILE")
		os.Exit(2)
	}
	fs := flag.NewFlagSet("up", flag.ExitOnError)
	assets := fs.String("assets", "", "directory with etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy")
	images := fs.String("images", "", "directory with the image tarballs of hack/image")
	envFile := fs.String("env-file", "", "file to write how to reach the node to")
	logs := fs.String("logs", "", "directory for the components' logs, kept after the run (default: beside --env-file)")
	cluster := fs.String("cluster", "node", "name of the simulated EKS cluster")
	_ = fs.Parse(os.Args[2:])
	start := time.Now()
	log := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[node %5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	if *logs == "" {
		*logs = filepath.Join(filepath.Dir(*envFile), "node-logs")
	}
	err := up(*assets, *images, *envFile, *logs, *cluster, log)
	var u unavailable
	switch {
	case errors.As(err, &u):
		fmt.Fprintln(os.Stderr, "nodeenv: this machine cannot run a node:", u.why)
		os.Exit(exitUnavailable)
	case err != nil:
		fmt.Fprintln(os.Stderr, "nodeenv:", err)
		os.Exit(1)
	}
}

// prerequisites installs what is missing, or says why the node cannot run.
func prerequisites(log func(string, ...any)) error {
	var missing []string
	for cmd, pkg := range packages {
		if strings.HasPrefix(cmd, "/") {
			if _, err := os.Stat(cmd); err != nil {
				missing = append(missing, pkg)
			}
		} else if _, err := exec.LookPath(cmd); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return unavailable{fmt.Sprintf("the Debian packages %s are missing and apt-get is not here", strings.Join(missing, ", "))}
	}
	log("installing %s with apt-get", strings.Join(missing, ", "))
	// Where an init system runs, installing containerd would start the
	// host's own containerd, which the node must not share the machine with.
	const policyRC = "/usr/sbin/policy-rc.d"
	if _, err := os.Lstat(policyRC); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policyRC, []byte("#!/bin/sh\n# nodeenv: start no service while it installs packages\nexit 101\n"), 0o755); err == nil {
			defer os.Remove(policyRC)
		}
	}
	if out, err := exec.Command("apt-get", "update").CombinedOutput(); err != nil {
		return unavailable{fmt.Sprintf("apt-get update failed: %v: %s", err, lastLine(out))}
	}
	install := exec.Command("apt-get", append([]string{"install", "-y", "--no-install-recommends"}, missing...)...)
	install.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := install.CombinedOutput(); err != nil {
		return unavailable{fmt.Sprintf("installing %s failed: %v: %s", strings.Join(missing, ", "), err, lastLine(out))}
	}
	return nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// lockPath is the machine-wide lock of node runs.
const lockPath = "/run/lock/awskubeflowprofiles-node.lock"

// lock takes the machine-wide lock of node runs, waiting for a running one.
func lock(log func(string, ...any)) (func(), error) {
	// One fixed path, whatever TMPDIR says, so every run sees the same lock.
	if err := os.MkdirAll("/run/lock", 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		log("another node run holds %s; waiting for it to end", lockPath)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			return nil, err
		}
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); _ = f.Close() }, nil
}

func up(assets, images, envFile, logs, cluster string, log func(string, ...any)) (err error) {
	if assets == "" || images == "" || envFile == "" {
		return errors.New("--assets, --images and --env-file are required")
	}
	if os.Geteuid() != 0 {
		return unavailable{"it needs root, for containerd, the kubelet, kube-proxy and the CNI bridge"}
	}
	// The lock comes first: two runs must not install packages at once.
	unlock, err := lock(log)
	if err != nil {
		return err
	}
	defer unlock()
	if err := prerequisites(log); err != nil {
		return err
	}

	before, err := snapshot()
	if err != nil {
		return fmt.Errorf("reading the host's state: %w", err)
	}
	if left := leftovers(before, runProcesses()); len(left) > 0 {
		return fmt.Errorf("an earlier node run that was killed outright left %s behind; remove it, then run again", strings.Join(left, ", "))
	}
	if len(before.Processes) > 0 {
		return unavailable{fmt.Sprintf("node components already run on this machine (%s); stop them first", strings.Join(before.Processes, ", "))}
	}
	run, err := os.MkdirTemp("", runDirPrefix)
	if err != nil {
		return err
	}
	n := &node{assets: assets, images: images, run: run, logs: logs, cluster: cluster, log: log}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx = untilOrphaned(ctx, log)
	defer func() {
		n.teardown()
		if rerr := restore(before, run, log); rerr != nil {
			err = errors.Join(err, rerr)
		}
		after, serr := snapshot()
		if serr != nil {
			err = errors.Join(err, serr)
			return
		}
		if d := diff(before, after); len(d) > 0 {
			err = errors.Join(err, fmt.Errorf("the host differs from before the run: %s", strings.Join(d, "; ")))
			return
		}
		log("the host is as it was before the run")
	}()
	if err := n.bringUp(ctx); err != nil {
		return err
	}
	if err := n.writeEnv(envFile); err != nil {
		return err
	}
	log("node %s is Ready; press Ctrl-C (or send SIGTERM) to stop it", nodeName)
	<-ctx.Done()
	return nil
}

// untilOrphaned ends ctx when the process that started nodeenv goes away
// without stopping it (a test binary killed outright), so the node is torn
// down and the host restored rather than left running. Linux says so only
// by reparenting, hence the poll.
func untilOrphaned(ctx context.Context, log func(string, ...any)) context.Context {
	parent := os.Getppid()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != parent {
					log("the process that started nodeenv is gone; stopping")
					cancel()
					return
				}
			}
		}
	}()
	return ctx
}

func (n *node) bringUp(ctx context.Context) error {
	var err error
	if n.hostIP, err = hostAddress(); err != nil {
		return err
	}
	if n.pki, err = newPKI(filepath.Join(n.run, "pki")); err != nil {
		return err
	}
	if err := n.pki.serviceAccountKey(); err != nil {
		return err
	}
	key, err := readRSAPublicKey(n.pki.path("sa.pub"))
	if err != nil {
		return err
	}
	if err := createBridge(); err != nil {
		return fmt.Errorf("creating the pods' bridge %s: %w", bridgeName, err)
	}
	n.kumo = awsiamtest.StartWith(awsiamtest.Options{ListenAddr: net.JoinHostPort(podGateway, "0"), TokenKey: key})
	if n.issuer, err = n.kumo.CreateCluster(ctx, n.cluster); err != nil {
		return fmt.Errorf("creating EKS cluster %s in kumo: %w", n.cluster, err)
	}
	n.log("kumo on %s; simulated EKS cluster %q has issuer %s", n.kumo.URL, n.cluster, n.issuer)

	servingHosts := []string{"127.0.0.1", "localhost", n.hostIP, kubernetesServiceIP,
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	for _, c := range []struct {
		name, cn string
		orgs     []string
		hosts    []string
	}{
		{"apiserver", "kube-apiserver", nil, servingHosts},
		{"apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil},
		{"admin", "awskubeflowprofiles-e2e-admin", []string{"system:masters"}, nil},
		{"controller-manager", "system:kube-controller-manager", nil, nil},
		{"scheduler", "system:kube-scheduler", nil, nil},
		{"kubelet", "system:node:" + nodeName, []string{"system:nodes"}, nil},
		{"kubelet-serving", "system:node:" + nodeName, []string{"system:nodes"}, []string{n.hostIP, nodeName, "localhost", "127.0.0.1"}},
		{"kube-proxy", "system:kube-proxy", nil, nil},
	} {
		if err := n.pki.issue(c.name, c.cn, c.orgs, c.hosts); err != nil {
			return err
		}
	}
	steps := []struct {
		what string
		fn   func(context.Context) error
	}{
		{"etcd", n.startEtcd},
		{"kube-apiserver", n.startAPIServer},
		{"controllers", n.startControllers},
		{"containerd", n.startContainerd},
		{"CNI", func(context.Context) error { return n.writeCNI() }},
		{"kubelet", n.startKubelet},
		{"kube-proxy", n.startKubeProxy},
		{"node Ready", n.waitNodeReady},
	}
	for _, s := range steps {
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w (logs in %s)", s.what, err, n.logs)
		}
	}
	return nil
}

// writeEnv writes how to reach the node, as KEY=value lines.
func (n *node) writeEnv(path string) error {
	admin, err := n.pki.kubeconfig("admin", n.apiserverURL)
	if err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(strings.TrimPrefix(n.kumo.URL, "http://"))
	if err != nil {
		return err
	}
	vars := []string{
		"KUBECONFIG=" + admin,
		// kumo listens only on the bridge's gateway, which the host reaches
		// as one of its own addresses.
		"AWS_ENDPOINT_URL=http://" + podGateway + ":" + port,
		"NODE_POD_AWS_ENDPOINT_URL=http://" + podGateway + ":" + port,
		"NODE_CLUSTER=" + n.cluster,
		"NODE_OIDC_ISSUER=" + n.issuer,
		"NODE_ACCOUNT_ID=" + awsiamtest.AccountID,
		"NODE_NAME=" + nodeName,
		"NODE_OPERATOR_IMAGE=" + operatorImage,
		"NODE_NOTEBOOK_IMAGE=" + notebookImage,
		"NODE_PAUSE_IMAGE=" + pauseImage,
		"NODE_LOGS=" + n.logs,
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(vars, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// teardown stops the workloads, then the components in the reverse order of
// their start, then kumo. The host is restored after it, by restore.
func (n *node) teardown() {
	n.log("stopping the node")
	for i := len(n.procs) - 1; i >= 0; i-- {
		p := n.procs[i]
		if p.name == "containerd" {
			n.killContainers()
		}
		p.stop(15 * time.Second)
		if p.name == "kube-proxy" && n.kubeProxyConfig != "" {
			_ = exec.Command(filepath.Join(n.assets, "kube-proxy"), "--cleanup", "--config", n.kubeProxyConfig).Run()
		}
	}
	// This run's shims outlive its containerd (their containers were killed
	// above); they name its socket on their command line. Another
	// containerd's shims are not this run's to stop.
	if n.containerdSock != "" {
		_ = exec.Command("pkill", "-KILL", "-f", "containerd-shim-runc-v2 .*-address "+regexp.QuoteMeta(n.containerdSock)).Run()
	}
	// The pods' logs are the kubelet's, under /var/log/pods, which restore
	// removes: keep a copy with the components' logs, this run's only.
	podLogs := filepath.Join(n.logs, "pods")
	_ = os.RemoveAll(podLogs)
	if out, err := exec.Command("cp", "-r", "/var/log/pods", podLogs).CombinedOutput(); err != nil {
		n.log("keeping the pods' logs: %v: %s", err, out)
	}
	if n.kumo != nil {
		n.kumo.Close()
	}
}
