//! Replays the fuzz corpora (`fuzz/corpus/*`) and the torture messages through the fuzz
//! entry points on stable Rust, so every CI run checks what fuzzing found.

use std::path::PathBuf;

fn files(dir: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

#[test]
fn parse_corpus() {
    let corpus = files("fuzz/corpus/parse");
    assert!(!corpus.is_empty());
    for f in corpus {
        tincan_sip::message::fuzz_one_datagram(&std::fs::read(&f).unwrap());
    }
}

#[test]
fn framer_corpus() {
    let corpus = files("fuzz/corpus/framer");
    assert!(!corpus.is_empty());
    for f in corpus {
        tincan_sip::message::fuzz_one_stream(&std::fs::read(&f).unwrap());
    }
}

#[test]
fn torture_messages_as_streams() {
    for f in files("sip-core/tests/data/rfc4475") {
        let data = std::fs::read(&f).unwrap();
        tincan_sip::message::fuzz_one_datagram(&data);
        tincan_sip::message::fuzz_one_stream(&data);
    }
}
