//! The core's randomness: the [`RandomSource`] a caller injects (masking
//! keys, handshake nonces, backoff jitter), and [`OsRandom`], a generator
//! seeded from the operating system for a caller's own loop.
//!
//! Invariant: nothing in the core's machines reads the OS's randomness;
//! only a caller that builds an `OsRandom` does, once, and injects it.

use rand::rngs::{StdRng, SysRng};
use rand::SeedableRng;

/// The random numbers the core needs: masking keys and handshake nonces.
///
/// Injected so that tests are repeatable; in production pass [`OsRandom`]
/// (or another OS-seeded generator), since RFC 6455 §5.3 wants masking keys
/// the server cannot predict. Every [`rand::Rng`] (rand 0.10) already
/// implements it.
pub trait RandomSource: Send {
    /// A random 32-bit value.
    fn next_u32(&mut self) -> u32;
    /// Fills `dest` with random bytes.
    fn fill(&mut self, dest: &mut [u8]);
}

impl<R: rand::Rng + Send> RandomSource for R {
    fn next_u32(&mut self) -> u32 {
        rand::Rng::next_u32(self)
    }
    fn fill(&mut self, dest: &mut [u8]) {
        self.fill_bytes(dest)
    }
}

/// A generator seeded once from the operating system (ChaCha12, rand's
/// `StdRng`): the source for a loop of one's own.
///
/// ```
/// let rng = wslink_core::OsRandom::new()?;
/// let session = wslink_core::Session::builder("wss://stream.example.com/ws")?.build(Box::new(rng), std::time::Instant::now())?;
/// # let _ = session;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OsRandom(StdRng);

/// The operating system could not give random bytes.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct OsRandomError(#[source] std::io::Error);

impl OsRandom {
    /// A generator seeded from the operating system.
    pub fn new() -> Result<Self, OsRandomError> {
        StdRng::try_from_rng(&mut SysRng).map(Self).map_err(|e| OsRandomError(std::io::Error::other(e)))
    }
}

impl RandomSource for OsRandom {
    fn next_u32(&mut self) -> u32 {
        rand::Rng::next_u32(&mut self.0)
    }
    fn fill(&mut self, dest: &mut [u8]) {
        rand::Rng::fill_bytes(&mut self.0, dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_os_seeded_sources_differ() {
        let (mut a, mut b) = (OsRandom::new().expect("OS randomness"), OsRandom::new().expect("OS randomness"));
        let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_ne!(x, y, "256 bits from two seeds");
    }
}
