//! A channel's exchange numbering, as one replica sees it and as the stream
//! holds it: what a number that does not follow the last one means, and
//! which numbers of a hole are really missing. Pure: no I/O, no clock.
//!
//! **Epochs.** An exchange may restart a channel's numbering (a new session,
//! a failover): the numbers go back (1186 → 21), or jump far ahead. Each
//! numbering is an epoch (0, 1, 2 …); message ids carry the epoch past 0
//! (see `msgid`), so the new numbering's messages are never taken for
//! duplicates of the old one's. Replicas must agree on the epoch without
//! talking, so a replica decides from the stream (the last message stored
//! on the channel's subject, its [`Tail`]) as well as from what it read
//! itself:
//!
//! - the stream in a newer epoch than this replica (another replica saw a
//!   restart first): take the stream's epoch and numbers;
//! - a number below what this replica read in the same epoch: a restart,
//!   epoch + 1 (both replicas see the same fall and count the same epoch);
//! - on a process's first message of a channel, a number below the last
//!   one stored is a restart only if nothing was stored on the channel since
//!   this process started (no replica is running ahead of it); otherwise it
//!   is a message another replica already stored;
//! - a number more than `max_jump` ahead: a restart too, the new numbering
//!   starting high.
//!
//! **Holes.** A number past the next one leaves a hole: the numbers between
//! the last one this replica or the stream knows and this one. Another
//! replica may hold them, now or a moment later, so the hole is only a
//! candidate: after a settling time, the stream is read from before the
//! hole (`ledger`), and only the numbers neither stored nor already marked
//! are [`missing`]. Every replica that checks the same hole after the
//! others have published finds the same ranges, and the markers' ids are
//! made of the range, so JetStream keeps one.

/// A numbering: its epoch and the highest number read or stored in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbering {
    /// The epoch.
    pub epoch: u32,
    /// The number.
    pub last: u64,
}

/// The last message stored on a channel's subject, as a replica finds it
/// before it decides what a number out of line means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// Its epoch and exchange number (for a marker, the number it stands after).
    pub numbering: Numbering,
    /// Its place in the stream.
    pub stream_seq: u64,
    /// When a bridge read it (`Wslink-Received`, Unix ms), if it says.
    pub read_ms: Option<u64>,
}

/// What a number out of line means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// It follows the last number known (or nothing is known).
    Next,
    /// It is at or below a number already read or stored: a duplicate.
    Again,
    /// The numbers `from..=to` (inclusive) are missing from what is known.
    Hole {
        /// The first missing number.
        from: u64,
        /// The last missing number.
        to: u64,
    },
    /// The exchange started a new numbering.
    Restart {
        /// The numbering before it.
        previous: Numbering,
    },
}

/// What a number `n` out of line means, given this replica's own numbering
/// (`None` on its first message of the channel), the stream's [`Tail`]
/// (`None`: nothing stored on the subject), when this process started (Unix
/// ms), and the largest jump ahead taken for a hole. Returns the epoch `n`
/// belongs to and the step.
pub fn resolve(own: Option<Numbering>, tail: Option<&Tail>, n: u64, started_ms: u64, max_jump: u64) -> (u32, Step) {
    // The base: what is known, and whether this replica read `last` itself.
    let (base, mine) = match (own, tail) {
        (None, None) => return (0, Step::Next),
        (Some(o), None) => (o, Some(o.last)),
        (None, Some(t)) => (t.numbering, None),
        (Some(o), Some(t)) if t.numbering.epoch > o.epoch => (t.numbering, None),
        (Some(o), Some(t)) if t.numbering.epoch == o.epoch => {
            (Numbering { epoch: o.epoch, last: o.last.max(t.numbering.last) }, Some(o.last))
        }
        (Some(o), Some(_)) => (o, Some(o.last)),
    };
    let restart = (base.epoch.saturating_add(1), Step::Restart { previous: base });
    if n == base.last {
        return (base.epoch, Step::Again);
    }
    if base.last.checked_add(1) == Some(n) {
        return (base.epoch, Step::Next);
    }
    if n > base.last {
        return if n - base.last > max_jump {
            restart
        } else {
            (base.epoch, Step::Hole { from: base.last + 1, to: n - 1 })
        };
    }
    match mine {
        // This replica read higher numbers of this numbering: it went back.
        Some(mine) if n < mine => restart,
        // Below what another replica stored, above what this one read: it is ahead.
        Some(_) => (base.epoch, Step::Again),
        // Known from the stream only: ahead of us if it stored since we started.
        None if tail.and_then(|t| t.read_ms).is_some_and(|ms| ms >= started_ms) => (base.epoch, Step::Again),
        None => restart,
    }
}

/// Inclusive ranges of numbers, kept sorted and merged; at most
/// [`MAX_RANGES`] of them (more makes [`Ranges::add`] answer `false`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ranges(Vec<(u64, u64)>);

/// The most ranges a [`Ranges`] holds.
pub const MAX_RANGES: usize = 4096;

impl Ranges {
    /// Adds `from..=to`; `false` when that would take more than [`MAX_RANGES`].
    pub fn add(&mut self, from: u64, to: u64) -> bool {
        if from > to {
            return true;
        }
        // The first range that ends at or after from - 1 (touching counts).
        let at = self.0.partition_point(|&(_, end)| end.saturating_add(1) < from);
        let mut end_at = at;
        let (mut lo, mut hi) = (from, to);
        while end_at < self.0.len() && self.0[end_at].0 <= hi.saturating_add(1) {
            lo = lo.min(self.0[end_at].0);
            hi = hi.max(self.0[end_at].1);
            end_at += 1;
        }
        if at == end_at && self.0.len() >= MAX_RANGES {
            return false;
        }
        self.0.splice(at..end_at, [(lo, hi)]);
        true
    }

    /// The ranges, in order.
    pub fn as_slice(&self) -> &[(u64, u64)] {
        &self.0
    }
}

/// The parts of `from..=to` that `covered` does not cover, in order.
pub fn missing(from: u64, to: u64, covered: &Ranges) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut next = from;
    for &(lo, hi) in covered.as_slice() {
        if hi < next || next > to {
            continue;
        }
        if lo > to {
            break;
        }
        if lo > next {
            out.push((next, lo - 1));
        }
        match hi.checked_add(1) {
            Some(after) => next = after,
            None => return out,
        }
    }
    if next <= to {
        out.push((next, to));
    }
    out
}

#[cfg(test)]
mod tests;
