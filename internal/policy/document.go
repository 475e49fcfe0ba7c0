// Package policy models IAM policy documents without I/O: it builds them,
// parses them in the forms IAM returns (URL-encoded or plain, single values or
// lists, keys in any order), compares them semantically, measures them against
// IAM's size limits and evaluates trust policies against web-identity claims.
package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"unicode"
)

// Version2012 is the current IAM policy language version.
const Version2012 = "2012-10-17"

// versionDefault is what IAM assumes when a document has no Version.
const versionDefault = "2008-10-17"

// Effect of a statement.
const (
	Allow = "Allow"
	Deny  = "Deny"
)

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version,omitempty"`
	ID        string      `json:"Id,omitempty"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of a policy document. Lists that IAM accepts as
// a single string or an array are held as Values; Principal maps a principal
// type (AWS, Federated, Service, CanonicalUser) to its values, and the bare
// "*" principal is held as {"AWS": ["*"]}, which IAM treats the same.
type Statement struct {
	Sid          string     `json:"Sid,omitempty"`
	Effect       string     `json:"Effect"`
	Principal    Principal  `json:"Principal,omitempty"`
	NotPrincipal Principal  `json:"NotPrincipal,omitempty"`
	Action       Values     `json:"Action,omitempty"`
	NotAction    Values     `json:"NotAction,omitempty"`
	Resource     Values     `json:"Resource,omitempty"`
	NotResource  Values     `json:"NotResource,omitempty"`
	Condition    Conditions `json:"Condition,omitempty"`
}

// Conditions maps a condition operator (StringEquals, ...) to condition keys
// and the values each key may take.
type Conditions map[string]map[string]Values

// Principal maps a principal type to its identifiers.
type Principal map[string]Values

// Values is a list that IAM accepts as a single JSON string or an array.
type Values []string

// UnmarshalJSON accepts a string, a number, a boolean or an array of them:
// IAM stores condition values as strings whatever their JSON type.
func (v *Values) UnmarshalJSON(b []byte) error {
	var raw any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	switch t := raw.(type) {
	case nil:
		*v = nil
	case []any:
		out := make(Values, 0, len(t))
		for _, e := range t {
			s, err := scalar(e)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		*v = out
	default:
		s, err := scalar(t)
		if err != nil {
			return err
		}
		*v = Values{s}
	}
	return nil
}

func scalar(e any) (string, error) {
	switch t := e.(type) {
	case string:
		return t, nil
	case json.Number:
		return t.String(), nil
	case bool:
		if t {
			return "true", nil
		}
		return "false", nil
	default:
		return "", fmt.Errorf("expected a string or a list of strings, got %T", e)
	}
}

// MarshalJSON writes the statement in the shape Kubeflow's
// AwsIamForServiceAccount plugin writes: a single action, resource or
// principal as a plain string, condition values always as lists.
func (s Statement) MarshalJSON() ([]byte, error) {
	type out struct {
		Sid          string                       `json:"Sid,omitempty"`
		Effect       string                       `json:"Effect"`
		Principal    map[string]any               `json:"Principal,omitempty"`
		NotPrincipal map[string]any               `json:"NotPrincipal,omitempty"`
		Action       any                          `json:"Action,omitempty"`
		NotAction    any                          `json:"NotAction,omitempty"`
		Resource     any                          `json:"Resource,omitempty"`
		NotResource  any                          `json:"NotResource,omitempty"`
		Condition    map[string]map[string]Values `json:"Condition,omitempty"`
	}
	return json.Marshal(out{
		Sid: s.Sid, Effect: s.Effect,
		Principal: s.Principal.compact(), NotPrincipal: s.NotPrincipal.compact(),
		Action: s.Action.compact(), NotAction: s.NotAction.compact(),
		Resource: s.Resource.compact(), NotResource: s.NotResource.compact(),
		Condition: s.Condition,
	})
}

// compact is a single value as a string, several as a list, none as nil.
func (v Values) compact() any {
	switch len(v) {
	case 0:
		return nil
	case 1:
		return v[0]
	default:
		return []string(v)
	}
}

func (p Principal) compact() map[string]any {
	if p == nil {
		return nil
	}
	out := make(map[string]any, len(p))
	for k, v := range p {
		out[k] = v.compact()
	}
	return out
}

// UnmarshalJSON accepts the "*" shorthand as well as a map of principal types.
func (p *Principal) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if s != "*" {
			return fmt.Errorf("principal must be \"*\" or an object, got %q", s)
		}
		*p = Principal{"AWS": Values{"*"}}
		return nil
	}
	var m map[string]Values
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("principal: %w", err)
	}
	*p = m
	return nil
}

// UnmarshalJSON accepts a single statement object as well as a list.
func (d *Document) UnmarshalJSON(b []byte) error {
	var raw struct {
		Version   string          `json:"Version"`
		ID        string          `json:"Id"`
		Statement json.RawMessage `json:"Statement"`
	}
	if err := strictUnmarshal(b, &raw); err != nil {
		return err
	}
	d.Version, d.ID, d.Statement = raw.Version, raw.ID, nil
	trimmed := bytes.TrimSpace(raw.Statement)
	switch {
	case len(trimmed) == 0 || bytes.Equal(trimmed, []byte("null")):
		return fmt.Errorf("policy document has no Statement")
	case trimmed[0] == '{':
		var s Statement
		if err := strictUnmarshal(trimmed, &s); err != nil {
			return fmt.Errorf("statement: %w", err)
		}
		d.Statement = []Statement{s}
	default:
		if err := strictUnmarshal(trimmed, &d.Statement); err != nil {
			return fmt.Errorf("statements: %w", err)
		}
	}
	return nil
}

// strictUnmarshal refuses keys IAM does not know, such as a misspelt
// "Actions", instead of silently dropping them.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// Parse reads a policy document as IAM returns it: plain JSON or URL-encoded
// JSON (real IAM encodes documents on read; some emulators do not).
func Parse(raw string) (Document, error) {
	text := strings.TrimSpace(raw)
	if strings.HasPrefix(text, "%") {
		// PathUnescape, unlike QueryUnescape, keeps a literal + as it is.
		decoded, err := url.PathUnescape(text)
		if err != nil {
			return Document{}, fmt.Errorf("URL-decoding policy document: %w", err)
		}
		text = decoded
	}
	var doc Document
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return Document{}, fmt.Errorf("parsing policy document: %w", err)
	}
	if dec.More() {
		return Document{}, fmt.Errorf("parsing policy document: trailing data after the document")
	}
	if err := doc.validate(); err != nil {
		return Document{}, err
	}
	return doc, nil
}

func (d Document) validate() error {
	if d.Version != "" && d.Version != Version2012 && d.Version != versionDefault {
		return fmt.Errorf("policy document: Version must be %s, not %q", Version2012, d.Version)
	}
	if len(d.Statement) == 0 {
		return fmt.Errorf("policy document has no Statement")
	}
	for i, s := range d.Statement {
		if s.Effect != Allow && s.Effect != Deny {
			return fmt.Errorf("policy document: Statement[%d].Effect must be Allow or Deny, not %q", i, s.Effect)
		}
		if len(s.Action) == 0 && len(s.NotAction) == 0 {
			return fmt.Errorf("policy document: Statement[%d] needs Action or NotAction", i)
		}
	}
	return nil
}

// Marshal renders the document as compact JSON, the form sent to IAM.
func (d Document) Marshal() string {
	b, err := json.Marshal(d)
	if err != nil {
		// Every field is a string, a list or a map of strings.
		panic(fmt.Sprintf("marshalling policy document: %v", err))
	}
	return string(b)
}

// Size is the length IAM counts against its quotas: the JSON without
// whitespace.
func (d Document) Size() int {
	return SizeOf(d.Marshal())
}

// SizeOf is the length IAM counts for a raw document: whitespace is free.
func SizeOf(raw string) int {
	n := 0
	for _, r := range raw {
		if !unicode.IsSpace(r) {
			n++
		}
	}
	return n
}

// Equal reports whether two documents grant the same permissions: statement
// order, key order, single values versus lists, duplicate values and the case
// of action names and condition keys do not matter.
func Equal(a, b Document) bool {
	return a.canonical() == b.canonical()
}

// canonical is a deterministic rendering of the normalised document.
func (d Document) canonical() string {
	version := d.Version
	if version == "" {
		version = versionDefault
	}
	stmts := make([]string, 0, len(d.Statement))
	for _, s := range d.Statement {
		stmts = append(stmts, s.canonical())
	}
	sort.Strings(stmts)
	stmts = dedupeSorted(stmts)
	return version + "|" + d.ID + "|" + strings.Join(stmts, "\n")
}

func (s Statement) canonical() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sid=%s;effect=%s;", s.Sid, s.Effect)
	writePrincipal(&b, "principal", s.Principal)
	writePrincipal(&b, "notprincipal", s.NotPrincipal)
	fmt.Fprintf(&b, "action=%s;", setOf(s.Action, strings.ToLower))
	fmt.Fprintf(&b, "notaction=%s;", setOf(s.NotAction, strings.ToLower))
	fmt.Fprintf(&b, "resource=%s;", setOf(s.Resource, nil))
	fmt.Fprintf(&b, "notresource=%s;", setOf(s.NotResource, nil))
	ops := sortedKeys(s.Condition)
	for _, op := range ops {
		// Keys are case-insensitive, but two keys differing only in case are
		// two conditions (ANDed), not one list of values (ORed).
		var entries []string
		for k, v := range s.Condition[op] {
			entries = append(entries, strings.ToLower(k)+"="+setOf(v, nil))
		}
		if len(entries) == 0 {
			continue
		}
		sort.Strings(entries)
		fmt.Fprintf(&b, "cond:%s{%s}", op, strings.Join(entries, ";"))
	}
	return b.String()
}

func writePrincipal(b *strings.Builder, name string, p Principal) {
	fmt.Fprintf(b, "%s{", name)
	for _, k := range sortedKeys(p) {
		if len(p[k]) == 0 {
			continue
		}
		fmt.Fprintf(b, "%s=%s;", k, setOf(p[k], nil))
	}
	b.WriteString("};")
}

// setOf renders values as a sorted, de-duplicated, quoted list.
func setOf(v Values, fold func(string) string) string {
	out := make([]string, 0, len(v))
	for _, s := range v {
		if fold != nil {
			s = fold(s)
		}
		out = append(out, fmt.Sprintf("%q", s))
	}
	sort.Strings(out)
	return "[" + strings.Join(dedupeSorted(out), ",") + "]"
}

func dedupeSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
