use proptest::prelude::*;

use super::*;

const JUMP: u64 = 1_000_000;
const STARTED: u64 = 1_000;

fn at(epoch: u32, last: u64) -> Numbering {
    Numbering { epoch, last }
}

fn tail(epoch: u32, last: u64, read_ms: Option<u64>) -> Tail {
    Tail { numbering: at(epoch, last), stream_seq: 99, read_ms }
}

#[test]
fn in_line_numbers_holes_and_repeats() {
    assert_eq!(resolve(None, None, 21, STARTED, JUMP), (0, Step::Next), "nothing known: a first message");
    assert_eq!(resolve(Some(at(0, 5)), None, 6, STARTED, JUMP), (0, Step::Next));
    assert_eq!(resolve(Some(at(0, 5)), None, 5, STARTED, JUMP), (0, Step::Again));
    assert_eq!(resolve(Some(at(2, 5)), None, 9, STARTED, JUMP), (2, Step::Hole { from: 6, to: 8 }));
    assert_eq!(resolve(Some(at(0, u64::MAX)), None, u64::MAX, STARTED, JUMP), (0, Step::Again));
}

/// The case: replica a reconnects first and stores 1452..=1553;
/// replica b, back later, finds them stored and sees no hole.
#[test]
fn a_replica_back_later_finds_the_hole_filled_by_the_other() {
    let a = resolve(Some(at(0, 1125)), Some(&tail(0, 1125, Some(5_000))), 1452, STARTED, JUMP);
    assert_eq!(a, (0, Step::Hole { from: 1126, to: 1451 }));
    let b = resolve(Some(at(0, 1125)), Some(&tail(0, 1553, Some(5_000))), 1554, STARTED, JUMP);
    assert_eq!(b, (0, Step::Next));
    // Only its own replica's number is known to be missing from b's view, not the stream's.
    let b_early = resolve(Some(at(0, 1125)), Some(&tail(0, 1500, Some(5_000))), 1554, STARTED, JUMP);
    assert_eq!(b_early, (0, Step::Hole { from: 1501, to: 1553 }));
}

#[test]
fn a_number_that_goes_back_is_a_restart_and_the_epoch_is_shared() {
    // Both replicas read up to 1186 in epoch 0, then 21 and 35 of the new numbering.
    let first = resolve(Some(at(0, 1186)), Some(&tail(0, 1186, Some(5_000))), 21, STARTED, JUMP);
    assert_eq!(first, (1, Step::Restart { previous: at(0, 1186) }));
    // The second finds the stream already in epoch 1, ahead of it: no second restart.
    let second = resolve(Some(at(0, 1186)), Some(&tail(1, 300, Some(5_000))), 35, STARTED, JUMP);
    assert_eq!(second, (1, Step::Again));
    let second_behind = resolve(Some(at(0, 1186)), Some(&tail(1, 300, Some(5_000))), 301, STARTED, JUMP);
    assert_eq!(second_behind, (1, Step::Next));
    // Mid-connection, with nothing newer stored: each replica counts the same epoch by itself.
    assert_eq!(resolve(Some(at(3, 50)), None, 0, STARTED, JUMP), (4, Step::Restart { previous: at(3, 50) }));
}

#[test]
fn a_jump_far_ahead_is_a_restart() {
    assert_eq!(resolve(Some(at(0, 10)), None, 10 + JUMP, STARTED, JUMP), (0, Step::Hole { from: 11, to: 9 + JUMP }));
    assert_eq!(resolve(Some(at(0, 10)), None, 11 + JUMP, STARTED, JUMP), (1, Step::Restart { previous: at(0, 10) }));
}

#[test]
fn a_first_message_below_the_stream_is_a_restart_only_if_nobody_stored_since_the_start() {
    // A replica ahead of us stored after we started: we are behind it.
    assert_eq!(resolve(None, Some(&tail(2, 500, Some(STARTED + 1))), 480, STARTED, JUMP), (2, Step::Again));
    // Nothing stored since we started: the exchange restarted meanwhile.
    let stale = resolve(None, Some(&tail(2, 500, Some(STARTED - 1))), 480, STARTED, JUMP);
    assert_eq!(stale, (3, Step::Restart { previous: at(2, 500) }));
    assert_eq!(resolve(None, Some(&tail(2, 500, None)), 3, STARTED, JUMP).0, 3);
    // Above the stream: a hole since the last stored (this process's downtime).
    assert_eq!(resolve(None, Some(&tail(2, 500, None)), 510, STARTED, JUMP), (2, Step::Hole { from: 501, to: 509 }));
    assert_eq!(resolve(None, Some(&tail(2, 500, None)), 500, STARTED, JUMP), (2, Step::Again));
}

#[test]
fn a_stream_behind_this_replica_does_not_pull_it_back() {
    assert_eq!(resolve(Some(at(2, 40)), Some(&tail(1, 900, None)), 41, STARTED, JUMP), (2, Step::Next));
    assert_eq!(resolve(Some(at(2, 40)), Some(&tail(2, 30, None)), 41, STARTED, JUMP), (2, Step::Next));
}

#[test]
fn ranges_merge_and_missing_is_their_complement() {
    let mut r = Ranges::default();
    for (a, b) in [(5, 7), (1, 2), (9, 9), (3, 4), (20, 30), (8, 8)] {
        assert!(r.add(a, b));
    }
    assert_eq!(r.as_slice(), [(1, 9), (20, 30)]);
    assert_eq!(missing(1, 40, &r), [(10, 19), (31, 40)]);
    assert_eq!(missing(21, 25, &r), []);
    assert_eq!(missing(0, 0, &r), [(0, 0)]);
    let mut top = Ranges::default();
    assert!(top.add(u64::MAX - 1, u64::MAX));
    assert_eq!(missing(u64::MAX - 5, u64::MAX, &top), [(u64::MAX - 5, u64::MAX - 2)]);
    assert!(Ranges::default().add(5, 4), "an empty range adds nothing");
}

#[test]
fn ranges_are_bounded() {
    let mut r = Ranges::default();
    for i in 0..MAX_RANGES as u64 {
        assert!(r.add(i * 3, i * 3));
    }
    assert!(!r.add(u64::MAX, u64::MAX), "one more apart is refused");
    assert!(r.add(1, 2), "one that joins two is taken");
    assert_eq!(r.as_slice().len(), MAX_RANGES - 1);
}

proptest! {
    /// `missing` and `Ranges` against a set of numbers.
    #[test]
    fn missing_is_exactly_what_is_not_covered(
        adds in prop::collection::vec((0u64..200, 0u64..20), 0..30),
        from in 0u64..220,
        len in 0u64..60,
    ) {
        let mut r = Ranges::default();
        let mut set = std::collections::BTreeSet::new();
        for (a, l) in adds {
            prop_assert!(r.add(a, a + l));
            set.extend(a..=a + l);
        }
        for w in r.as_slice().windows(2) {
            prop_assert!(w[0].1 + 1 < w[1].0, "sorted, apart: {:?}", r);
        }
        let to = from + len;
        let got: Vec<u64> = missing(from, to, &r).iter().flat_map(|&(a, b)| a..=b).collect();
        let want: Vec<u64> = (from..=to).filter(|n| !set.contains(n)).collect();
        prop_assert_eq!(got, want);
    }
}
