package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// sysctls are the kernel settings the kubelet, kube-proxy and the CNI
// bridge change on the host, restored at teardown.
var sysctls = []string{
	"vm.overcommit_memory",
	"kernel.panic",
	"kernel.panic_on_oops",
	"net.ipv4.ip_forward",
	"net.ipv4.conf.all.route_localnet",
	"net.bridge.bridge-nf-call-iptables",
	"net.bridge.bridge-nf-call-ip6tables",
	"vm.panic_on_oom",
	"kernel.keys.root_maxkeys",
	"kernel.keys.root_maxbytes",
}

// hostPaths are the places outside the run's folder where the node's
// components create files; what a run created there is removed.
var hostPaths = []string{
	"/var/lib/kubelet",
	"/var/log/containers",
	"/var/log/pods",
	"/run/containerd",
	"/var/lib/cni",
	"/run/netns",
	"/var/run/netns",
	"/etc/cni",
	"/var/lib/containerd",
}

// kubePodsGlobs are where the kubelet's cgroupfs driver makes kubepods: in
// each controller's hierarchy under cgroup v1, at the root under v2.
var kubePodsGlobs = []string{"/sys/fs/cgroup/*/kubepods*", "/sys/fs/cgroup/kubepods*"}

// hostState is what a run may change on the machine: sysctls, iptables
// tables and rules, cgroups, network links, mounts and directories.
type hostState struct {
	Sysctls   map[string]string
	NFTables  []string
	Iptables  map[string]string
	Links     []string
	Mounts    []string
	Paths     map[string]bool
	KubePods  []string
	Processes []string
}

// snapshot reads the host's state.
func snapshot() (hostState, error) {
	st := hostState{Sysctls: map[string]string{}, Iptables: map[string]string{}, Paths: map[string]bool{}}
	for _, k := range sysctls {
		if v, err := os.ReadFile(sysctlPath(k)); err == nil {
			st.Sysctls[k] = strings.TrimSpace(string(v))
		}
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil {
		st.NFTables = sortedLines(string(out))
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(tool).Output()
		if err != nil {
			return st, fmt.Errorf("%s: %w", tool, err)
		}
		st.Iptables[tool] = normalizeIptables(string(out))
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return st, err
	}
	for _, i := range ifaces {
		st.Links = append(st.Links, i.Name)
	}
	sort.Strings(st.Links)
	st.Mounts, err = mountPoints()
	if err != nil {
		return st, err
	}
	for _, p := range hostPaths {
		_, err := os.Lstat(p)
		st.Paths[p] = err == nil
	}
	st.KubePods = kubePods()
	st.Processes = nodeProcesses()
	return st, nil
}

func sysctlPath(key string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
}

func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// normalizeIptables drops what changes without a change of rules:
// comments with dates and packet counters.
func normalizeIptables(save string) string {
	var out []string
	for _, l := range strings.Split(save, "\n") {
		if strings.HasPrefix(l, "#") || strings.TrimSpace(l) == "" {
			continue
		}
		if strings.HasPrefix(l, ":") {
			if i := strings.LastIndex(l, " ["); i > 0 {
				l = l[:i]
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, unescapeMount(fields[4]))
		}
	}
	return out, sc.Err()
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// kubePods are the kubepods cgroups of every hierarchy, deepest first.
func kubePods() []string {
	var out []string
	var roots []string
	for _, g := range kubePodsGlobs {
		m, _ := filepath.Glob(g)
		roots = append(roots, m...)
	}
	for _, root := range roots {
		_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.IsDir() {
				out = append(out, p)
			}
			return nil
		})
	}
	sort.Slice(out, func(i, j int) bool { return strings.Count(out[i], "/") > strings.Count(out[j], "/") })
	return out
}

// nodeProcesses are the node components and workloads still running.
func nodeProcesses() []string {
	var out []string
	for _, name := range []string{"kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "kube-controller-manager", "kube-scheduler"} {
		if err := exec.Command("pgrep", "-x", name).Run(); err == nil {
			out = append(out, name)
		}
	}
	return out
}

// runDirPrefix starts the name of every run's folder; a process whose
// command line names one belongs to a node run.
const runDirPrefix = "awskubeflowprofiles-node-"

// runProcesses are the pids of processes of a node run.
func runProcesses() []string {
	out, _ := exec.Command("pgrep", "-f", runDirPrefix).Output()
	return strings.Fields(string(out))
}

// leftovers is what a run killed before it could restore the host left:
// its bridge, kubepods cgroups and processes (pids). A run must not take
// them for the host's own state.
func leftovers(st hostState, pids []string) []string {
	var out []string
	if slices.Contains(st.Links, bridgeName) {
		out = append(out, "the bridge "+bridgeName+" (ip link delete "+bridgeName+")")
	}
	if len(st.KubePods) > 0 {
		out = append(out, fmt.Sprintf("%d kubepods cgroups (rmdir them, deepest first, under %s)", len(st.KubePods), strings.Join(kubePodsGlobs, " and ")))
	}
	if len(pids) > 0 {
		out = append(out, "processes of a node run (pkill -f "+runDirPrefix+"; pids "+strings.Join(pids, " ")+")")
	}
	return out
}

// ourMount and ourLink are whether a mount or link is one a node run makes: under the run's
// folder or the places the components write to, or the bridge and its
// veths. Nothing else on the host is the run's to undo.
func ourMount(m, runDir string) bool {
	if strings.HasPrefix(m, runDir+"/") || m == runDir {
		return true
	}
	for _, p := range hostPaths {
		if m == p || strings.HasPrefix(m, p+"/") {
			return true
		}
	}
	return false
}

func ourLink(name string) bool { return name == bridgeName || strings.HasPrefix(name, "veth") }

// ourTable is whether an nftables table is one kube-proxy, the kubelet or
// the CNI plugins make, directly or through iptables-nft.
func ourTable(t string) bool {
	f := strings.Fields(t) // table <family> <name>
	if len(f) != 3 {
		return false
	}
	switch f[2] {
	case "filter", "nat", "mangle", "raw", "security", "kube-proxy":
		return f[1] == "ip" || f[1] == "ip6" || f[1] == "inet"
	}
	return false
}

// restore undoes what the run changed, as measured against before, once
// every process of the run has stopped. It works through all of it even if
// a step fails, and reports every failure.
func restore(before hostState, runDir string, log func(string, ...any)) error {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	// Mounts first: nothing else can go while mounted.
	now, err := mountPoints()
	if err != nil {
		fail("reading mounts: %v", err)
	}
	slices.Reverse(now)
	for _, m := range now {
		if slices.Contains(before.Mounts, m) || !ourMount(m, runDir) {
			continue
		}
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			fail("unmounting %s: %v", m, err)
		} else {
			log("unmounted %s", m)
		}
	}
	ifaces, _ := net.Interfaces()
	for _, i := range ifaces {
		if !slices.Contains(before.Links, i.Name) && ourLink(i.Name) {
			if err := exec.Command("ip", "link", "delete", i.Name).Run(); err != nil {
				fail("deleting link %s: %v", i.Name, err)
			} else {
				log("deleted link %s", i.Name)
			}
		}
	}
	for _, tool := range []string{"iptables", "ip6tables"} {
		cmd := exec.Command(tool+"-restore", "--wait")
		cmd.Stdin = strings.NewReader(before.Iptables[tool+"-save"] + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			fail("%s-restore: %v: %s", tool, err, out)
		}
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil {
		for _, t := range sortedLines(string(out)) {
			if slices.Contains(before.NFTables, t) || !ourTable(t) {
				continue
			}
			args := append([]string{"delete"}, strings.Fields(t)...)
			if err := exec.Command("nft", args...).Run(); err != nil {
				fail("nft %s: %v", strings.Join(args, " "), err)
			} else {
				log("deleted nft %s", t)
			}
		}
	}
	for _, cg := range kubePods() {
		if slices.Contains(before.KubePods, cg) {
			continue
		}
		if err := os.Remove(cg); err != nil {
			fail("removing cgroup %s: %v", cg, err)
		}
	}
	for k, v := range before.Sysctls {
		cur, err := os.ReadFile(sysctlPath(k))
		if err != nil || strings.TrimSpace(string(cur)) == v {
			continue
		}
		if err := os.WriteFile(sysctlPath(k), []byte(v), 0o644); err != nil {
			fail("restoring %s=%s: %v", k, v, err)
		} else {
			log("restored %s=%s (was %s)", k, v, strings.TrimSpace(string(cur)))
		}
	}
	for _, p := range hostPaths {
		if before.Paths[p] {
			continue
		}
		if _, err := os.Lstat(p); err == nil {
			if err := os.RemoveAll(p); err != nil {
				fail("removing %s: %v", p, err)
			} else {
				log("removed %s", p)
			}
		}
	}
	if runDir != "" {
		if err := os.RemoveAll(runDir); err != nil {
			fail("removing %s: %v", runDir, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("restoring the host: %s", strings.Join(errs, "; "))
	}
	return nil
}

// diff lists how after differs from before.
func diff(before, after hostState) []string {
	var out []string
	for k, v := range before.Sysctls {
		if after.Sysctls[k] != v {
			out = append(out, fmt.Sprintf("sysctl %s is %s, was %s", k, after.Sysctls[k], v))
		}
	}
	if !slices.Equal(before.NFTables, after.NFTables) {
		out = append(out, fmt.Sprintf("nft tables are %v, were %v", after.NFTables, before.NFTables))
	}
	for tool, rules := range before.Iptables {
		if after.Iptables[tool] != rules {
			out = append(out, tool+" rules differ")
		}
	}
	if !slices.Equal(before.Links, after.Links) {
		out = append(out, fmt.Sprintf("links are %v, were %v", after.Links, before.Links))
	}
	if !slices.Equal(before.Mounts, after.Mounts) {
		out = append(out, fmt.Sprintf("%d mounts, were %d", len(after.Mounts), len(before.Mounts)))
	}
	for p, existed := range before.Paths {
		if after.Paths[p] != existed {
			out = append(out, fmt.Sprintf("%s exists: %v, did: %v", p, after.Paths[p], existed))
		}
	}
	if !slices.Equal(before.KubePods, after.KubePods) {
		out = append(out, fmt.Sprintf("kubepods cgroups: %d, were %d", len(after.KubePods), len(before.KubePods)))
	}
	if !slices.Equal(before.Processes, after.Processes) {
		out = append(out, fmt.Sprintf("running: %v, were %v", after.Processes, before.Processes))
	}
	return out
}
