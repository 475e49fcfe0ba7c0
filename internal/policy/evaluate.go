package policy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ActionAssumeRoleWithWebIdentity is the action a pod's SDK performs with its
// projected service-account token.
const ActionAssumeRoleWithWebIdentity = "sts:AssumeRoleWithWebIdentity"

// Request is what a trust policy is evaluated against: an action, the
// principal that performs it and the request context (condition keys, with
// lower- or mixed-case names, and their values).
type Request struct {
	Action        string
	PrincipalType string
	PrincipalID   string
	Context       map[string][]string
}

// WebIdentityRequest is the request STS evaluates when a token from issuer
// (with or without https://) is exchanged for a role through the IAM OIDC
// provider providerARN.
func WebIdentityRequest(providerARN, issuer, subject string, audiences []string) Request {
	host := IssuerHost(issuer)
	return Request{
		Action:        ActionAssumeRoleWithWebIdentity,
		PrincipalType: "Federated",
		PrincipalID:   providerARN,
		Context: map[string][]string{
			host + ":sub": {subject},
			host + ":aud": audiences,
		},
	}
}

// Decision is the outcome of an evaluation with the reason for it.
type Decision struct {
	Allowed bool
	Reason  string
}

// Evaluate decides a request the way IAM does for a role's trust policy: an
// explicit Deny wins, otherwise an Allow whose action, principal and
// conditions all match allows, otherwise the request is implicitly denied.
// A condition operator this evaluator does not know yields an error rather
// than a guess.
func Evaluate(doc Document, req Request) (Decision, error) {
	allowedBy := -1
	var misses []string
	lower := lowerKeys(req.Context)
	for i, s := range doc.Statement {
		miss, err := s.mismatch(req, lower)
		if err != nil {
			return Decision{}, fmt.Errorf("statement %d: %w", i, err)
		}
		if miss != "" {
			if s.Effect == Allow {
				misses = append(misses, fmt.Sprintf("statement %d: %s", i, miss))
			}
			continue
		}
		if s.Effect == Deny {
			return Decision{Reason: fmt.Sprintf("explicitly denied by statement %d", i)}, nil
		}
		if allowedBy < 0 {
			allowedBy = i
		}
	}
	if allowedBy < 0 {
		reason := "no statement allows the request"
		if len(misses) > 0 {
			reason += " (" + strings.Join(misses, "; ") + ")"
		}
		return Decision{Reason: reason}, nil
	}
	return Decision{Allowed: true, Reason: fmt.Sprintf("allowed by statement %d", allowedBy)}, nil
}

// mismatch says why the statement does not apply to the request, whose
// context lower has with its keys in lower case, or "" when it does.
func (s Statement) mismatch(req Request, lower map[string][]string) (string, error) {
	if miss := s.targetMismatch(req); miss != "" {
		return miss, nil
	}
	return conditionMismatch(s.Condition, lower)
}

// targetMismatch says why the statement's action or principal does not
// cover the request, or "" when they do.
func (s Statement) targetMismatch(req Request) string {
	switch {
	case len(s.Action) > 0 && !matchesAny(s.Action, req.Action, true):
		return "its action is not " + req.Action
	case len(s.NotAction) > 0 && matchesAny(s.NotAction, req.Action, true):
		return "its NotAction excludes " + req.Action
	case s.Principal != nil && !principalMatches(s.Principal, req):
		return fmt.Sprintf("its principal is not %s %s", req.PrincipalType, req.PrincipalID)
	case s.NotPrincipal != nil && principalMatches(s.NotPrincipal, req):
		return fmt.Sprintf("its NotPrincipal excludes %s %s", req.PrincipalType, req.PrincipalID)
	}
	return ""
}

// lowerKeys is the request context with its keys in lower case, as
// condition keys compare.
func lowerKeys(ctx map[string][]string) map[string][]string {
	lower := make(map[string][]string, len(ctx))
	for k, v := range ctx {
		lower[strings.ToLower(k)] = v
	}
	return lower
}

func principalMatches(p Principal, req Request) bool {
	if contains(p["AWS"], "*") {
		return true
	}
	return contains(p[req.PrincipalType], req.PrincipalID)
}

// conditionMismatch names the first condition, in the order of operators
// and keys, that the context (its keys in lower case) does not meet, or "".
func conditionMismatch(conds Conditions, lower map[string][]string) (string, error) {
	for _, op := range slices.Sorted(maps.Keys(conds)) {
		keys := conds[op]
		for _, key := range slices.Sorted(maps.Keys(keys)) {
			want := keys[key]
			got := lower[strings.ToLower(key)]
			ok, err := conditionMatches(op, want, got, hasKey(lower, key))
			if err != nil {
				return "", fmt.Errorf("condition %s on %s: %w", op, key, err)
			}
			if !ok {
				return fmt.Sprintf("condition %s on %s wants %v, the request has %v", op, key, []string(want), got), nil
			}
		}
	}
	return "", nil
}

func hasKey(ctx map[string][]string, key string) bool {
	_, ok := ctx[strings.ToLower(key)]
	return ok
}

// conditionMatches evaluates one operator on one key. Policy values are ORed.
// Without a set prefix, a multi-valued context key matches when any of its
// values does.
func conditionMatches(op string, want Values, got []string, present bool) (bool, error) {
	if op == "Null" {
		if len(want) != 1 || (want[0] != "true" && want[0] != "false") {
			return false, fmt.Errorf("Null takes true or false")
		}
		return (want[0] == "true") == !present, nil
	}
	set := ""
	if before, after, found := strings.Cut(op, ":"); found {
		set, op = before, after
		if set != "ForAnyValue" && set != "ForAllValues" {
			return false, fmt.Errorf("unsupported set operator %q", set)
		}
	}
	ifExists := strings.HasSuffix(op, "IfExists")
	op = strings.TrimSuffix(op, "IfExists")
	match, negated, err := stringOperator(op)
	if err != nil {
		return false, err
	}
	if !present {
		// A missing key matches negated operators, IfExists and ForAllValues
		// (vacuously) and nothing else.
		return negated || ifExists || set == "ForAllValues", nil
	}
	one := func(v string) bool {
		for _, w := range want {
			if match(w, v) {
				return true
			}
		}
		return false
	}
	switch set {
	case "ForAllValues":
		for _, v := range got {
			if one(v) == negated {
				return false, nil
			}
		}
		return true, nil
	default: // ForAnyValue and single-valued use
		any := false
		for _, v := range got {
			if one(v) {
				any = true
				break
			}
		}
		return any != negated, nil
	}
}

// stringOperator returns the comparison of a string condition operator and
// whether the operator is negated.
func stringOperator(op string) (func(pattern, value string) bool, bool, error) {
	switch op {
	case "StringEquals":
		return func(w, v string) bool { return w == v }, false, nil
	case "StringNotEquals":
		return func(w, v string) bool { return w == v }, true, nil
	case "StringEqualsIgnoreCase":
		return strings.EqualFold, false, nil
	case "StringNotEqualsIgnoreCase":
		return strings.EqualFold, true, nil
	case "StringLike":
		return globMatch, false, nil
	case "StringNotLike":
		return globMatch, true, nil
	default:
		return nil, false, fmt.Errorf("unsupported condition operator %q", op)
	}
}

// globMatch is IAM's wildcard matching: * is any run of characters ("/"
// included), ? exactly one, everything else literal.
func globMatch(pattern, value string) bool {
	p, v := []rune(pattern), []rune(value)
	pi, vi := 0, 0
	star, resume := -1, 0
	for vi < len(v) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == v[vi]):
			pi++
			vi++
		case pi < len(p) && p[pi] == '*':
			star, resume = pi, vi
			pi++
		case star >= 0:
			pi = star + 1
			resume++
			vi = resume
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func matchesAny(patterns Values, value string, foldCase bool) bool {
	for _, p := range patterns {
		if foldCase {
			p, value = strings.ToLower(p), strings.ToLower(value)
		}
		if globMatch(p, value) {
			return true
		}
	}
	return false
}

func contains(v Values, s string) bool {
	for _, e := range v {
		if e == s {
			return true
		}
	}
	return false
}

// UnknownConditionKeys are the condition keys whose values decide req under
// doc and that req's context lacks, though STS may set them (aws:SourceIp,
// sts:RoleSessionName, a claim of the token such as its amr), sorted and
// once each. Only statements that apply to req's action and principal, and
// whose other conditions hold, are looked at: a statement another
// condition already rules out is decided without them. A key of another
// identity provider (its prefix a host, not the request's) is taken as
// absent, since this token never sets it.
func UnknownConditionKeys(doc Document, req Request) []string {
	lower := lowerKeys(req.Context)
	hosts := map[string]bool{}
	for k := range lower {
		if host, _, ok := strings.Cut(k, ":"); ok {
			hosts[host] = true
		}
	}
	mayBeSet := func(key string) bool {
		k := strings.ToLower(key)
		prefix, _, _ := strings.Cut(k, ":")
		_, known := lower[k]
		return !known && (!strings.Contains(prefix, ".") || hosts[prefix])
	}
	var out []string
	for _, s := range doc.Statement {
		if s.targetMismatch(req) != "" {
			continue
		}
		var unknown []string
		decided := false
		for op, keys := range s.Condition {
			for key, want := range keys {
				if mayBeSet(key) {
					unknown = append(unknown, key)
					continue
				}
				if ok, err := conditionMatches(op, want, lower[strings.ToLower(key)], hasKey(lower, key)); err != nil || !ok {
					decided = true
				}
			}
		}
		if decided {
			continue
		}
		for _, key := range unknown {
			if !slices.Contains(out, key) {
				out = append(out, key)
			}
		}
	}
	slices.Sort(out)
	return out
}
