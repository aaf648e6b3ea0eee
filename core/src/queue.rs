//! The event and action queues' memory policy.
//!
//! Queues keep their buffers while they work (a flood reuses one large
//! buffer read after read). Small ones are given back when drained, unless
//! the link is busy (data moved since the last timer): a request/response
//! link then allocates nothing per message, and its first timer after it
//! falls idle gives them back, so that an idle connection holds no queue
//! memory at all.

use std::collections::VecDeque;

/// Most slots a drained queue keeps; a smaller buffer is freed.
const KEEP_SLOTS: usize = 8;

/// The largest written buffer kept for the next frames while a link is busy.
pub(crate) const RECYCLE_LIMIT: usize = 4096;

/// Frees a drained queue's buffer when it has at most `KEEP_SLOTS` slots.
pub(crate) fn release_if_small<T>(queue: &mut VecDeque<T>) {
    if queue.is_empty() && queue.capacity() > 0 && queue.capacity() <= KEEP_SLOTS {
        *queue = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_drained_queues_are_freed_and_large_ones_kept() {
        let mut small: VecDeque<u64> = (0..3).collect();
        release_if_small(&mut small);
        assert!(small.capacity() >= 3, "not drained: kept");
        small.clear();
        release_if_small(&mut small);
        assert_eq!(small.capacity(), 0);
        let mut large: VecDeque<u64> = (0..100).collect();
        large.clear();
        release_if_small(&mut large);
        assert!(large.capacity() >= 100);
    }
}
