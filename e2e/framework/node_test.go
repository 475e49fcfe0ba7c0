package framework

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

// fakeNodeenv puts a bin/nodeenv script under a new project root.
func fakeNodeenv(t *testing.T, script string) string {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "nodeenv"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

// A machine that nodeenv finds, only by trying, cannot run a node is a skip
// with nodeenv's reason; a nodeenv that fails otherwise is a failure.
func TestNodeStartTellsUnavailableFromFailed(t *testing.T) {
	cases := map[string]struct {
		script      string
		unavailable string
		stopFails   bool
	}{
		"exit 3 with a reason": {
			script:      `echo "[node 0.1s] installing containerd" >&2; echo "nodeenv: this machine cannot run a node: apt-get install containerd failed: no network" >&2; exit 3`,
			unavailable: "node: apt-get install containerd failed: no network",
		},
		"exit 3 without one": {script: `exit 3`, unavailable: "node: nodeenv exited 3 without a reason; see "},
		"exit 1":             {script: `echo "nodeenv: etcd did not start" >&2; exit 1`, stopFails: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			target := &nodeTarget{root: fakeNodeenv(t, tc.script)}
			_, err := target.Start(context.Background())
			g.Expect(err).To(HaveOccurred())
			var u *UnavailableError
			if tc.unavailable != "" {
				g.Expect(errors.As(err, &u)).To(BeTrue(), "%v", err)
				g.Expect(u.Reason).To(HavePrefix(tc.unavailable))
			} else {
				g.Expect(errors.As(err, &u)).To(BeFalse())
				g.Expect(err.Error()).To(ContainSubstring("etcd did not start"))
			}
			stopErr := target.Stop(context.Background())
			if tc.stopFails {
				g.Expect(stopErr).To(HaveOccurred())
			} else {
				g.Expect(stopErr).NotTo(HaveOccurred())
			}
		})
	}
}
