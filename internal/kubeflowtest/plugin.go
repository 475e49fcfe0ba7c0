// Package kubeflowtest mirrors, for tests, the IAM edits of Kubeflow's
// AwsIamForServiceAccount profile plugin (kubeflow/dashboard
// components/profile-controller/controllers/plugin_iam.go), whose Go module
// cannot be built here. Tests use it to show that the operator's trust is
// one the plugin leaves alone, and to reproduce the plugin's revoke on
// Profile deletion, which leaves a trust that admits every service account.
package kubeflowtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Add mirrors addServiceAccountInAssumeRolePolicy, which runs on every
// reconcile of every Profile whose plugin is not annotateOnly:
//
//  1. URL-decode the trust policy returned by iam:GetRole and read it as
//     generic JSON;
//  2. take Statement[0].Principal.Federated; the issuer is the part of that
//     ARN after its first "/";
//  3. look only at Statement[0].Condition.StringEquals["<issuer>:sub"], where
//     a plain string counts as a list of one;
//  4. if that list holds system:serviceaccount:<namespace>:default-editor,
//     stop: nothing is written;
//  5. otherwise write a document with a single statement {Effect: Allow,
//     Action: "sts:AssumeRoleWithWebIdentity", Principal: {Federated: <the
//     ARN>}, Condition: {StringEquals: {"<issuer>:aud": ["sts.amazonaws.com"],
//     "<issuer>:sub": [<the old entries>..., <the new subject>]}}}.
//
// It returns the document it would write and whether it writes at all.
func Add(encoded, namespace string) (string, bool, error) {
	subject := subjectOf(namespace)
	federated, issuer, subs, err := view(encoded)
	if err != nil {
		return "", false, err
	}
	if slices.Contains(subs, subject) {
		return "", false, nil
	}
	doc, err := document(federated, issuer, append(subs, subject))
	return doc, err == nil, err
}

// Revoke mirrors removeServiceAccountInAssumeRolePolicy, run by Kubeflow's
// Profile finalizer unless the plugin is annotateOnly: the same reading,
// every copy of the subject removed, and the document rewritten; with no
// subject left the condition keeps only the aud key, which admits every
// service account of the cluster.
func Revoke(encoded, namespace string) (string, error) {
	subject := subjectOf(namespace)
	federated, issuer, subs, err := view(encoded)
	if err != nil {
		return "", err
	}
	subs = slices.DeleteFunc(subs, func(s string) bool { return s == subject })
	return document(federated, issuer, subs)
}

func subjectOf(namespace string) string {
	return "system:serviceaccount:" + namespace + ":default-editor"
}

func view(encoded string) (federated, issuer string, subs []string, err error) {
	decoded, err := url.QueryUnescape(encoded)
	if err != nil {
		return "", "", nil, fmt.Errorf("URL-decoding the trust policy: %w", err)
	}
	var doc struct {
		Statement []struct {
			Principal map[string]any            `json:"Principal"`
			Condition map[string]map[string]any `json:"Condition"`
		} `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(decoded), &doc); err != nil {
		return "", "", nil, fmt.Errorf("reading the trust policy: %w", err)
	}
	if len(doc.Statement) == 0 {
		return "", "", nil, errors.New("the trust policy has no statement")
	}
	first := doc.Statement[0]
	federated, _ = first.Principal["Federated"].(string)
	_, issuer, _ = strings.Cut(federated, "/")
	switch v := first.Condition["StringEquals"][issuer+":sub"].(type) {
	case string:
		subs = []string{v}
	case []any:
		for _, s := range v {
			str, _ := s.(string)
			subs = append(subs, str)
		}
	}
	return federated, issuer, subs, nil
}

func document(federated, issuer string, subs []string) (string, error) {
	condition := map[string][]string{issuer + ":aud": {"sts.amazonaws.com"}}
	if len(subs) > 0 {
		condition[issuer+":sub"] = subs
	}
	b, err := json.Marshal(map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect": "Allow", "Action": "sts:AssumeRoleWithWebIdentity",
			"Principal": map[string]any{"Federated": federated},
			"Condition": map[string]any{"StringEquals": condition},
		}},
	})
	return string(b), err
}
