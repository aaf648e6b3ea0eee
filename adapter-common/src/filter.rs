//! Which session events a client hands to its event stream.
//!
//! The stream must be read: an unread one pauses reading, and through TCP
//! the server. A client whose owner only sends and makes requests has no
//! reader, so it discards events instead ([`EventFilter::Discard`]), or keeps
//! only those it reads ([`EventFilter::Only`]). Requests' outcomes never go
//! through the stream, so `request().await` works whatever is kept.

use std::sync::Arc;

use wslink_core::SessionEvent;

/// Which session events go to a client's stream (`Builder::event_filter`),
/// or to a pool's (`PoolBuilder::member_events`).
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum EventFilter {
    /// Every event goes to the stream, which must be read: an unread stream
    /// pauses reading (the default: nothing is dropped unless asked).
    #[default]
    All,
    /// Events are dropped as they arrive: for a client (or a pool) used only
    /// for requests and sends, which must never stall on an unread stream.
    /// The stream yields nothing and ends when the client does.
    Discard,
    /// Only events this accepts go to the stream; the rest are dropped. The
    /// stream of what is kept must still be read.
    Only(Arc<dyn Fn(&SessionEvent) -> bool + Send + Sync>),
}

impl EventFilter {
    /// Keeps only the events `keep` accepts (see [`EventFilter::Only`]).
    pub fn only(keep: impl Fn(&SessionEvent) -> bool + Send + Sync + 'static) -> Self {
        Self::Only(Arc::new(keep))
    }

    /// Whether an event goes to the stream.
    pub(crate) fn keeps(&self, event: &SessionEvent) -> bool {
        match self {
            Self::All => true,
            Self::Discard => false,
            Self::Only(keep) => keep(event),
        }
    }
}

impl std::fmt::Debug for EventFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::All => "All",
            Self::Discard => "Discard",
            Self::Only(_) => "Only(..)",
        })
    }
}
