//! The event and action queues' memory policy.
//!
//! Queues keep their buffers while they work (a flood reuses one large
//! buffer read after read) and give small ones back when drained, so that an
//! idle connection holds no queue memory at all.

use std::collections::VecDeque;

/// Most slots a drained queue keeps; a smaller buffer is freed.
const KEEP_SLOTS: usize = 8;

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
