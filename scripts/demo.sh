#!/usr/bin/env bash
# The offset demo in one command: installs the local brokers (idempotently,
# into ignored folders; see scripts/setup.sh), then builds and runs
# examples/offset_demo.rs, which starts a local broker, produces 10
# messages, consumes some with commits, crashes, resumes from the committed
# offsets in a second consumer and checks that every message was consumed
# exactly once. Exit status 0 only if that check passed.
#
#   scripts/demo.sh                 # local Tansu (fast), started and stopped by the demo
#   scripts/demo.sh --kafka         # local Apache Kafka 4.4.0 (a KRaft node), started and stopped
#   scripts/demo.sh -b HOST:PORT    # your broker (fresh group; fresh topic if my-topic exists)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

exec cargo run --release --example offset_demo -- "$@"
