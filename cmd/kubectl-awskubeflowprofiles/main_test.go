package main

import (
	"bytes"
	"context"
	"flag"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	"github.com/awskubeflowprofiles/operator/internal/diagnose"
)

func TestFlagsMayFollowThePod(t *testing.T) {
	cases := map[string][]string{
		"flags first":               {"-n", "team-a", "nb-0"},
		"the pod first":             {"nb-0", "-n", "team-a"},
		"a flag with its value":     {"nb-0", "--namespace=team-a"},
		"flags on both sides":       {"-o", "json", "nb-0", "-n", "team-a"},
		"a boolean flag takes none": {"nb-0", "-v", "-n", "team-a"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			fs := flag.NewFlagSet("diagnose", flag.ContinueOnError)
			namespace := fs.String("n", "", "")
			fs.StringVar(namespace, "namespace", "", "")
			output := fs.String("o", "text", "")
			fs.Bool("v", false, "")
			g.Expect(fs.Parse(reorder(fs, args))).To(Succeed())
			g.Expect(*namespace).To(Equal("team-a"))
			g.Expect(fs.Args()).To(Equal([]string{"nb-0"}))
			if slices.Contains(args, "json") {
				g.Expect(*output).To(Equal("json"))
			}
		})
	}
}

func TestTheExitCodeSaysWhetherTheChainIsWhole(t *testing.T) {
	pass := diagnose.Check{Status: diagnose.Pass}
	for want, checks := range map[int][]diagnose.Check{
		exitWhole:      {pass, pass},
		exitBroken:     {pass, {Status: diagnose.Fail}, {Status: diagnose.CannotCheck}},
		exitIncomplete: {pass, {Status: diagnose.CannotCheck}},
	} {
		NewWithT(t).Expect(exitCode(diagnose.Report{Checks: checks})).To(Equal(want))
	}
}

func TestHelpExits0(t *testing.T) {
	var out, errOut bytes.Buffer
	NewWithT(t).Expect(run(context.Background(), []string{"diagnose", "--help"}, &out, &errOut)).To(Equal(exitWhole))
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
