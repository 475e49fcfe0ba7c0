package framework

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// process is a child process whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan error
	// metricsURL is where an operator process serves its metrics.
	metricsURL string
}

func startProcess(name, logDir string, env []string, bin string, args ...string) (*process, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so a stray Ctrl-C reaches it through us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan error, 1)}
	go func() {
		p.done <- cmd.Wait()
		_ = logFile.Close()
	}()
	return p, nil
}

// exited reports whether the process has ended, with its error.
func (p *process) exited() (bool, error) {
	if p == nil {
		return false, nil
	}
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// stop sends SIGTERM and waits, then kills after the grace period.
func (p *process) stop(grace time.Duration) error {
	if p == nil {
		return nil
	}
	if ended, _ := p.exited(); ended {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		// Kept for exited: how it ended is the caller's to judge.
		p.done <- err
		return nil
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		p.done <- <-p.done
		return fmt.Errorf("%s did not stop within %s and was killed; what it started may still run (see %s)", p.name, grace, p.logPath)
	}
}

// kill ends the process with SIGKILL, as a crash or an OOM kill would: it
// runs no shutdown code.
func (p *process) kill() {
	if p == nil {
		return
	}
	if ended, _ := p.exited(); ended {
		return
	}
	_ = p.cmd.Process.Kill()
	p.done <- <-p.done
}

// tail returns the last lines of the process's log.
func (p *process) tail(lines int) string {
	if p == nil {
		return ""
	}
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// waitForFile polls until path exists or the deadline passes, failing early
// when the process that should write it exits.
func waitForFile(ctx context.Context, path string, p *process, timeout time.Duration) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		if ended, err := p.exited(); ended {
			return false, fmt.Errorf("%s exited before writing %s (%v):\n%s", p.name, path, err, p.tail(30))
		}
		_, err := os.Stat(path)
		return err == nil, nil
	})
	if ended, _ := p.exited(); err != nil && !ended {
		return fmt.Errorf("%s has not written %s within %s (%w); its log ends:\n%s", p.name, path, timeout, err, p.tail(10))
	}
	return err
}

// waitForHTTP polls url until it answers 200.
func waitForHTTP(ctx context.Context, url string, p *process, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if ended, err := p.exited(); ended {
			return false, fmt.Errorf("%s exited (%v):\n%s", p.name, err, p.tail(30))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// readEnvFile reads KEY=value lines.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[k] = v
		}
	}
	return out, sc.Err()
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// operatorProcess runs the manager binary with the flags it has in a
// cluster (metrics over HTTPS with authentication and authorization, and
// probes, both on loopback) and waits until it is ready.
func operatorProcess(ctx context.Context, name, bin, logDir, resync string, env []string, extraArgs ...string) (*process, error) {
	metricsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	probeAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startProcess(name, logDir, env, bin, append([]string{
		"--metrics-bind-address=" + metricsAddr,
		"--health-probe-bind-address=" + probeAddr,
		"--resync-period=" + resync, "--zap-log-level=debug"}, extraArgs...)...)
	if err != nil {
		return nil, err
	}
	if err := waitForHTTP(ctx, "http://"+probeAddr+"/readyz", p, time.Minute); err != nil {
		_ = p.stop(5 * time.Second)
		return nil, fmt.Errorf("waiting for the operator to be ready: %w", err)
	}
	p.metricsURL = "https://" + metricsAddr + "/metrics"
	return p, nil
}
