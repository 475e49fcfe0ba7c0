#!/usr/bin/env bash
# Lays a bundle out for a pull request to k8s-operatorhub/community-operators
# (OperatorHub.io): operators/<package>/<version>/{manifests,metadata} and
# operators/<package>/ci.yaml, in a checkout of your fork, then prints the
# commands that make the pull request. Use the bundle the release workflow
# stamped (its artifact), not a development one.
#
# Usage: scripts/community-operators.sh <bundle-dir> <community-operators-checkout> <reviewer>[,<reviewer>...]
set -euo pipefail

bundle=${1:?bundle directory, with manifests/ and metadata/}
checkout=${2:?a checkout of your fork of k8s-operatorhub/community-operators}
reviewers=${3:?the GitHub users who may approve updates of this operator, comma-separated}

annotations="$bundle/metadata/annotations.yaml"
package=$(sed -n 's/^ *operators.operatorframework.io.bundle.package.v1: *//p' "$annotations")
csv=$(ls "$bundle"/manifests/*.clusterserviceversion.yaml)
version=$(sed -n 's/^  version: *//p' "$csv")
[[ -n "$package" && -n "$version" ]] || { echo "community-operators: no package in $annotations or no spec.version in $csv" >&2; exit 1; }
[[ -d "$checkout/operators" ]] || { echo "community-operators: $checkout has no operators/ directory: clone your fork of k8s-operatorhub/community-operators there" >&2; exit 1; }

dest="$checkout/operators/$package/$version"
rm -rf "$dest"
mkdir -p "$dest"
cp -R "$bundle/manifests" "$bundle/metadata" "$dest/"
# replaces-mode: each new version's CSV names the one it replaces
# (spec.replaces), the upgrade graph OLM follows.
{
  echo "# Read by the community-operators pipeline (operators/$package/ci.yaml)."
  echo "updateGraph: replaces-mode"
  echo "reviewers:"
  IFS=, read -ra users <<<"$reviewers"
  for u in "${users[@]}"; do
    echo "  - $u"
  done
} >"$checkout/operators/$package/ci.yaml"

cat <<NEXT
community-operators: wrote $dest and operators/$package/ci.yaml. Then, in $checkout:
  git checkout -b $package-$version
  git add operators/$package
  git commit -s -m "operator $package ($version)"
  git push origin $package-$version
and open a pull request titled "operator $package ($version)" against
k8s-operatorhub/community-operators. Every commit must be signed off (-s).
NEXT
