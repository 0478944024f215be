#!/usr/bin/env bash
# Installs what the tests need, idempotently, into ignored folders.
# Today the codec tests need only the Rust toolchain; the broker fixtures of
# the connection layer add their installs here.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo not found; install the Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi
