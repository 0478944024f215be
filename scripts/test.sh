#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it (.ci/run).
# Idempotent set-up first, then every test of the workspace: unit and property
# tests, generated-code freshness, the fuzz corpus and crash replays, and the
# codec feature matrix (pure-Rust defaults, no compression, C zstd opt-in).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

cargo test --workspace --all-targets
cargo test --workspace --doc
# The codec must build and pass without any compression crate, and with the
# opt-in C zstd.
cargo test -p krust-codec --no-default-features --lib
cargo test -p krust-codec --features zstd-c --lib
