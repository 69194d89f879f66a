#!/usr/bin/env bash
# Builds the s3mountd of an earlier version (the last one before the worker
# protocol's coded errors) for the upgrade test, and prints its path; prints
# nothing when this checkout has no such history (a shallow clone): the test
# then skips and says why. Cached in .tools/old/<commit>/.
set -euo pipefail
cd "$(dirname "$0")/.."
OLD=${S3MOUNTS_OLD_COMMIT:-d828b78}
out=.tools/old/$OLD/s3mountd
if [ -x "$out" ]; then echo "$PWD/$out"; exit 0; fi
git cat-file -e "$OLD^{commit}" 2>/dev/null || { echo "old-daemon: commit $OLD is not in this clone (shallow?): the upgrade test will skip" >&2; exit 0; }
src=$(mktemp -d); trap 'rm -rf "$src"' EXIT
git archive "$OLD" | tar -x -C "$src"
mkdir -p "$(dirname "$out")"
abs="$PWD/$out"
(cd "$src" && ${GO:-go} build -o "$abs.tmp" ./agent/cmd/s3mountd) >&2
mv "$abs.tmp" "$abs"
echo "$abs"
