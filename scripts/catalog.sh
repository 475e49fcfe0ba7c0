#!/usr/bin/env bash
# Writes a file-based catalog (FBC) with one bundle in the candidate
# channel, validates it with opm and writes its Dockerfile, for the release
# workflow's catalog image. The bundle image must already be pushed: opm
# renders it from the registry.
#
# Usage: scripts/catalog.sh <opm> <package> <channel> <bundle-image> <opm-base-image> <out-dir>
set -euo pipefail

opm=${1:?opm binary}
package=${2:?package name}
channel=${3:?channel}
bundle=${4:?bundle image, pushed}
base=${5:?opm base image of the catalog}
out=${6:?output directory}

rm -rf "$out" "$out.Dockerfile"
mkdir -p "$out/$package"
index="$out/$package/index.yaml"
"$opm" init "$package" --default-channel="$channel" --output=yaml >"$index"
echo "---" >>"$index"
"$opm" render "$bundle" --output=yaml >>"$index"
# The bundle's CSV name is what the channel lists.
csv=$(sed -n 's/^name: \('"$package"'\.v.*\)$/\1/p' "$index" | head -1)
[[ -n "$csv" ]] || { echo "catalog: opm render of $bundle gave no $package.v* bundle" >&2; exit 1; }
cat >>"$index" <<YAML
---
schema: olm.channel
package: $package
name: $channel
entries:
- name: $csv
YAML
"$opm" validate "$out"
"$opm" generate dockerfile "$out" --base-image "$base" --builder-image "$base"
echo "catalog: $out with $csv in channel $channel; $out.Dockerfile builds it on $base"
