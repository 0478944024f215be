//! The interop peer: the Python venv with `confluent-kafka` (librdkafka
//! inside) that `scripts/setup.sh` installs at `.venv`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The venv's Python interpreter, checked to import `confluent_kafka`.
/// Panics with the command that installs it when it does not, so an
/// interop test never skips silently.
pub fn confluent_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.canonicalize().unwrap_or(root).join(".venv/bin/python");
    let imports = Command::new(&python)
        .args(["-c", "import confluent_kafka"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        imports,
        "no Python venv with confluent-kafka at {}: run scripts/setup.sh from the repository root",
        python.display()
    );
    python
}
