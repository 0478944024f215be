#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it (.ci/run).
# Idempotent set-up first, then every test of the workspace: unit and property
# tests, generated-code freshness, the fuzz corpus and crash replays, and the
# codec feature matrix (pure-Rust defaults, no compression, C zstd opt-in).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

# --no-fail-fast: one failing test binary must not hide the others. Each
# step runs even when an earlier one failed; the script fails if any did.
failed=()
run() {
  echo "test.sh: $*"
  "$@" || failed+=("$*")
}
run cargo test --workspace --all-targets --no-fail-fast
run cargo test --workspace --doc --no-fail-fast
# The codec must build and pass without any compression crate, and with the
# opt-in C zstd.
run cargo test -p krust-codec --no-default-features --lib --no-fail-fast
run cargo test -p krust-codec --features zstd-c --lib --no-fail-fast
if ((${#failed[@]})); then
  printf 'test.sh: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "test.sh: every step passed"
