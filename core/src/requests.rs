//! Requests in flight: their handles, their ids on the wire, deadlines, and
//! the wire ids that recently ended.
//!
//! Each request has a handle (a `u64` the session gives every request, in
//! its events) and a wire id (what the codec writes and reads back): the
//! handle itself as a number for the session's own requests, the caller's
//! id (a number or a text) for a request that brought one.
//!
//! Invariants: a handle is in `pending` from allocation until it ends, and
//! it ends exactly once, through `complete`, `expire` or `fail_sent`/`take_all`;
//! no two pending requests share a wire id (a session id skips a number a
//! caller's request holds, and a caller's id already pending is refused).
//! Wire ids that ended without a response are remembered for a while
//! (bounded in count and time), so a late response is reported as unmatched
//! rather than passed off as an ordinary message.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::request_id::RequestId;

/// Who asked for a request: the user, or the session for itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Purpose {
    User,
    Auth,
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
    Heartbeat,
    Setup,
}

#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) purpose: Purpose,
    pub(crate) deadline: Option<Instant>,
    pub(crate) sent_at: Option<Instant>,
    /// The caller's wire id; `None`: the handle is the wire id.
    pub(crate) wire: Option<RequestId>,
}

impl Pending {
    /// The id on the wire of the pending request with handle `id`.
    pub(crate) fn wire_id(&self, id: u64) -> RequestId {
        self.wire.clone().unwrap_or(RequestId::Number(id))
    }
}

/// Most ended ids remembered for late responses.
const RECENT_LIMIT: usize = 256;

#[derive(Debug)]
pub(crate) struct Requests {
    next_id: u64,
    pending: HashMap<u64, Pending>,
    /// The handle of each pending request that has a caller's wire id.
    by_wire: HashMap<RequestId, u64>,
    deadlines: BTreeSet<(Instant, u64)>,
    /// Ended wire ids and until when a late answer is expected (`None`: for as long as they are kept).
    recent: VecDeque<(RequestId, Option<Instant>)>,
    late_window: Duration,
}

impl Requests {
    pub(crate) fn new(late_window: Duration) -> Self {
        Self {
            next_id: 1,
            pending: HashMap::new(),
            by_wire: HashMap::new(),
            deadlines: BTreeSet::new(),
            recent: VecDeque::new(),
            late_window,
        }
    }

    /// A new request of the session's numbering: its handle is its wire id.
    pub(crate) fn allocate(&mut self, purpose: Purpose, deadline: Option<Instant>) -> u64 {
        let id = self.next_handle();
        self.insert(id, None, purpose, deadline);
        id
    }

    /// A new request with the caller's wire id; `Err` gives it back when a
    /// pending request already has it.
    pub(crate) fn allocate_with(
        &mut self,
        wire: RequestId,
        purpose: Purpose,
        deadline: Option<Instant>,
    ) -> Result<u64, RequestId> {
        if self.handle_of(&wire).is_some() {
            return Err(wire);
        }
        let id = self.next_handle();
        self.by_wire.insert(wire.clone(), id);
        self.insert(id, Some(wire), purpose, deadline);
        Ok(id)
    }

    /// The next handle, skipping a number a caller's request holds on the
    /// wire (the session's own requests put their handle there).
    fn next_handle(&mut self) -> u64 {
        let mut id = self.next_id;
        while !self.by_wire.is_empty() && self.by_wire.contains_key(&RequestId::Number(id)) {
            id += 1;
        }
        self.next_id = id + 1;
        id
    }

    fn insert(&mut self, id: u64, wire: Option<RequestId>, purpose: Purpose, deadline: Option<Instant>) {
        if let Some(d) = deadline {
            self.deadlines.insert((d, id));
        }
        self.pending.insert(id, Pending { purpose, deadline, sent_at: None, wire });
    }

    /// The wire id of a pending request.
    pub(crate) fn wire(&self, id: u64) -> Option<RequestId> {
        self.pending.get(&id).map(|p| p.wire_id(id))
    }

    /// The handle of the pending request with this wire id.
    pub(crate) fn handle_of(&self, wire: &RequestId) -> Option<u64> {
        if !self.by_wire.is_empty() {
            if let Some(&id) = self.by_wire.get(wire) {
                return Some(id);
            }
        }
        match wire {
            RequestId::Number(n) => self.pending.get(n).filter(|p| p.wire.is_none()).map(|_| *n),
            RequestId::Text(_) => None,
        }
    }

    /// Whether a response carrying `wire`, matching nothing pending, is a
    /// late answer: any number (the session's ids are numbers, and numbers
    /// are ids), a text only when a request that had it recently ended
    /// (servers may use text ids of their own for other things).
    pub(crate) fn is_late(&self, wire: &RequestId) -> bool {
        matches!(wire, RequestId::Number(_)) || self.recent.iter().any(|(r, _)| r == wire)
    }

    pub(crate) fn mark_sent(&mut self, id: u64, now: Instant) {
        if let Some(p) = self.pending.get_mut(&id) {
            p.sent_at = Some(now);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn user_pending(&self) -> usize {
        self.pending.values().filter(|p| p.purpose == Purpose::User).count()
    }

    /// Whether incoming messages need the codec's id lookup at all.
    pub(crate) fn matching_needed(&self) -> bool {
        !self.pending.is_empty() || !self.recent.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn is_recent(&self, id: u64) -> bool {
        self.recent.iter().any(|(r, _)| *r == RequestId::Number(id))
    }

    pub(crate) fn is_pending(&self, id: u64) -> bool {
        self.pending.contains_key(&id)
    }

    /// Ends a request with its response.
    pub(crate) fn complete(&mut self, id: u64) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        if let Some(d) = p.deadline {
            self.deadlines.remove(&(d, id));
        }
        if let Some(wire) = &p.wire {
            self.by_wire.remove(wire);
        }
        Some(p)
    }

    /// Ends a request without a response, remembering its id for late answers.
    pub(crate) fn abandon(&mut self, id: u64, now: Instant) -> Option<Pending> {
        let p = self.complete(id)?;
        if p.sent_at.is_some() {
            if self.recent.len() == RECENT_LIMIT {
                self.recent.pop_front();
            }
            self.recent.push_back((p.wire_id(id), crate::deadline::after(now, self.late_window)));
        }
        Some(p)
    }

    /// Ends every request whose deadline has passed.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(u64, Pending)> {
        let mut ended = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            if let Some(p) = self.abandon(id, now) {
                ended.push((id, p));
            }
        }
        while self.recent.front().is_some_and(|(_, until)| until.is_some_and(|u| u <= now)) {
            self.recent.pop_front();
        }
        ended
    }

    /// Ends every request that was sent on the connection that just died.
    pub(crate) fn fail_sent(&mut self, now: Instant) -> Vec<(u64, Pending)> {
        let mut ids: Vec<u64> = self.pending.iter().filter(|(_, p)| p.sent_at.is_some()).map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.into_iter().filter_map(|id| self.abandon(id, now).map(|p| (id, p))).collect()
    }

    /// Ends every request, sent or not (the session is closing).
    pub(crate) fn take_all(&mut self, now: Instant) -> Vec<(u64, Pending)> {
        let mut ids: Vec<u64> = self.pending.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter().filter_map(|id| self.abandon(id, now).map(|p| (id, p))).collect()
    }

    /// Forgets ended ids (the session is closed: no late response can arrive).
    pub(crate) fn forget_recent(&mut self) {
        self.recent.clear();
    }

    /// The earliest request deadline, or when a remembered id is forgotten.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let request = self.deadlines.first().map(|(d, _)| *d);
        let forget = self.recent.front().and_then(|(_, until)| *until);
        match (request, forget) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_ends_once_and_late_ids_are_remembered_for_a_while() {
        #[allow(clippy::disallowed_methods)] // the fake clock's origin
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut r = Requests::new(10 * s);
        let a = r.allocate(Purpose::User, Some(t0 + 5 * s));
        let b = r.allocate(Purpose::User, Some(t0 + 3 * s));
        let c = r.allocate(Purpose::Auth, None);
        assert_eq!((a, b, c), (1, 2, 3));
        r.mark_sent(a, t0);
        r.mark_sent(b, t0);
        assert_eq!(r.next_deadline(), Some(t0 + 3 * s));
        assert!(r.expire(t0 + 2 * s).is_empty());
        let ended: Vec<u64> = r.expire(t0 + 3 * s).into_iter().map(|(id, _)| id).collect();
        assert_eq!(ended, vec![b]);
        assert!(r.is_recent(b) && !r.is_pending(b));
        assert!(r.complete(b).is_none(), "ended once");
        assert_eq!(r.fail_sent(t0 + 4 * s).into_iter().map(|(id, _)| id).collect::<Vec<_>>(), vec![a]);
        assert_eq!(r.len(), 1, "the unsent request stays");
        assert_eq!(r.user_pending(), 0);
        assert_eq!(r.next_deadline(), Some(t0 + 13 * s), "forgetting b is the next timer");
        r.expire(t0 + 14 * s);
        assert!(!r.is_recent(a) && !r.is_recent(b));
        assert_eq!(r.take_all(t0 + 14 * s).len(), 1);
        assert!(!r.matching_needed());
    }
}
