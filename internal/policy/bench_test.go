package policy_test

import (
	"net/url"
	"testing"

	"github.com/awskubeflowprofiles/operator/internal/policy"
)

// Every reconcile parses and compares the trust of each role it verifies.
func BenchmarkParseEncodedTrust(b *testing.B) {
	raw := url.QueryEscape(trustPlain)
	for b.Loop() {
		if _, err := policy.Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEqualTrust(b *testing.B) {
	a, err := policy.Parse(trustPlain)
	if err != nil {
		b.Fatal(err)
	}
	c, err := policy.Parse(url.QueryEscape(trustPlain))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if !policy.Equal(a, c) {
			b.Fatal("not equal")
		}
	}
}
