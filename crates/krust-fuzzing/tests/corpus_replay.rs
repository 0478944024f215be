//! Replays the committed fuzz corpus and every crash input found
//! (`fuzz/corpus/<target>/`, `fuzz/artifacts/<target>/`) through the fuzz
//! target bodies, so CI checks them on stable without libFuzzer.

use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_and_crash_inputs_replay_cleanly() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    for (target, run) in krust_fuzzing::TARGETS {
        assert!(
            fuzz.join("fuzz_targets")
                .join(format!("{target}.rs"))
                .is_file(),
            "fuzz/fuzz_targets/{target}.rs is missing"
        );
        let corpus = inputs(&fuzz.join("corpus").join(target));
        assert!(
            corpus.len() >= 5,
            "fuzz/corpus/{target} has {} inputs; run `cargo run -p krust-fuzzing --example write_seeds`",
            corpus.len()
        );
        let crashes = inputs(&fuzz.join("artifacts").join(target));
        for input in corpus.iter().chain(&crashes) {
            let data = std::fs::read(input).expect("read corpus input");
            run(&data);
        }
        eprintln!(
            "{target}: {} corpus inputs, {} crash inputs",
            corpus.len(),
            crashes.len()
        );
    }
}

#[test]
fn hostile_inputs_are_rejected_without_allocating() {
    // The classic kafka-protocol abort: an array count of 2^31-1 in 8 bytes.
    for (_, run) in krust_fuzzing::TARGETS {
        run(&[0, 1, 1, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0]);
        run(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        run(&[]);
    }
}
