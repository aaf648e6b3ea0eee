//! A small pool of payload buffers for large messages.
//!
//! A payload larger than a read is read straight into a buffer of its own
//! (`connection/large_read.rs`). Allocating and freeing those one by one, as
//! messages are read here and dropped by the consumer on another task, let
//! glibc hand the memory back to the kernel and fault it in again: a dozen
//! page faults per 64 KiB message.
//! Buffers come back here when their last `Bytes` is dropped, up to a bound,
//! so memory stays bounded and the churn stops.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};

/// Most bytes of buffers kept for reuse, per connection.
const KEEP_BYTES: usize = 1 << 20;

/// The buffers free for reuse, shared by a connection and the payloads it handed out.
type FreeList = Arc<Mutex<Vec<BytesMut>>>;

/// A connection's pool.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    /// Made on first use: most connections never read a frame larger than a
    /// read, and an idle one should not carry the list.
    free: Option<FreeList>,
}

/// A payload buffer that returns to its pool when dropped.
struct Pooled {
    /// The whole buffer: its bytes past the payload's are kept, so that a
    /// buffer read into as initialised memory comes back with them counted.
    buf: BytesMut,
    /// The payload's length.
    len: usize,
    pool: FreeList,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // A poisoned lock only means another holder panicked; the list is still a list.
        let mut free = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let kept: usize = free.iter().map(BytesMut::capacity).sum();
        if kept + self.buf.capacity() <= KEEP_BYTES {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

impl BufferPool {
    /// An empty buffer with room for `capacity` bytes, reused when one is free.
    pub(crate) fn take(&mut self, capacity: usize) -> BytesMut {
        let mut buf = self.take_initialised(capacity);
        buf.clear();
        buf
    }

    /// A buffer with room for `capacity` bytes, reused when one is free:
    /// its bytes are what its last use left (all of it initialised, when it
    /// was read into as such), to be overwritten, not read.
    pub(crate) fn take_initialised(&mut self, capacity: usize) -> BytesMut {
        let reused = self.free.as_ref().and_then(|free| free.lock().unwrap_or_else(|e| e.into_inner()).pop());
        match reused {
            Some(buf) if buf.capacity() >= capacity => buf,
            // Too small: a buffer of the exact size (`reserve` could double).
            _ => BytesMut::with_capacity(capacity),
        }
    }

    /// Hands the first `len` bytes of `buf` (whole, never split after) out
    /// as `Bytes`; `buf` comes back here when the last one is dropped.
    pub(crate) fn wrap(&mut self, buf: BytesMut, len: usize) -> Bytes {
        let len = len.min(buf.len());
        Bytes::from_owner(Pooled { buf, len, pool: Arc::clone(self.free.get_or_insert_default()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_return_when_their_last_bytes_is_dropped() {
        let mut pool = BufferPool::default();
        let a = pool.wrap(BytesMut::from(&b"first payload"[..]), 13);
        let b = a.slice(6..);
        assert_eq!(&b[..], b"payload");
        drop(a);
        assert_eq!(pool.free.as_ref().unwrap().lock().unwrap().len(), 0, "a slice still holds it");
        drop(b);
        assert_eq!(pool.free.as_ref().unwrap().lock().unwrap().len(), 1);
        let mut c = pool.take(1);
        c.extend_from_slice(b"x");
        let c = pool.wrap(c, 1);
        assert_eq!((&c[..], pool.free.as_ref().unwrap().lock().unwrap().len()), (&b"x"[..], 0));
        let many: Vec<Bytes> = (0..5)
            .map(|_| {
                let buf = pool.take(100 << 10);
                pool.wrap(buf, 0)
            })
            .collect();
        drop(many);
        drop(c);
        let kept: usize = pool.free.as_ref().unwrap().lock().unwrap().iter().map(BytesMut::capacity).sum();
        assert!(kept <= KEEP_BYTES, "bounded: {kept}");
    }
}
