//! The Java client as interop peer: `crates/krust-testkit/java/*.java`,
//! compiled by `scripts/setup.sh` against kafka-clients 4.4.0 into
//! `.deps/java-peer`.

use std::path::Path;
use std::process::Command;

use crate::kafka::{KafkaVersion, java};
use crate::process::deps_bin;

/// A `java` command that runs the peer `class` (e.g. `JavaGroupConsumer`)
/// with kafka-clients 4.4.0 on its class path; add the arguments and spawn
/// it. Panics with the command that installs it when the peer is not
/// compiled, so an interop test never skips silently.
pub fn java_peer(class: &str) -> Command {
    let classes = deps_bin().with_file_name("java-peer");
    let compiled = classes.join(format!("{class}.class"));
    assert!(
        compiled.is_file(),
        "the Java peer is not compiled (no {}): run scripts/setup.sh from the repository root",
        compiled.display()
    );
    let libs = KafkaVersion::V4_4
        .libs()
        .unwrap_or_else(|e| panic!("the Java peer needs kafka-clients: {e}"));
    let java = java().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(java);
    cmd.args([
        "-Xmx256m",
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-cp",
    ])
    .arg(classpath(&classes, &libs))
    .arg(class);
    cmd
}

fn classpath(classes: &Path, libs: &Path) -> String {
    format!("{}:{}/*", classes.display(), libs.display())
}
