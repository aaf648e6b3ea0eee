//! The compact encoding (format 4): a flood takes little more than its
//! payload, replays identically, reads back to the same lines through JSON
//! Lines and back; a divergence inside a run is found at the run; a
//! dropped chunk leaves the times after it right; broken, truncated and
//! hostile files are refused with typed errors.

use super::recording::contains;
use super::*;
use crate::record::compact::dropped_note;
use crate::record::format::{Encoding, Entry};
use crate::record::{MemoryRecorder, Recorder};
use crate::replay::{replay, replay_file, HookRegistry, RecordFault, Recording, RecordingError, Replayed};

const SEED: [u8; 32] = [3; 32];

/// An unmasked binary frame of `payload`.
fn binary(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x82];
    match payload.len() {
        n if n < 126 => frame.push(n as u8),
        n => {
            frame.push(126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

/// Message `i` of a flood: 256 bytes that differ from message to message.
fn message(i: usize) -> Vec<u8> {
    (0..256).map(|j| (i * 7 + j) as u8).collect()
}

/// A session that reads `count` messages of 256 B, `per_read` to a read,
/// polled one by one; the bytes the flood added to the recording.
fn flood(count: usize, per_read: usize) -> (Fake, MemoryRecorder, usize) {
    let tape = MemoryRecorder::new(64 << 20);
    let mut f = Fake::new(builder().recorder(tape.clone(), SEED));
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    f.events();
    let before = tape.bytes().len();
    let frames: Vec<Vec<u8>> = (0..count).map(|i| binary(&message(i))).collect();
    for read in frames.chunks(per_read) {
        f.wait(ms(1));
        f.input(&read.concat());
        let got = f.events();
        assert_eq!(got.len(), read.len(), "every message came out");
    }
    let added = tape.bytes().len() - before;
    (f, tape, added)
}

#[test]
fn a_flood_of_256_byte_messages_takes_at_most_1_2x_its_payload() {
    // One read per message is the worst case: a read record and a run record each.
    for per_read in [1, 16, 250] {
        let (f, tape, added) = flood(2_000, per_read);
        let payload = 2_000 * 256;
        assert!(
            added * 10 <= payload * 12,
            "{per_read} to a read: {added} bytes for {payload} of payload ({:.3}x)",
            added as f64 / payload as f64
        );
        let recording = Recording::parse(tape.bytes()).expect("a valid recording");
        match replay(&recording, builder(), f.t0).unwrap() {
            Replayed::Identical { outputs, .. } => assert!(outputs >= 2_000, "{outputs}"),
            other => panic!("{per_read} to a read: {other:?}"),
        }
    }
}

#[test]
fn both_encodings_read_back_to_the_same_lines() {
    let (_, tape, _) = flood(50, 7);
    let compact = Recording::parse(tape.bytes()).unwrap();
    let lines = Recording::parse(compact.to_lines()).expect("its JSON Lines parse");
    assert_eq!(lines.header.encoding, Encoding::Lines);
    assert_eq!(lines.lines, compact.lines);
    let again = Recording::parse(lines.to_compact()).expect("and compact again");
    assert_eq!(again, compact, "the same recording, header and all");
    assert!(compact.to_compact().len() <= tape.bytes().len(), "one chunk, where the session wrote many");
    // Reads are kept raw: the payloads are in the bytes as they came.
    assert!(contains(&tape.bytes(), &message(49)));
    // A run per read, seven messages each (the last has one).
    let runs: Vec<u64> = compact
        .lines
        .iter()
        .filter_map(|l| match l.entry {
            Entry::Messages { n, .. } => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(runs, [vec![7; 7], vec![1]].concat());
}

#[test]
fn a_difference_inside_a_run_is_found_at_the_run() {
    let (f, tape, _) = flood(40, 8);
    let mut recording = Recording::parse(tape.bytes()).unwrap();
    // One byte of message 20's payload, in the third read.
    let reads: Vec<usize> = recording
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| matches!(&l.entry, Entry::Read { data } if data.len() == 8 * 260))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(reads.len(), 5, "{reads:?}");
    if let Entry::Read { data } = &mut recording.lines[reads[2]].entry {
        data[4 * 260 + 4 + 100] ^= 1;
    }
    match replay(&recording, builder(), f.t0).unwrap() {
        Replayed::Diverged(d) => {
            assert_eq!(d.line, reads[2] + 3, "the run after the read: {d:?}");
            assert!(d.recorded.starts_with("8 messages, digest") && d.replayed.starts_with("8 messages"), "{d:?}");
        }
        other => panic!("{other:?}"),
    }
    // A run that claims more messages than the reads make.
    let mut recording = Recording::parse(tape.bytes()).unwrap();
    let run = recording.lines.iter().position(|l| matches!(l.entry, Entry::Messages { .. })).unwrap();
    if let Entry::Messages { n, .. } = &mut recording.lines[run].entry {
        *n = u64::MAX;
    }
    match replay(&recording, builder(), f.t0).unwrap() {
        Replayed::Diverged(d) => {
            assert!(d.recorded.contains("message 9 of a run of") && d.replayed == "nothing", "{d:?}")
        }
        other => panic!("{other:?}"),
    }
}

/// Keeps every chunk in `all`, and in `some` all but the third, noting it as a recorder does.
struct Lossy {
    all: MemoryRecorder,
    some: MemoryRecorder,
    chunks: usize,
}

impl Recorder for Lossy {
    fn record(&mut self, chunk: &mut Vec<u8>, lines: u64) {
        self.all.record(&mut chunk.clone(), lines);
        self.chunks += 1;
        match self.chunks {
            4 => {}
            5 => self.some.record(&mut [dropped_note(99), chunk.clone()].concat(), lines + 1),
            _ => self.some.record(chunk, lines),
        }
    }
}

#[test]
fn a_dropped_chunk_leaves_the_times_after_it_right() {
    let (all, some) = (MemoryRecorder::new(1 << 20), MemoryRecorder::new(1 << 20));
    let lossy = Lossy { all: all.clone(), some: some.clone(), chunks: 0 };
    let mut f = Fake::new(builder().recorder(lossy, SEED));
    f.s.connect(f.now).unwrap();
    f.step();
    f.establish();
    f.events();
    for i in 0..6u64 {
        f.wait(ms(10 + i));
        f.server_text(&format!("tick {i}"));
        f.events();
    }
    let (all, some) = (Recording::parse(all.bytes()).unwrap(), Recording::parse(some.bytes()).unwrap());
    let note = some.lines.iter().position(|l| l.entry == Entry::Dropped { count: 99 }).expect("the note");
    let after = &some.lines[note + 1..];
    assert!(after.len() > 4, "{after:?}");
    assert!(all.lines.ends_with(after), "the lines after the gap have their own times");
    assert!(matches!(replay(&some, builder(), f.t0).unwrap(), Replayed::Incomplete { dropped: 99, .. }));
}

/// The recording of a short session, and where its body starts.
fn a_recording() -> (Vec<u8>, usize) {
    let (_, tape, _) = flood(3, 1);
    let bytes = tape.bytes();
    let body = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    (bytes, body)
}

#[test]
fn a_file_cut_anywhere_is_refused_as_truncated_or_read_to_a_record() {
    let (bytes, body) = a_recording();
    let whole = Recording::parse(&bytes).unwrap();
    for end in body..bytes.len() {
        match Recording::parse(&bytes[..end]) {
            Ok(r) => assert!(whole.lines.starts_with(&r.lines), "cut at {end}: a prefix"),
            Err(RecordingError::Truncated { line }) => assert!(line >= 2, "cut at {end}"),
            Err(e) => panic!("cut at {end}: {e}"),
        }
    }
    // Cut inside the last read: its line is named.
    let last_read = whole.lines.iter().rposition(|l| matches!(l.entry, Entry::Read { .. })).unwrap();
    let end = bytes.len() - 12 - 260;
    assert_eq!(Recording::parse(&bytes[..end]), Err(RecordingError::Truncated { line: last_read + 2 }));
}

#[test]
fn broken_and_hostile_records_get_typed_errors() {
    let (bytes, body) = a_recording();
    let header = &bytes[..body];
    let parse = |records: &[u8]| Recording::parse([header, records].concat());
    let bad =
        |offset: usize, fault: RecordFault| Err(RecordingError::BadRecord { line: 2, offset: body + offset, fault });
    assert_eq!(parse(&[0xee]), bad(0, RecordFault::UnknownKind(0xee)));
    assert_eq!(parse(&[0x00]), bad(0, RecordFault::UnknownKind(0)));
    // Eleven bytes of varint, and a tenth byte past bit 63.
    assert_eq!(parse(&[[1].as_slice(), &[0xff; 10], &[1]].concat()), bad(0, RecordFault::BadNumber));
    assert_eq!(parse(&[[1].as_slice(), &[0xff; 9], &[2]].concat()), bad(0, RecordFault::BadNumber));
    // A read whose length says 2^63 bytes: refused before anything is taken.
    let mut huge = vec![2, 0];
    huge.extend([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    huge.extend([0u8; 16]);
    assert_eq!(parse(&huge), Err(RecordingError::Truncated { line: 2 }));
    // JSON that is not a line, a line that is not valid, a digest too short.
    let json = |text: &str| [[9, 0, text.len() as u8].as_slice(), text.as_bytes()].concat();
    assert!(matches!(parse(&json("{")), Err(RecordingError::BadRecord { fault: RecordFault::BadEntry(_), .. })));
    assert!(matches!(parse(&json(r#"{"k":"no_such"}"#)), Err(RecordingError::BadRecord { line: 2, .. })));
    let bad_b64 = json(r#"{"k":"read","b64":"@@@"}"#);
    assert!(
        matches!(parse(&bad_b64), Err(RecordingError::BadRecord { fault: RecordFault::BadEntry(e), .. }) if e.contains("base64"))
    );
    let short = json(r#"{"k":"messages","n":1,"h":"abc"}"#);
    assert!(matches!(parse(&short), Err(RecordingError::BadRecord { fault: RecordFault::BadEntry(_), .. })));
    // A good record, then a bad one: the line is counted.
    let then_bad = [[7, 0].as_slice(), &[0xee]].concat();
    assert_eq!(
        parse(&then_bad),
        Err(RecordingError::BadRecord { line: 3, offset: body + 2, fault: RecordFault::UnknownKind(0xee) })
    );
    // A future version is refused by its header, whatever follows.
    let text = String::from_utf8_lossy(header).replacen("\"wslink_recording\":4", "\"wslink_recording\":5", 1);
    assert_eq!(
        Recording::parse([text.as_bytes(), &[0xee]].concat()),
        Err(RecordingError::FutureVersion { line: 1, found: 5 })
    );
    // Bytes that are not UTF-8 in JSON Lines: refused by line.
    let lines = String::from_utf8_lossy(header).replacen(",\"encoding\":\"compact\"", "", 1);
    let not_text = [lines.as_bytes(), b"{\"t\":0,\"k\":\"eof\"}\n\xff\n"].concat();
    assert!(matches!(Recording::parse(not_text), Err(RecordingError::BadLine { line: 3, .. })));
}

#[test]
fn the_compact_recording_replays_from_the_file_alone() {
    let (f, tape, _) = flood(30, 4);
    match replay_file(tape.bytes(), HookRegistry::new(), f.t0) {
        Ok(Replayed::Identical { inputs, outputs }) => assert!(inputs > 8 && outputs >= 30, "{inputs} {outputs}"),
        other => panic!("{other:?}"),
    }
}

/// A recording that wslink wrote before format 4 (format 3: JSON Lines, a
/// line per message): auth, a subscription, a request, a drop, the
/// reconnect and resubscribe, a close.
const FORMAT_3: &str = include_str!("format3.jsonl");

#[test]
fn a_recording_of_format_3_still_replays_from_the_file_alone() {
    let recording = Recording::parse(FORMAT_3).expect("format 3 is still read");
    assert_eq!((recording.header.wslink_recording, recording.header.encoding), (3, Encoding::Lines));
    assert!(recording.lines.iter().any(|l| matches!(l.entry, Entry::Msg { .. })), "a line per message");
    let origin = Instant::now();
    match replay_file(FORMAT_3, HookRegistry::new(), origin) {
        Ok(Replayed::Identical { inputs, outputs }) => assert!(inputs > 15 && outputs > 30, "{inputs} {outputs}"),
        other => panic!("{other:?}"),
    }
    // Written compact, it is still format 3, and replays the same.
    let compact = recording.to_compact();
    assert!(compact.len() < FORMAT_3.len());
    assert_eq!(Recording::parse(&compact).unwrap().lines, recording.lines);
    assert!(matches!(replay_file(&compact, HookRegistry::new(), origin), Ok(Replayed::Identical { .. })));
}
