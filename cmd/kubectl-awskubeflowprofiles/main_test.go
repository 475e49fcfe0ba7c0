package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/awskubeflowprofiles/operator/internal/diagnose"
)

func TestFlagsMayFollowThePod(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "team-a", "nb-0"}, {"nb-0", "-n", "team-a"}, {"nb-0", "--namespace=team-a"}, {"-o", "json", "nb-0", "-n", "team-a"},
	} {
		got := reorder(args)
		NewWithT(t).Expect(got[len(got)-1]).To(Equal("nb-0"), "%v", args)
	}
}

func TestUsageErrorsExit64(t *testing.T) {
	for _, args := range [][]string{nil, {"status"}, {"diagnose"}, {"diagnose", "-n", "a", "p1", "p2"}, {"diagnose", "-n", "a", "-o", "yaml"}} {
		var out, errOut bytes.Buffer
		NewWithT(t).Expect(run(context.Background(), args, &out, &errOut)).To(Equal(exitUsage), "%v", args)
	}
}

func TestTheTextSaysEachLinkAndItsFix(t *testing.T) {
	g := NewWithT(t)
	var out bytes.Buffer
	printText(&out, diagnose.Report{Profile: "team-a", Pod: "nb-0", Checks: []diagnose.Check{
		{Link: diagnose.LinkProfile, Status: diagnose.Pass, Detail: "names the role"},
		{Link: diagnose.LinkServiceAccount, Status: diagnose.Fail, Detail: "has no annotation", Fix: "check the profile controller"},
		{Link: diagnose.LinkToken, Status: diagnose.CannotCheck, Detail: "you may not create serviceaccounts/token"},
	}})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	g.Expect(lines[0]).To(Equal("Diagnosing profile team-a, pod nb-0"))
	g.Expect(lines[1]).To(HavePrefix("ok   Profile"))
	g.Expect(lines[2]).To(HavePrefix("FAIL Service account"))
	g.Expect(lines[3]).To(HaveSuffix("fix: check the profile controller"))
	g.Expect(lines[4]).To(HavePrefix("??   Service account token"))
	g.Expect(lines[5]).To(ContainSubstring("fix the first FAIL line"))
}
