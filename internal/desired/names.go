package desired

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/awskubeflowprofiles/operator/api/v1alpha1"
)

// MaxRoleNameLength is IAM's limit on role names.
const MaxRoleNameLength = 64

// hashLength is the number of hex digits of the suffix that keeps shortened
// names unique.
const hashLength = 8

// ProfileRoleName is the role name of a profile, <profile>-<cluster>-role as
// in the Kubeflow on AWS guide, shortened when IAM would refuse it.
func ProfileRoleName(profile, cluster string) string {
	return Shorten(profile+"-"+cluster+"-role", MaxRoleNameLength)
}

// RoleNameOf is the role name of a profile of the spec: its roleName, or
// the default.
func RoleNameOf(p v1alpha1.ProfileSpec, cluster string) string {
	if p.RoleName != "" {
		return p.RoleName
	}
	return ProfileRoleName(p.Name, cluster)
}

// ControllerRoleName is the default role name of the profile controller.
func ControllerRoleName(cluster string) string {
	return Shorten("kf-profile-controller-"+cluster+"-role", MaxRoleNameLength)
}

// MaxPolicyNameLength is IAM's limit on managed policy names.
const MaxPolicyNameLength = 128

// ControllerPolicyName is the default name of the profile controller's
// policy. It names the cluster, so clusters sharing an account each have
// their own.
func ControllerPolicyName(cluster string) string {
	return Shorten("kf-profile-controller-"+cluster+"-policy", MaxPolicyNameLength)
}

// LegacyControllerPolicyName is the profile controller's policy name that
// every cluster shared before the default named the cluster.
const LegacyControllerPolicyName = "kf-profile-controller-policy"

// DefaultRolePath is the IAM path of profile roles when the spec sets none.
func DefaultRolePath(cluster string) string {
	return "/kubeflow/" + cluster + "/"
}

// Shorten returns name unchanged when it fits in limit; otherwise it keeps as
// much of the start as fits before a dash and the first hex digits of the
// SHA-256 of the whole name, so the result is stable and two long names that
// share a prefix still differ.
func Shorten(name string, limit int) string {
	if len(name) <= limit {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:])[:hashLength]
	prefix := strings.TrimRight(name[:limit-len(suffix)], "-_.")
	return prefix + suffix
}
