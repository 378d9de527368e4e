#!/usr/bin/env bash
# Builds the `warren` binary of the previous release, the build a cluster runs before it is rolled
# to this one, into target/previous/<commit>/warren, and prints that path. The upgrade test
# (tests/e2e/rolling.rs, `an_upgrade_from_the_previous_release_...`) starts a cluster of it and
# rolls it to this build with scripts/rolling-restart.sh.
#
#   scripts/build-previous.sh [COMMIT]
#
# COMMIT defaults to PREVIOUS below: the last build before cluster protocol 11 (membership on
# SWIM), which runs protocol 10 and heartbeats. The source comes from this checkout's git history
# (`git archive`), so a shallow clone that lacks the commit fails here, naming it. The build has
# its own target directory (target/previous/build), so it never replaces this build's binaries;
# a binary already built for COMMIT is reused.
set -euo pipefail
PREVIOUS=ed682900728c6ed7e1d54ec38c367f084da961f8
root=$(cd "$(dirname "$0")/.." && pwd)
commit=${1:-$PREVIOUS}
out="$root/target/previous/$commit"
if [ -x "$out/warren" ]; then
  echo "$out/warren"
  exit 0
fi
git -C "$root" cat-file -e "$commit^{commit}" 2>/dev/null || {
  echo "build-previous: commit $commit is not in this checkout's history (a shallow clone? git fetch --unshallow)" >&2
  exit 1
}
src="$root/target/previous/src-$commit"
rm -rf "$src"
mkdir -p "$src"
git -C "$root" archive "$commit" | tar -x -C "$src"
# Progress goes to stderr; stdout is only the binary's path.
cargo build --manifest-path "$src/Cargo.toml" --locked --bin warren \
  --target-dir "$root/target/previous/build" >&2
mkdir -p "$out"
cp "$root/target/previous/build/debug/warren" "$out/warren.tmp"
mv "$out/warren.tmp" "$out/warren"
rm -rf "$src"
echo "$out/warren"
