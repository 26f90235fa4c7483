#!/usr/bin/env bash
# Step 1 of the native action (action.yml): puts the s3-asset-manager release
# binary for this runner in the runner's tool cache, verified against the
# release's checksums file, and writes its path as the step output `path`.
#
# Runs with the runner's bash on Linux, macOS (bash 3.2: no associative
# arrays, no ${x,,}) and Windows (Git Bash). Reads:
#   S3AM_VERSION        vX.Y.Z, or vX / vX.Y for the newest release of that line
#   S3AM_TOKEN          a GitHub token for the release list (rate limits)
#   S3AM_RELEASES_URL   the release list (GitHub's API)
#   S3AM_DOWNLOAD_URL   where <tag>/<file> are downloaded from
#   RUNNER_OS, RUNNER_ARCH, RUNNER_TOOL_CACHE, RUNNER_TEMP, GITHUB_OUTPUT
set -euo pipefail

repo=nsmithuk/s3-asset-manager
default_releases=https://api.github.com/repos/$repo/releases
releases=${S3AM_RELEASES_URL:-$default_releases}
download=${S3AM_DOWNLOAD_URL:-https://github.com/$repo/releases/download}
version=${S3AM_VERSION:-v1}

fail() {
	echo "::error title=s3-asset-manager::$*"
	exit 1
}

command -v curl >/dev/null 2>&1 || fail "curl is needed to download the release"

case "${RUNNER_OS:-}" in
Linux) os=linux ;;
macOS) os=darwin ;;
Windows) os=windows ;;
*) fail "no release binary for runner OS '${RUNNER_OS:-}' (Linux, macOS and Windows have one)" ;;
esac
case "${RUNNER_ARCH:-}" in
X64) arch=amd64 ;;
ARM64) arch=arm64 ;;
*) fail "no release binary for runner architecture '${RUNNER_ARCH:-}' (X64 and ARM64 have one)" ;;
esac
exe=s3-asset-manager
[ "$os" = windows ] && exe=s3-asset-manager.exe

# fetch URL FILE: download with retries; fails on an HTTP error.
fetch() {
	curl --fail --silent --show-error --location --retry 3 --output "$2" "$1"
}

# The release to run: an exact tag, or the newest release of a line from the
# release list (drafts are not listed; prereleases are skipped by name).
case "$version" in
v[0-9]*.[0-9]*.[0-9]*) tag=$version ;;
v[0-9]* | v[0-9]*.[0-9]*)
	list=$(mktemp)
	get=(curl --fail --silent --show-error --location --retry 3 --output "$list" "$releases?per_page=100")
	# The job's token is for its own GitHub; send it only to GitHub's API,
	# through curl's config on stdin so it is not in the process list.
	if [ -n "${S3AM_TOKEN:-}" ] && [ "$releases" = "$default_releases" ]; then
		printf 'header = "Authorization: Bearer %s"\n' "$S3AM_TOKEN" | "${get[@]}" --config - ||
			fail "could not list the releases at $releases"
	else
		"${get[@]}" || fail "could not list the releases at $releases"
	fi
	prefix=${version#v}.
	tag=$(grep -o '"tag_name"[[:space:]]*:[[:space:]]*"v[0-9][0-9.]*"' "$list" |
		sed 's/.*"v\([0-9.]*\)"$/\1/' |
		grep -E '^[0-9]+\.[0-9]+\.[0-9]+$' |
		while read -r v; do case "$v" in "$prefix"*) echo "$v" ;; esac; done |
		sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1) || tag="" # grep finding nothing fails the pipe
	rm -f "$list"
	[ -n "$tag" ] || fail "no release of s3-asset-manager matches version '$version'"
	tag=v$tag
	;;
*) fail "version '$version': want vX.Y.Z, or vX or vX.Y for the newest release of that line" ;;
esac

# The runner's tool cache layout (as @actions/tool-cache writes it):
# <cache>/<tool>/<version>/<arch>/ and a <arch>.complete marker beside it.
ver=${tag#v}
cache_arch=$(printf '%s' "$RUNNER_ARCH" | tr '[:upper:]' '[:lower:]')
dir=${RUNNER_TOOL_CACHE:?RUNNER_TOOL_CACHE is not set}/s3-asset-manager/$ver/$cache_arch
if [ -f "$dir.complete" ] && [ -f "$dir/$exe" ]; then
	echo "s3-asset-manager $tag for $os/$arch from the tool cache"
	echo "path=$dir/$exe" >>"$GITHUB_OUTPUT"
	exit 0
fi

name=s3-asset-manager_${ver}_${os}_${arch}
[ "$os" = windows ] && name=$name.exe
tmp=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/s3am.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo "downloading s3-asset-manager $tag for $os/$arch: $download/$tag/$name"
fetch "$download/$tag/checksums.txt" "$tmp/checksums.txt" || fail "could not download $download/$tag/checksums.txt"
fetch "$download/$tag/$name" "$tmp/$name" || fail "could not download $download/$tag/$name"

want=$(awk -v n="$name" '$2 == n || $2 == "*" n { print $1 }' "$tmp/checksums.txt")
[ -n "$want" ] || fail "$name is not listed in the release's checksums.txt"
if command -v sha256sum >/dev/null 2>&1; then
	got=$(sha256sum "$tmp/$name" | awk '{ print $1 }')
else
	got=$(shasum -a 256 "$tmp/$name" | awk '{ print $1 }')
fi
[ "$got" = "$want" ] || fail "$name: SHA-256 $got does not match the release's checksums.txt ($want); not installed"

mkdir -p "$dir"
chmod 0755 "$tmp/$name"
mv -f "$tmp/$name" "$dir/$exe"
touch "$dir.complete"
echo "s3-asset-manager $tag verified (sha256 $got) and cached in $dir"
echo "path=$dir/$exe" >>"$GITHUB_OUTPUT"
