#!/usr/bin/env bash
# Run by the release workflow after it regenerated bundle/ for the pushed
# image: the release is the committed bundle, stamped. The tag must be the
# Makefile's VERSION, and the regenerated bundle may differ from the
# committed one only in createdAt and the image references, which must all
# name the pushed image.
#
# Usage: scripts/check-release-bundle.sh <version, as in the tag without v> <operator image, as pushed>
set -euo pipefail

version=${1:?version}
image=${2:?the operator image the bundle must name, such as ghcr.io/o/r:v1.0.0@sha256:...}
cd "$(dirname "$0")/.."
committed=$(sed -n 's/^VERSION ?= //p' Makefile)
if [[ "$committed" != "$version" ]]; then
  echo "release: tag v$version but the Makefile's VERSION is $committed: set VERSION, run make bundle, commit, and tag that commit" >&2
  exit 1
fi
if git status --porcelain -- bundle/ bundle.Dockerfile | grep -v '^ M bundle/manifests/awskubeflowprofiles-operator.clusterserviceversion.yaml$'; then
  echo "release: make bundle changed files other than the CSV: run make bundle and commit the result before tagging" >&2
  exit 1
fi
unexpected=$(git diff --unified=0 -- bundle/ | grep '^[-+]' | grep -v '^[-+][-+][-+] ' |
  grep -Ev '^[-+] *(createdAt: |containerImage: |image: |- image: )' || true)
if [[ -n "$unexpected" ]]; then
  echo "release: the regenerated bundle differs from the committed one beyond createdAt and the image:" >&2
  echo "$unexpected" >&2
  exit 1
fi
wrong=$(git diff --unified=0 -- bundle/ | grep -E '^\+ *(containerImage: |image: |- image: )' | grep -vF -- "$image" || true)
if [[ -n "$wrong" ]]; then
  echo "release: the bundle names an image other than $image:" >&2
  echo "$wrong" >&2
  exit 1
fi
echo "release: bundle v$version is the committed one, stamped:"
git --no-pager diff --unified=0 -- bundle/ | grep '^[-+] ' || true
