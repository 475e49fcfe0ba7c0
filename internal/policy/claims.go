package policy

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Claims are the claims of a web identity token (a Kubernetes
// service-account token) that IAM's web-identity federation reads.
type Claims struct {
	Issuer   string
	Subject  string
	Audience []string
}

// DecodeClaims reads iss, sub and aud from a JWT without verifying its
// signature: the caller vouches for where the token came from.
func DecodeClaims(token string) (Claims, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, fmt.Errorf("decoding the JWT payload: %w", err)
	}
	var raw struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(payload, &raw); err != nil {
		return Claims{}, fmt.Errorf("reading the JWT claims: %w", err)
	}
	c := Claims{Issuer: raw.Iss, Subject: raw.Sub}
	var one string
	if err := json.Unmarshal(raw.Aud, &one); err == nil {
		c.Audience = []string{one}
	} else if err := json.Unmarshal(raw.Aud, &c.Audience); err != nil {
		return Claims{}, fmt.Errorf("reading the aud claim: %w", err)
	}
	return c, nil
}
