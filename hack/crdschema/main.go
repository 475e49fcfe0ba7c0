// Command crdschema completes the schema controller-gen writes for the
// inline policy documents of AwsKubeflowProfiles. The Go type of a document
// is raw JSON, kept whole so that the operator's strict parser sees every
// key a user wrote (a misspelt "Conditon" must be refused, not pruned), and
// controller-gen can only describe it as an object with unknown fields. This
// adds what admission can check of an IAM policy document without pruning
// anything: a Version, a list of Statements, each with an Effect of Allow or
// Deny and an Action or NotAction. Run by `make manifests` after
// controller-gen; running it again changes nothing.
package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: crdschema <crd.yaml>...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		if err := patchFile(path); err != nil {
			fmt.Fprintf(os.Stderr, "crdschema: %s: %v\n", path, err)
			os.Exit(1)
		}
	}
}

func patchFile(path string) error {
	in, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, n, err := Patch(in)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("no inline policy document found: has the API changed?")
	}
	return os.WriteFile(path, out, 0o644)
}

// documentKey is the line that opens an inline policy document's schema.
const documentKey = "document:"

// Patch replaces the schema of every property named document under an
// inlinePolicies list with DocumentSchema, keeping its description, and
// reports how many it replaced. It works on the text, so the rest of the
// file stays exactly as controller-gen wrote it.
func Patch(crd []byte) ([]byte, int, error) {
	lines := strings.Split(string(crd), "\n")
	var out []string
	replaced := 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if strings.TrimSpace(line) != documentKey || !underInlinePolicies(lines[:i], indent) {
			out = append(out, line)
			continue
		}
		end := i + 1
		for end < len(lines) && (strings.TrimSpace(lines[end]) == "" || leading(lines[end]) > indent) {
			end++
		}
		var old apiextensionsv1.JSONSchemaProps
		if err := yaml.Unmarshal([]byte(dedent(lines[i+1:end], indent+2)), &old); err != nil {
			return nil, 0, fmt.Errorf("reading the document schema at line %d: %w", i+1, err)
		}
		body, err := yaml.Marshal(DocumentSchema(old.Description))
		if err != nil {
			return nil, 0, err
		}
		out = append(out, line)
		pad := strings.Repeat(" ", indent+2)
		for _, l := range strings.Split(strings.TrimRight(string(body), "\n"), "\n") {
			out = append(out, pad+l)
		}
		replaced++
		i = end - 1
	}
	return []byte(strings.Join(out, "\n")), replaced, nil
}

// underInlinePolicies reports whether the key at indent, after the lines
// before it, is a property of the items of an inlinePolicies list:
// inlinePolicies > items > properties > document.
func underInlinePolicies(before []string, indent int) bool {
	want := []string{"properties:", "items:", "inlinePolicies:"}
	level := indent
	for i := len(before) - 1; i >= 0 && len(want) > 0; i-- {
		l := before[i]
		if strings.TrimSpace(l) == "" || leading(l) >= level {
			continue
		}
		if strings.TrimSpace(l) != want[0] {
			return false
		}
		want, level = want[1:], leading(l)
	}
	return len(want) == 0
}

func leading(s string) int { return len(s) - len(strings.TrimLeft(s, " ")) }

func dedent(lines []string, n int) string {
	var b bytes.Buffer
	for _, l := range lines {
		if len(l) >= n {
			l = l[n:]
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// DocumentSchema is the schema of an IAM policy document: what admission
// checks, with every other key preserved for the operator's own parser.
func DocumentSchema(description string) apiextensionsv1.JSONSchemaProps {
	preserve := true
	anything := apiextensionsv1.JSONSchemaProps{XPreserveUnknownFields: &preserve}
	enum := func(values ...string) []apiextensionsv1.JSON {
		out := make([]apiextensionsv1.JSON, 0, len(values))
		for _, v := range values {
			out = append(out, apiextensionsv1.JSON{Raw: []byte(`"` + v + `"`)})
		}
		return out
	}
	one := int64(1)
	statement := apiextensionsv1.JSONSchemaProps{
		Description: "Statement is one IAM policy statement. Effect and one of Action or NotAction are required; Sid, " +
			"Principal, Resource, NotResource and Condition are kept as written and checked by the operator.",
		Type:                   "object",
		XPreserveUnknownFields: &preserve,
		Required:               []string{"Effect"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"Effect":    {Type: "string", Enum: enum("Allow", "Deny")},
			"Action":    anything,
			"NotAction": anything,
		},
		AnyOf: []apiextensionsv1.JSONSchemaProps{{Required: []string{"Action"}}, {Required: []string{"NotAction"}}},
	}
	return apiextensionsv1.JSONSchemaProps{
		Description:            description,
		Type:                   "object",
		XPreserveUnknownFields: &preserve,
		Required:               []string{"Statement", "Version"},
		Properties: map[string]apiextensionsv1.JSONSchemaProps{
			"Version":   {Type: "string", Enum: enum("2012-10-17", "2008-10-17")},
			"Statement": {Type: "array", MinItems: &one, Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &statement}},
		},
	}
}
