//! A recorder that writes to a file from a thread of its own, so that the
//! driver never waits on the disk. The session hands over its recording in
//! chunks (about one per driver turn, in the compact encoding: see
//! `wslink_core::record::compact`); chunks go through a bounded queue, and
//! a full queue (1 Ki chunks or 64 MiB, whichever comes first) drops them
//! whole, counts their lines and writes a note of the count where they
//! would have been. Buffers go back from the writer to the recorder to be
//! filled again, so a steady recording allocates nothing per chunk.
//!
//! The file is capped: past `max_bytes` the first segment is moved to
//! `<path>.0` (kept: it is the one a replay can start from), later ones to
//! `<path>.1` (replacing the one before), and a new file starts with the
//! header again and a note that lines before it are elsewhere, so a replay
//! of it stops there. Segments are cut between chunks, and each chunk
//! starts with its time, so every segment reads on its own.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use wslink_core::record::compact::dropped_note;
use wslink_core::record::Recorder;

/// Chunks, and bytes, that may wait for the writer thread before new ones are dropped.
const QUEUE_CHUNKS: usize = 1024;
const QUEUE_BYTES: usize = 64 << 20;
/// Spare buffers kept for the session to fill, and their bytes at most: as
/// many as may be in flight while the writer waits for the CPU, so that a
/// steady recording touches no fresh memory (a page fault per 4 KiB costs
/// more than the copy into it).
const SPARES: usize = 256;
const SPARE_BYTES: usize = 16 << 20;

/// A chunk for the writer, and the lines dropped just before it.
struct Chunk {
    bytes: Vec<u8>,
    dropped_before: u64,
}

/// Writes a recording to a file (see the module docs); hand it to
/// `Builder::record`, and keep the [`RecordingFile`] to wait for the last chunk.
#[derive(Debug)]
pub struct FileRecorder {
    chunks: SyncSender<Chunk>,
    spares: Receiver<Vec<u8>>,
    /// Lines dropped since the last chunk sent.
    dropped_since: u64,
    dropped: Arc<AtomicU64>,
    /// Bytes handed over and not yet written.
    queued: Arc<AtomicUsize>,
    /// Capacity of the spare buffers waiting in `spares`.
    spare_bytes: Arc<AtomicUsize>,
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
        let file = BufWriter::with_capacity(64 << 10, File::create(&path)?);
        let (chunks, rx) = sync_channel(QUEUE_CHUNKS);
        let (give_back, spares) = sync_channel(SPARES);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicUsize::new(0));
        let spare_bytes = Arc::new(AtomicUsize::new(0));
        let writer =
            Writer { file, path, max_bytes, queued: queued.clone(), give_back, spare_bytes: spare_bytes.clone() };
        let total = dropped.clone();
        let thread =
            std::thread::Builder::new().name("wslink-recorder".into()).spawn(move || writer.run(rx, &total))?;
        let recorder = Self { chunks, spares, dropped_since: 0, dropped: dropped.clone(), queued, spare_bytes };
        Ok((recorder, RecordingFile { thread, dropped }))
    }

    fn drop_chunk(&mut self, lines: u64) {
        // A chunk of no lines is the header: never dropped (it goes first, to an empty queue).
        self.dropped_since += lines;
        self.dropped.fetch_add(lines, Ordering::Relaxed);
    }
}

impl Recorder for FileRecorder {
    fn record(&mut self, chunk: &mut Vec<u8>, lines: u64) {
        let len = chunk.len();
        if self.queued.load(Ordering::Relaxed) + len > QUEUE_BYTES {
            return self.drop_chunk(lines);
        }
        self.queued.fetch_add(len, Ordering::Relaxed);
        // A buffer the writer is done with, else a new one with room for
        // the next chunk to outgrow this one without moving.
        let spare = match self.spares.try_recv() {
            Ok(spare) => {
                self.spare_bytes.fetch_sub(spare.capacity(), Ordering::Relaxed);
                spare
            }
            Err(_) => Vec::with_capacity(2 * len),
        };
        let bytes = std::mem::replace(chunk, spare);
        let dropped_before = std::mem::take(&mut self.dropped_since);
        if let Err(TrySendError::Full(back) | TrySendError::Disconnected(back)) =
            self.chunks.try_send(Chunk { bytes, dropped_before })
        {
            self.queued.fetch_sub(len, Ordering::Relaxed);
            self.dropped_since = back.dropped_before;
            // The session's buffer again, to be cleared and filled.
            *chunk = back.bytes;
            self.drop_chunk(lines);
        }
    }
}

impl RecordingFile {
    /// Waits until every chunk handed over is written and the file is
    /// closed: call it once the client is gone (its event stream ended).
    /// Returns the lines dropped.
    pub fn finish(self) -> io::Result<u64> {
        self.thread.join().map_err(|_| io::Error::other("the recorder thread panicked"))??;
        Ok(self.dropped.load(Ordering::Relaxed))
    }
}

/// The writer thread's side.
struct Writer {
    file: BufWriter<File>,
    path: PathBuf,
    max_bytes: u64,
    queued: Arc<AtomicUsize>,
    give_back: SyncSender<Vec<u8>>,
    spare_bytes: Arc<AtomicUsize>,
}

impl Writer {
    fn run(mut self, rx: Receiver<Chunk>, dropped: &AtomicU64) -> io::Result<()> {
        let mut header: Option<Vec<u8>> = None;
        let mut written = 0u64;
        let mut noted = 0u64;
        let mut rotations = 0u32;
        loop {
            // Written to the file as soon as nothing waits: a quiet session's
            // records are not held back, a busy one's go in large writes.
            let Chunk { mut bytes, dropped_before } = match rx.try_recv() {
                Ok(chunk) => chunk,
                Err(_) => {
                    self.file.flush()?;
                    match rx.recv() {
                        Ok(chunk) => chunk,
                        Err(_) => break,
                    }
                }
            };
            self.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
            if dropped_before > 0 {
                // The note goes where the gap is.
                let note = dropped_note(dropped_before);
                self.file.write_all(&note)?;
                written += note.len() as u64;
                noted += dropped_before;
            }
            match &header {
                None => header = Some(bytes.clone()),
                Some(header) if written + bytes.len() as u64 > self.max_bytes => {
                    self.file.flush()?;
                    let mut old = self.path.clone().into_os_string();
                    old.push(if rotations == 0 { ".0" } else { ".1" });
                    rotations += 1;
                    std::fs::rename(&self.path, &old)?;
                    self.file = BufWriter::with_capacity(64 << 10, File::create(&self.path)?);
                    let note = dropped_note(0);
                    self.file.write_all(header)?;
                    self.file.write_all(&note)?;
                    written = (header.len() + note.len()) as u64;
                }
                Some(_) => {}
            }
            self.file.write_all(&bytes)?;
            written += bytes.len() as u64;
            // Kept for the session to fill again, within the spares' budget.
            let capacity = bytes.capacity();
            if self.spare_bytes.load(Ordering::Relaxed) + capacity <= SPARE_BYTES {
                bytes.clear();
                if self.give_back.try_send(bytes).is_ok() {
                    self.spare_bytes.fetch_add(capacity, Ordering::Relaxed);
                }
            }
        }
        // Lines dropped after the last chunk that went.
        let late = dropped.load(Ordering::Relaxed).saturating_sub(noted);
        if late > 0 {
            self.file.write_all(&dropped_note(late))?;
        }
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wslink_core::replay::Recording;

    /// A header a recording would start with (compact), then `n` timeouts a chunk each.
    fn header() -> Vec<u8> {
        let seed = "00".repeat(32);
        format!("{{\"wslink_recording\":4,\"wslink\":\"0\",\"url\":\"ws://h/\",\"seed\":\"{seed}\",\"encoding\":\"compact\"}}\n")
            .into_bytes()
    }

    /// A chunk of one timeout at `t` (a `time` record, then the timeout).
    fn timeout_at(t: u8) -> Vec<u8> {
        vec![1, t, 7, 0]
    }

    #[test]
    fn past_its_cap_the_file_rotates_and_keeps_the_first_segment() {
        let dir = std::env::temp_dir().join(format!("wslink-recorder-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.wslink");
        let header = header();
        let cap = header.len() as u64 + 40;
        let (mut recorder, file) = FileRecorder::create(&path, cap).unwrap();
        recorder.record(&mut header.clone(), 0);
        for i in 0..40 {
            recorder.record(&mut timeout_at(i), 1);
        }
        drop(recorder);
        assert_eq!(file.finish().unwrap(), 0);
        let read = |suffix: &str| Recording::parse(std::fs::read(dir.join(format!("r.wslink{suffix}"))).unwrap());
        let (first, last, current) = (read(".0").unwrap(), read(".1").unwrap(), read("").unwrap());
        assert_eq!(first.lines[0].t, 0, "the first segment starts at the start");
        for later in [&last, &current] {
            assert_eq!(later.header, first.header, "each segment starts with the header");
            assert_eq!(
                later.lines[0].entry,
                wslink_core::record::format::Entry::Dropped { count: 0 },
                "and says lines before it are elsewhere"
            );
            assert!(later.lines[1..].iter().all(|l| l.entry == wslink_core::record::format::Entry::Timeout));
        }
        assert_eq!(
            current.lines.last().map(|l| l.t),
            Some(39),
            "the newest chunk is in the current file, its time right"
        );
        for suffix in [".0", ".1", ""] {
            let len = std::fs::metadata(dir.join(format!("r.wslink{suffix}"))).unwrap().len();
            assert!(len <= cap + 8, "about the cap: {len}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
