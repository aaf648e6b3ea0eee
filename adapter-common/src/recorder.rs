//! A recorder that writes to a file from a thread of its own, so that the
//! driver never waits on the disk: lines go through a bounded queue, and a
//! full queue drops them, counts them and says so in the file. The file is
//! capped: past `max_bytes` it is moved to `<path>.1` (replacing the older
//! one) and a new file starts with the header again and a note that lines
//! before it are elsewhere, so a replay of it stops there.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use wslink_core::record::Recorder;

/// Lines that may wait for the writer thread before new ones are dropped.
const QUEUE_LINES: usize = 64 * 1024;

/// Writes a recording to a file (see the module docs); hand it to
/// `Builder::record`, and keep the [`RecordingFile`] to wait for the last line.
#[derive(Debug)]
pub struct FileRecorder {
    lines: SyncSender<String>,
    dropped: Arc<AtomicU64>,
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
        let counter = dropped.clone();
        let thread = std::thread::Builder::new()
            .name("wslink-recorder".into())
            .spawn(move || write_lines(rx, file, path, max_bytes, counter))?;
        Ok((Self { lines, dropped: dropped.clone() }, RecordingFile { thread, dropped }))
    }
}

impl Recorder for FileRecorder {
    fn record(&mut self, line: String) {
        match self.lines.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
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
) -> io::Result<()> {
    let mut header: Option<String> = None;
    let mut written = 0u64;
    let mut noted = 0u64;
    while let Ok(line) = rx.recv() {
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
            old.push(".1");
            std::fs::rename(&path, &old)?;
            file = BufWriter::new(File::create(&path)?);
            let header = header.as_deref().unwrap_or_default();
            writeln!(file, "{header}")?;
            writeln!(file, r#"{{"t":0,"k":"dropped","count":0}}"#)?;
            written = header.len() as u64 + 1;
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
