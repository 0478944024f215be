#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it (.ci/run).
# Idempotent set-up first, then every test of the workspace: unit and property
# tests, generated-code freshness, the fuzz corpus and crash replays, the
# integration suites against the brokers they start, doc tests, and the codec
# feature matrix (pure-Rust defaults, no compression, C zstd opt-in), the
# consumer's opt-in `metrics` feature, and `krust` built without a C
# compiler, with and without TLS.
#
# Everything is built first; then the test binaries run in two lanes at once
# (most of an integration test's time is spent waiting for brokers: session
# timeouts, rebalance rounds, a JVM starting), each lane's lines prefixed
# with its name. Every step runs even when an earlier one failed
# (--no-fail-fast: one failure must not hide the others); the script fails
# if any did, and lists them.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh || exit 1

# The packages of lane A; lane B runs every other package of the workspace,
# so a new crate is never left out.
LANE_A=(krust-group krust-net krust-codec krust-codegen krust-fuzzing krust-testkit)

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# step NAME COMMAND...: run it, record a failure in $logs/failed.
step() {
  local name=$1
  shift
  echo "test.sh: [$name] $*"
  "$@" || echo "[$name] $*" >>"$logs/failed"
}

# lane NAME STEP...: the steps one after the other, every line prefixed.
lane() {
  local name=$1
  shift
  {
    for s in "$@"; do
      eval "step $name $s"
    done
  } 2>&1 | sed -u "s/^/[$name] /"
}

step build cargo test --workspace --all-targets --no-run

excludes=()
for p in "${LANE_A[@]}"; do excludes+=(--exclude "$p"); done
packages=()
for p in "${LANE_A[@]}"; do packages+=(-p "$p"); done

# The doc tests, the codec's feature matrix (it must build and pass
# without any compression crate, and with the opt-in C zstd) and the
# consumer's opt-in `metrics` feature (its broker test and the unit tests
# of its metrics module) compile while lane B's tests wait on brokers; so
# does the check that `krust` builds with no C compiler (CC=false), TLS included, and without its `tls`
# feature (its own target dir: build scripts that ran with a compiler
# elsewhere would not run again; removed once checked, CI's disk is small).
lane A \
  "cargo test ${packages[*]} --all-targets --no-fail-fast" \
  "cargo test --workspace --doc --no-fail-fast" \
  "cargo test -p krust-codec --no-default-features --lib --no-fail-fast" \
  "cargo test -p krust-codec --features zstd-c --lib --no-fail-fast" \
  "cargo test -p krust-consumer --features metrics --test metrics --no-fail-fast" \
  "cargo test -p krust-consumer --features metrics --lib --no-fail-fast -- metrics::" \
  "env CC=false CXX=false cargo check -p krust --target-dir target/cc-false" \
  "env CC=false CXX=false cargo check -p krust --no-default-features --target-dir target/cc-false" \
  "rm -rf target/cc-false" &
a=$!
lane B "cargo test --workspace ${excludes[*]} --all-targets --no-fail-fast" &
b=$!
wait "$a" "$b"

if [ -s "$logs/failed" ]; then
  echo "test.sh: FAILED:" >&2
  sed 's/^/  /' "$logs/failed" >&2
  exit 1
fi
echo "test.sh: every step passed"
