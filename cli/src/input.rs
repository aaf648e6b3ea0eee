//! Standard input: whether to read it, and a thread that reads it line by
//! line into a bounded channel the run loop takes from.
//!
//! Invariants: reading blocks only that thread (std has no async stdin that
//! works on both runtimes); the channel is bounded, so a large file piped in
//! waits for the client instead of filling memory; the thread ends at end of
//! input, at a read error, at the first line that is not UTF-8, or when the
//! run loop drops the receiver; otherwise the process exit ends it.

use std::io::{BufRead, IsTerminal};

use tokio::sync::mpsc;

/// What the reader thread reports.
#[derive(Debug)]
pub(crate) enum Line {
    /// A line, without its `\n` or `\r\n` (empty lines are skipped).
    Text(String),
    /// The line with this number (from 1) is not UTF-8: nothing after it is read.
    NotUtf8(u64),
    /// Reading failed: treated as the end of input.
    Failed(std::io::Error),
}

/// Whether stdin has input to send when the user did not say: a pipe, a
/// socket or a file does; a terminal (the user is watching) and a character
/// device such as `/dev/null` (cron, systemd, `nohup`) do not, so that a
/// listener started detached does not close as soon as it starts.
pub(crate) fn stdin_has_input() -> bool {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        use std::os::unix::fs::FileTypeExt;
        // A closed stdin cannot be duplicated: nothing to read.
        let Ok(fd) = stdin.as_fd().try_clone_to_owned() else { return false };
        let Ok(meta) = std::fs::File::from(fd).metadata() else { return false };
        let kind = meta.file_type();
        kind.is_fifo() || kind.is_socket() || kind.is_file()
    }
    #[cfg(not(unix))]
    true
}

/// Starts the reader thread; the receiver yields lines until it ends (`None`).
pub(crate) fn spawn_reader() -> std::io::Result<mpsc::Receiver<Line>> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::Builder::new().name("wslink-stdin".into()).spawn(move || read_lines(std::io::stdin().lock(), &tx))?;
    Ok(rx)
}

fn read_lines(mut input: impl BufRead, tx: &mpsc::Sender<Line>) {
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let line = match input.read_until(b'\n', &mut buf) {
            Ok(0) => return,
            Ok(_) => {
                number += 1;
                let end = buf.strip_suffix(b"\n").map_or(&buf[..], |b| b.strip_suffix(b"\r").unwrap_or(b));
                if end.is_empty() {
                    continue;
                }
                match std::str::from_utf8(end) {
                    Ok(text) => Line::Text(text.to_owned()),
                    Err(_) => Line::NotUtf8(number),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Line::Failed(e),
        };
        let last = !matches!(line, Line::Text(_));
        // The run loop has gone (the run is ending): stop reading.
        if tx.blocking_send(line).is_err() || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(64);
        read_lines(input, &tx);
        drop(tx);
        let mut out = Vec::new();
        while let Ok(line) = rx.try_recv() {
            out.push(match line {
                Line::Text(t) => t,
                Line::NotUtf8(n) => format!("<line {n} not utf-8>"),
                Line::Failed(e) => format!("<{e}>"),
            });
        }
        out
    }

    #[test]
    fn lines_lose_their_ending_and_blank_lines_are_skipped() {
        assert_eq!(read(b"one\r\ntwo\n\nthree"), ["one", "two", "three"]);
        assert_eq!(read(b""), Vec::<String>::new());
        assert_eq!(read(b"\xffbad\nnever read\n"), ["<line 1 not utf-8>"]);
        assert_eq!(read(b"a\n\n\xc3\n"), ["a", "<line 3 not utf-8>"]);
    }
}
