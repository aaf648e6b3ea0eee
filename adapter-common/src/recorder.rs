//! A recorder that writes to a file from a thread of its own, so that the
//! driver never waits on the disk: lines go through a bounded queue, and a
//! full queue (64 Ki lines or 64 MiB, whichever comes first) drops them,
//! counts them and says so in the file. The file is capped: past
//! `max_bytes` the first segment is moved to `<path>.0` (kept: it is the one
//! a replay can start from), later ones to `<path>.1` (replacing the one
//! before), and a new file starts with the header again and a note that
//! lines before it are elsewhere, so a replay of it stops there.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use wslink_core::record::Recorder;

/// Lines, and bytes, that may wait for the writer thread before new ones are dropped.
const QUEUE_LINES: usize = 64 * 1024;
const QUEUE_BYTES: usize = 64 << 20;

/// Writes a recording to a file (see the module docs); hand it to
/// `Builder::record`, and keep the [`RecordingFile`] to wait for the last line.
#[derive(Debug)]
pub struct FileRecorder {
    lines: SyncSender<String>,
    dropped: Arc<AtomicU64>,
    /// Bytes handed over and not yet written.
    queued: Arc<AtomicUsize>,
}

/// The writer thread of a [`FileRecorder`].
#[derive(Debug)]
pub struct RecordingFile {
    thread: JoinHandle<io::Result<()>>,
    dropped: Arc<AtomicU64>,
}

impl FileRecorder {
    /// Creates (or truncates) `path` and starts its writer thread; the file
    /// stays under about `max_bytes` (the rest rotates to `<path>.1`).
    pub fn create(path: impl AsRef<Path>, max_bytes: u64) -> io::Result<(Self, RecordingFile)> {
        let path = path.as_ref().to_path_buf();
        let file = BufWriter::new(File::create(&path)?);
        let (lines, rx) = sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicUsize::new(0));
        let (counter, written) = (dropped.clone(), queued.clone());
        let thread = std::thread::Builder::new()
            .name("wslink-recorder".into())
            .spawn(move || write_lines(rx, file, path, max_bytes, counter, written))?;
        Ok((Self { lines, dropped: dropped.clone(), queued }, RecordingFile { thread, dropped }))
    }
}

impl Recorder for FileRecorder {
    fn record(&mut self, line: String) {
        let len = line.len();
        if self.queued.load(Ordering::Relaxed) + len > QUEUE_BYTES {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.lines.try_send(line) {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl RecordingFile {
    /// Waits until every line handed over is written and the file is closed:
    /// call it once the client is gone (its event stream ended).
    pub fn finish(self) -> io::Result<u64> {
        self.thread.join().map_err(|_| io::Error::other("the recorder thread panicked"))??;
        Ok(self.dropped.load(Ordering::Relaxed))
    }
}

fn write_lines(
    rx: Receiver<String>,
    mut file: BufWriter<File>,
    path: PathBuf,
    max_bytes: u64,
    dropped: Arc<AtomicU64>,
    queued: Arc<AtomicUsize>,
) -> io::Result<()> {
    let mut header: Option<String> = None;
    let mut written = 0u64;
    let mut noted = 0u64;
    let mut rotations = 0u32;
    while let Ok(line) = rx.recv() {
        queued.fetch_sub(line.len(), Ordering::Relaxed);
        let now_dropped = dropped.load(Ordering::Relaxed);
        if now_dropped > noted {
            // The note goes where the gap is.
            let note = format!(r#"{{"t":0,"k":"dropped","count":{}}}"#, now_dropped - noted);
            writeln!(file, "{note}")?;
            written += note.len() as u64 + 1;
            noted = now_dropped;
        }
        if header.is_none() {
            header = Some(line.clone());
        } else if written + line.len() as u64 > max_bytes {
            file.flush()?;
            let mut old = path.clone().into_os_string();
            old.push(if rotations == 0 { ".0" } else { ".1" });
            rotations += 1;
            std::fs::rename(&path, &old)?;
            file = BufWriter::new(File::create(&path)?);
            let header = header.as_deref().unwrap_or_default();
            let note = r#"{"t":0,"k":"dropped","count":0}"#;
            writeln!(file, "{header}")?;
            writeln!(file, "{note}")?;
            written = (header.len() + note.len() + 2) as u64;
        }
        writeln!(file, "{line}")?;
        written += line.len() as u64 + 1;
    }
    let now_dropped = dropped.load(Ordering::Relaxed);
    if now_dropped > noted {
        writeln!(file, r#"{{"t":0,"k":"dropped","count":{}}}"#, now_dropped - noted)?;
    }
    file.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_its_cap_the_file_rotates_and_keeps_the_first_segment() {
        let dir = std::env::temp_dir().join(format!("wslink-recorder-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        let (mut recorder, file) = FileRecorder::create(&path, 400).unwrap();
        recorder.record(r#"{"wslink_recording":1}"#.to_owned());
        for i in 0..40 {
            recorder.record(format!(r#"{{"t":{i},"k":"timeout"}}"#));
        }
        drop(recorder);
        assert_eq!(file.finish().unwrap(), 0);
        let read = |suffix: &str| std::fs::read_to_string(dir.join(format!("r.jsonl{suffix}"))).unwrap();
        let (first, last, current) = (read(".0"), read(".1"), read(""));
        assert!(first.starts_with(r#"{"wslink_recording":1}"#) && first.contains(r#""t":0,"#), "{first}");
        for later in [&last, &current] {
            let mut lines = later.lines();
            assert_eq!(lines.next(), Some(r#"{"wslink_recording":1}"#), "each segment starts with the header");
            assert_eq!(
                lines.next(),
                Some(r#"{"t":0,"k":"dropped","count":0}"#),
                "and says lines before it are elsewhere"
            );
        }
        assert!(current.contains(r#""t":39,"#), "the newest line is in the current file");
        for f in [&first, &last, &current] {
            assert!(f.len() <= 400 + 40, "about the cap: {}", f.len());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
