package framework

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
)

// A process that fails as it stops (nodeenv finding the host changed) must
// still report its failure after stop, which only says whether it stopped.
func TestStopKeepsTheExitStatus(t *testing.T) {
	g := NewWithT(t)
	p, err := startProcess("failing-on-term", t.TempDir(), nil, "/bin/sh", "-c", `trap "echo host differs >&2; exit 1" TERM; echo ready; while :; do sleep 0.05; done`)
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func() string { return p.tail(1) }).WithTimeout(5 * time.Second).Should(Equal("ready"))
	g.Expect(p.stop(5 * time.Second)).To(Succeed())
	ended, err := p.exited()
	g.Expect(ended).To(BeTrue())
	g.Expect(err).To(MatchError(ContainSubstring("exit status 1")))
	g.Expect(p.tail(1)).To(Equal("host differs"))
}

func TestANilProcessHasNotExited(t *testing.T) {
	var p *process
	ended, err := p.exited()
	NewWithT(t).Expect(ended || err != nil).To(BeFalse())
}
