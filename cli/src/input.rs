//! Standard input: whether to read it, and a thread that reads it line by
//! line into a bounded channel the run loop takes from.
//!
//! Invariants: reading blocks only that thread (std has no async stdin that
//! works on both runtimes); the channel is bounded, so a large file piped in
//! waits for the client instead of filling memory; a line is held only up to
//! the message size limit (and its line ending): a longer one is reported
//! once that much has been read, and the rest is never read; the thread ends
//! at end of input, at a read error, at the first line that is not UTF-8 or
//! too long, or when the run loop drops the receiver; otherwise the process
//! exit ends it.

use std::io::{BufRead, IsTerminal};

use tokio::sync::mpsc;

/// What the reader thread reports.
#[derive(Debug)]
pub(crate) enum Line {
    /// A line, without its `\n` or `\r\n` (empty lines are skipped).
    Text(String),
    /// The line with this number (from 1) is not UTF-8: nothing after it is read.
    NotUtf8(u64),
    /// The line with this number is longer than the limit: the rest of it,
    /// and what follows, is not read.
    TooLong(u64),
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

/// Starts the reader thread, for lines of at most `limit` bytes; the
/// receiver yields lines until it ends (`None`).
pub(crate) fn spawn_reader(limit: usize) -> std::io::Result<mpsc::Receiver<Line>> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::Builder::new()
        .name("wslink-stdin".into())
        .spawn(move || read_lines(std::io::stdin().lock(), limit, &tx))?;
    Ok(rx)
}

/// How far [`read_line`] got.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// The end of input, with nothing read.
    End,
    /// A line, with its `\n` if it had one.
    Line,
    /// The line would exceed the cap: reading stopped there.
    TooLong,
}

/// Reads the next line, with its `\n`, into `buf`, holding at most `cap`
/// bytes: a longer line stops the reading as soon as that shows.
fn read_line(input: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> std::io::Result<Read> {
    // Bounded: each turn consumes what `fill_buf` gave, or ends.
    loop {
        let available = match input.fill_buf() {
            Ok(available) => available,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if buf.is_empty() { Read::End } else { Read::Line });
        }
        let (take, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        if buf.len() + take > cap {
            return Ok(Read::TooLong);
        }
        buf.extend_from_slice(&available[..take]);
        input.consume(take);
        if complete {
            return Ok(Read::Line);
        }
    }
}

fn read_lines(mut input: impl BufRead, limit: usize, tx: &mpsc::Sender<Line>) {
    let mut buf = Vec::new();
    let mut number = 0u64;
    // Room for the line ending too.
    let cap = limit.saturating_add(2);
    loop {
        buf.clear();
        let line = match read_line(&mut input, &mut buf, cap) {
            Ok(Read::End) => return,
            Ok(Read::TooLong) => Line::TooLong(number + 1),
            Ok(Read::Line) => {
                number += 1;
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                    if buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                }
                if buf.is_empty() {
                    continue;
                }
                if buf.len() > limit {
                    Line::TooLong(number)
                } else {
                    // The line's buffer becomes the message's text: no copy.
                    match String::from_utf8(std::mem::take(&mut buf)) {
                        Ok(text) => Line::Text(text),
                        Err(_) => Line::NotUtf8(number),
                    }
                }
            }
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
        read_with_limit(input, 1 << 20)
    }

    fn read_with_limit(input: &[u8], limit: usize) -> Vec<String> {
        let (tx, mut rx) = mpsc::channel(64);
        read_lines(input, limit, &tx);
        drop(tx);
        let mut out = Vec::new();
        while let Ok(line) = rx.try_recv() {
            out.push(match line {
                Line::Text(t) => t,
                Line::NotUtf8(n) => format!("<line {n} not utf-8>"),
                Line::TooLong(n) => format!("<line {n} too long>"),
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

    #[test]
    fn a_line_longer_than_the_limit_ends_the_input() {
        assert_eq!(read_with_limit(b"1234\r\n12345\nnever\n", 4), ["1234", "<line 2 too long>"]);
        assert_eq!(read_with_limit(b"1234", 4), ["1234"]);
        assert_eq!(read_with_limit(b"12345", 4), ["<line 1 too long>"]);
        assert_eq!(read_with_limit(b"\n\n123456789\n", 4), ["<line 3 too long>"]);
        // The line ending does not count against the limit.
        assert_eq!(read_with_limit(b"1234\r\n", 4), ["1234"]);
    }

    /// A reader of an endless line that counts the bytes it hands out.
    struct Endless {
        given: usize,
    }

    impl std::io::Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(b'x');
            self.given += buf.len();
            Ok(buf.len())
        }
    }

    #[test]
    fn an_endless_line_is_read_only_up_to_the_limit() {
        let mut input = std::io::BufReader::with_capacity(8 << 10, Endless { given: 0 });
        let (tx, mut rx) = mpsc::channel(4);
        read_lines(&mut input, 1 << 20, &tx);
        assert!(matches!(rx.try_recv(), Ok(Line::TooLong(1))));
        let given = input.get_ref().given;
        assert!((1 << 20) < given && given <= (1 << 20) + (8 << 10) + 2, "{given} bytes read for a 1 MiB limit");
    }
}
