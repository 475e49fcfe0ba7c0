package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Address ranges of the node, in 198.18.0.0/15 (RFC 2544, benchmarking):
// no 10.x, 172.16/12 or 192.168 addresses that a host network may use.
const (
	podSubnet     = "198.18.0.0/24"
	podGateway    = "198.18.0.1"
	serviceSubnet = "198.19.0.0/24"
	// kubernetesServiceIP is the first address of the service range, the
	// ClusterIP of the kubernetes Service.
	kubernetesServiceIP = "198.19.0.1"
	bridgeName          = "akp0"
	nodeName            = "akp-node"
)

// proc is one running component.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start runs a component with its output in logs/name.log.
func (n *node) start(name, binary string, args ...string) (*proc, error) {
	if err := os.MkdirAll(n.logs, 0o755); err != nil {
		return nil, err
	}
	out, err := os.Create(filepath.Join(n.logs, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so a Ctrl-C on the terminal reaches nodeenv,
	// which stops the components in order, and not them all at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = out.Close()
		close(p.done)
	}()
	n.procs = append(n.procs, p)
	n.log("started %s (pid %d)", name, cmd.Process.Pid)
	return p, nil
}

// stop ends a component: SIGTERM, then SIGKILL after a grace period.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// exited reports an error if the component has stopped.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s exited: %v", p.name, p.err)
	default:
		return nil
	}
}

// waitFor polls check until it succeeds, the component dies or the
// deadline passes.
func waitFor(ctx context.Context, what string, p *proc, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if p != nil {
			if err := p.exited(); err != nil {
				return fmt.Errorf("waiting for %s: %w (last check: %v)", what, err, last)
			}
		}
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last check: %v)", what, ctx.Err(), last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// hostAddress is the host's first IPv4 address that is not loopback: the
// node's InternalIP, which pods reach the API server at through the
// kubernetes Service.
func hostAddress() (string, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 || i.Name == bridgeName {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				return ipn.IP.String(), nil
			}
		}
	}
	return "", errors.New("no IPv4 address on any interface")
}

// httpsGet checks url with the node's CA and the admin's certificate.
func (n *node) httpsGet(url string) error {
	cert, err := tls.LoadX509KeyPair(n.pki.path("admin.crt"), n.pki.path("admin.key"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(n.pki.caCert)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func (n *node) startEtcd(ctx context.Context) error {
	client, err := freePort()
	if err != nil {
		return err
	}
	peer, err := freePort()
	if err != nil {
		return err
	}
	n.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", client)
	p, err := n.start("etcd", filepath.Join(n.assets, "etcd"),
		"--data-dir", filepath.Join(n.run, "etcd"),
		"--listen-client-urls", n.etcdURL, "--advertise-client-urls", n.etcdURL,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", peer),
		"--initial-cluster", fmt.Sprintf("default=http://127.0.0.1:%d", peer),
		"--unsafe-no-fsync")
	if err != nil {
		return err
	}
	return waitFor(ctx, "etcd", p, time.Minute, func() error {
		resp, err := http.Get(n.etcdURL + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

func (n *node) startAPIServer(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	n.apiserverURL = fmt.Sprintf("https://127.0.0.1:%d", port)
	p, err := n.start("kube-apiserver", filepath.Join(n.assets, "kube-apiserver"),
		"--etcd-servers", n.etcdURL,
		"--bind-address", "0.0.0.0", "--secure-port", fmt.Sprint(port), "--advertise-address", n.hostIP,
		"--tls-cert-file", n.pki.path("apiserver.crt"), "--tls-private-key-file", n.pki.path("apiserver.key"),
		"--client-ca-file", n.pki.path("ca.crt"),
		"--kubelet-client-certificate", n.pki.path("apiserver-kubelet-client.crt"),
		"--kubelet-client-key", n.pki.path("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority", n.pki.path("ca.crt"),
		"--kubelet-preferred-address-types", "InternalIP",
		"--service-account-issuer", n.issuer,
		"--service-account-key-file", n.pki.path("sa.pub"),
		"--service-account-signing-key-file", n.pki.path("sa.key"),
		"--service-cluster-ip-range", serviceSubnet,
		"--authorization-mode", "Node,RBAC",
		"--allow-privileged=false",
		"--enable-priority-and-fairness=false",
		"--cert-dir", filepath.Join(n.run, "apiserver"))
	if err != nil {
		return err
	}
	return waitFor(ctx, "kube-apiserver", p, 2*time.Minute, func() error { return n.httpsGet(n.apiserverURL + "/readyz") })
}

func (n *node) startControllers(ctx context.Context) error {
	cm, err := n.pki.kubeconfig("controller-manager", n.apiserverURL)
	if err != nil {
		return err
	}
	if _, err := n.start("kube-controller-manager", filepath.Join(n.assets, "kube-controller-manager"),
		"--kubeconfig", cm, "--authentication-kubeconfig", cm, "--authorization-kubeconfig", cm,
		"--root-ca-file", n.pki.path("ca.crt"),
		"--service-account-private-key-file", n.pki.path("sa.key"),
		"--use-service-account-credentials=true",
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0",
		"--controllers", "*,-node-ipam-controller"); err != nil {
		return err
	}
	sched, err := n.pki.kubeconfig("scheduler", n.apiserverURL)
	if err != nil {
		return err
	}
	_, err = n.start("kube-scheduler", filepath.Join(n.assets, "kube-scheduler"),
		"--kubeconfig", sched, "--authentication-kubeconfig", sched, "--authorization-kubeconfig", sched,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0")
	return err
}

func (n *node) startContainerd(ctx context.Context) error {
	dir := filepath.Join(n.run, "containerd")
	n.containerdSock = filepath.Join(dir, "containerd.sock")
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # root here lacks CAP_SYS_RESOURCE: runc cannot set a sandbox's
  # oom_score_adj below the current one.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), n.containerdSock, pauseImage, n.cniConfDir())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := n.start("containerd", "containerd", "--config", path)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, "containerd", p, time.Minute, func() error {
		return exec.Command("ctr", "--address", n.containerdSock, "version").Run()
	}); err != nil {
		return err
	}
	for _, img := range []string{"pause.tar", "operator.tar", "notebook.tar"} {
		out, err := exec.Command("ctr", "--address", n.containerdSock, "-n", "k8s.io", "images", "import", "--no-unpack=false", filepath.Join(n.images, img)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("importing %s into containerd: %v: %s", img, err, out)
		}
	}
	n.log("imported the node's images into containerd")
	return nil
}

// createBridge makes the pods' bridge with the gateway's address before
// anything listens, so kumo can listen there rather than on every
// interface: it is unauthenticated, and only this machine and its pods are
// to reach it. The CNI bridge plugin takes the bridge over as it finds it.
func createBridge() error {
	for _, args := range [][]string{
		{"link", "add", bridgeName, "type", "bridge"},
		{"addr", "add", podGateway + "/24", "dev", bridgeName},
		{"link", "set", bridgeName, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func (n *node) cniConfDir() string { return filepath.Join(n.run, "cni", "net.d") }

// writeCNI configures the bridge the pods are on: the host is its gateway,
// which is how pods reach kumo, and nothing is masqueraded.
func (n *node) writeCNI() error {
	if err := os.MkdirAll(n.cniConfDir(), 0o755); err != nil {
		return err
	}
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "akp",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": true,
    "ipMasq": false,
    "hairpinMode": true,
    "ipam": {
      "type": "host-local",
      "ranges": [[{"subnet": %q, "gateway": %q}]],
      "routes": [{"dst": "0.0.0.0/0"}],
      "dataDir": %q
    }
  }]
}
`, bridgeName, podSubnet, podGateway, filepath.Join(n.run, "cni", "ipam"))
	return os.WriteFile(filepath.Join(n.cniConfDir(), "10-akp.conflist"), []byte(conf), 0o644)
}

func (n *node) startKubelet(ctx context.Context) error {
	dir := filepath.Join(n.run, "kubelet")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kubeconfig, err := n.pki.kubeconfig("kubelet", n.apiserverURL)
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Hosts with cgroup v1 (this project's machines) are refused by kubelet 1.37 by default.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://%s
address: %s
readOnlyPort: 0
tlsCertFile: %s
tlsPrivateKeyFile: %s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization: {mode: Webhook}
volumePluginDir: %s
resolvConf: /etc/resolv.conf
# The images are imported, never pulled, and must not be collected.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "50Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
serializeImagePulls: false
`, n.containerdSock, n.hostIP, n.pki.path("kubelet-serving.crt"), n.pki.path("kubelet-serving.key"), n.pki.path("ca.crt"), filepath.Join(dir, "plugins"))
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	_, err = n.start("kubelet", filepath.Join(n.assets, "kubelet"),
		"--config", path, "--kubeconfig", kubeconfig, "--node-ip", n.hostIP, "--hostname-override", nodeName,
		"--root-dir", filepath.Join(dir, "root"), "--cert-dir", filepath.Join(dir, "pki"))
	return err
}

func (n *node) startKubeProxy(ctx context.Context) error {
	kubeconfig, err := n.pki.kubeconfig("kube-proxy", n.apiserverURL)
	if err != nil {
		return err
	}
	n.kubeProxyConfig = filepath.Join(n.run, "kube-proxy.yaml")
	healthz, err := freePort()
	if err != nil {
		return err
	}
	metrics, err := freePort()
	if err != nil {
		return err
	}
	conf := fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: %s}
hostnameOverride: %s
mode: iptables
clusterCIDR: %s
# Avoids net.ipv4.conf.all.route_localnet.
iptables: {localhostNodePorts: false}
# Zero leaves the conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
metricsBindAddress: 127.0.0.1:%d
healthzBindAddress: 127.0.0.1:%d
`, kubeconfig, nodeName, podSubnet, metrics, healthz)
	if err := os.WriteFile(n.kubeProxyConfig, []byte(conf), 0o644); err != nil {
		return err
	}
	p, err := n.start("kube-proxy", filepath.Join(n.assets, "kube-proxy"), "--config", n.kubeProxyConfig)
	if err != nil {
		return err
	}
	// Healthy once it has written the rules of the Services it knows.
	return waitFor(ctx, "kube-proxy", p, time.Minute, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", healthz))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	})
}

// killContainers kills and deletes every task containerd still runs in the
// k8s.io namespace, and its containers (crictl is not installed).
func (n *node) killContainers() {
	ctr := func(args ...string) string {
		out, _ := exec.Command("ctr", append([]string{"--address", n.containerdSock, "-n", "k8s.io"}, args...)...).Output()
		return string(out)
	}
	for _, id := range strings.Fields(ctr("tasks", "ls", "-q")) {
		ctr("tasks", "kill", "--signal", "SIGKILL", id)
	}
	err := waitFor(context.Background(), "containerd's tasks to end", nil, 20*time.Second, func() error {
		left := strings.Fields(ctr("tasks", "ls", "-q"))
		for _, id := range left {
			ctr("tasks", "delete", "--force", id)
		}
		if len(left) > 0 {
			return fmt.Errorf("%d tasks left", len(left))
		}
		return nil
	})
	if err != nil {
		n.log("%v", err)
	}
	for _, id := range strings.Fields(ctr("containers", "ls", "-q")) {
		ctr("containers", "delete", id)
	}
}
