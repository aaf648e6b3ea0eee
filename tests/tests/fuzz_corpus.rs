//! Replays every saved fuzz input through the same bodies the fuzz targets run
//! (`fuzz/bodies.rs`), so CI exercises the corpora on stable without cargo-fuzz.
//! A missing or empty corpus fails: it is never skipped silently.

#[path = "../../fuzz/bodies.rs"]
mod bodies;

use std::path::PathBuf;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()))
        .map(|entry| entry.expect("readable corpus entry").path())
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 20, "corpus {} holds only {} inputs", dir.display(), inputs.len());
    for path in &inputs {
        let data = std::fs::read(path).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(|| body(&data));
        assert!(outcome.is_ok(), "fuzz input {} breaks an invariant", path.display());
    }
    println!("{target}: replayed {} inputs", inputs.len());
}

#[test]
fn handshake_response_corpus_replays_clean() {
    replay("handshake_response", bodies::handshake_response);
}

#[test]
fn frames_corpus_replays_clean() {
    replay("frames", bodies::frames);
}

#[test]
fn inflate_corpus_replays_clean() {
    replay("inflate", bodies::inflate);
}

#[test]
fn recording_corpus_replays_clean() {
    replay("recording", bodies::recording);
    // Both encodings are in it: the compact one a session writes, whole and broken.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/recording");
    let compact = std::fs::read_dir(&dir)
        .expect("the corpus")
        .filter_map(|entry| std::fs::read(entry.ok()?.path()).ok())
        .filter(|data| data.split(|&b| b == b'\n').next().is_some_and(|h| h.ends_with(br#""encoding":"compact"}"#)))
        .count();
    assert!(compact >= 5, "{compact} compact recordings in the corpus");
}

#[test]
fn proxy_reply_corpus_replays_clean() {
    replay("proxy_reply", bodies::proxy_reply);
}
