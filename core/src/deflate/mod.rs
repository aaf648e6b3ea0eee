//! permessage-deflate (RFC 7692): the client's offer, the check of the
//! server's answer, and the per-message compression of both directions.
//!
//! Off by default ([`ConnectionConfig::deflate`](crate::ConnectionConfig) is
//! `None`): wslink's users hold many long-lived connections to servers on fast
//! links, where the compressor's memory (tens of KiB per connection) and its
//! CPU on every message cost more than the bytes it saves. Turn it on for
//! feeds that send large, repetitive JSON over slow or metered links.
//!
//! Invariants: a decompressed message never grows past the message limit (the
//! output grows in steps, each capped at the limit plus one byte, so a bomb
//! costs at most the limit); compression state is allocated on first use, so
//! a connection that never sends a message above the threshold never pays for
//! a compressor; nothing the server sends can make the codec panic.

#[cfg(feature = "deflate")]
mod codec;
#[cfg(not(feature = "deflate"))]
#[path = "codec_off.rs"]
mod codec;
mod negotiate;

pub(crate) use codec::{Compressor, Inflater};
pub use negotiate::DeflateParams;
pub(crate) use negotiate::{negotiate, offer, EXTENSION_NAME};

use crate::error::ConfigError;

/// What to offer for permessage-deflate, and how to compress.
///
/// The defaults keep memory low: our compressor uses a 4 KiB window
/// (`client_max_window_bits` 12) and `mem_level` 5, and the inflater the
/// window the server chose (up to 32 KiB). Each is allocated when first
/// needed; with both in use a connection holds about 25 KB more than without
/// compression (measured in BENCHMARKS.md). `server_max_window_bits` and
/// `client_max_window_bits` shrink the two windows, `mem_level` the
/// compressor's hash table; a server that cannot honour a window it is asked
/// for declines the extension, and the connection opens without compression.
/// The `no_context_takeover` flags trade ratio for independence between
/// messages; they do not free memory between messages (the state is reset,
/// not dropped, so that a flood does not allocate per message).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The largest window our compressor uses, 9 to 15 (2^bits bytes).
    /// Offered as `client_max_window_bits` so the server may lower it.
    /// Default 12. A server that lowers it to 8 gets our messages uncompressed
    /// (zlib cannot compress with a 256-byte window), which RFC 7692 allows.
    /// A server that answers with a larger window than offered is accepted,
    /// and we keep ours ([`DeflateParams::client_window_over_granted`]).
    pub client_max_window_bits: u8,
    /// Ask the server to use at most this window, 8 to 15; `None` asks nothing
    /// (the server may use 15). Default `None`.
    pub server_max_window_bits: Option<u8>,
    /// Promise to compress every message on its own (no back-references into
    /// earlier messages): worse ratio, but the compressor's window is not
    /// carried between messages. Default off.
    pub client_no_context_takeover: bool,
    /// Ask the server to compress every message on its own. Default off.
    pub server_no_context_takeover: bool,
    /// Messages shorter than this go uncompressed. Default 64 bytes.
    pub compress_threshold: usize,
    /// zlib compression level, 0 (store) to 9 (smallest). Default 1 (fastest):
    /// a client's outgoing messages are few and small.
    pub level: u8,
    /// zlib memory level, 1 to 9: the compressor's hash table is 2^(level+9)
    /// bytes. Default 5 (16 KiB).
    pub mem_level: u8,
}

/// Each setting by name, for a value built from the defaults:
/// `DeflateConfig::default().client_max_window_bits(..)`.
impl DeflateConfig {
    /// Sets `client_max_window_bits`.
    pub fn client_max_window_bits(mut self, client_max_window_bits: u8) -> Self {
        self.client_max_window_bits = client_max_window_bits;
        self
    }

    /// Sets `server_max_window_bits`.
    pub fn server_max_window_bits(mut self, server_max_window_bits: Option<u8>) -> Self {
        self.server_max_window_bits = server_max_window_bits;
        self
    }

    /// Sets `client_no_context_takeover`.
    pub fn client_no_context_takeover(mut self, client_no_context_takeover: bool) -> Self {
        self.client_no_context_takeover = client_no_context_takeover;
        self
    }

    /// Sets `server_no_context_takeover`.
    pub fn server_no_context_takeover(mut self, server_no_context_takeover: bool) -> Self {
        self.server_no_context_takeover = server_no_context_takeover;
        self
    }

    /// Sets `compress_threshold`.
    pub fn compress_threshold(mut self, compress_threshold: usize) -> Self {
        self.compress_threshold = compress_threshold;
        self
    }

    /// Sets `level`.
    pub fn level(mut self, level: u8) -> Self {
        self.level = level;
        self
    }

    /// Sets `mem_level`.
    pub fn mem_level(mut self, mem_level: u8) -> Self {
        self.mem_level = mem_level;
        self
    }
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            client_max_window_bits: 12,
            server_max_window_bits: None,
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            compress_threshold: 64,
            level: 1,
            mem_level: 5,
        }
    }
}

impl DeflateConfig {
    /// Checks every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason| Err(ConfigError::InvalidValue { field, reason });
        if cfg!(not(feature = "deflate")) {
            return invalid("deflate", "needs the `deflate` feature of wslink-core");
        }
        if !(9..=15).contains(&self.client_max_window_bits) {
            return invalid("deflate.client_max_window_bits", "must be 9 to 15");
        }
        if self.server_max_window_bits.is_some_and(|b| !(8..=15).contains(&b)) {
            return invalid("deflate.server_max_window_bits", "must be 8 to 15 or None");
        }
        if self.level > 9 {
            return invalid("deflate.level", "must be 0 to 9");
        }
        if !(1..=9).contains(&self.mem_level) {
            return invalid("deflate.mem_level", "must be 1 to 9");
        }
        Ok(())
    }
}

/// Counters of the compression of one connection (or, in session metrics,
/// of all connections so far).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CompressionStats {
    /// Messages received compressed.
    pub messages_inflated: u64,
    /// Their bytes as received (compressed).
    pub inflated_from: u64,
    /// Their bytes after decompression.
    pub inflated_to: u64,
    /// Messages we sent compressed.
    pub messages_compressed: u64,
    /// Their bytes before compression.
    pub compressed_from: u64,
    /// Their bytes as sent.
    pub compressed_to: u64,
}

impl CompressionStats {
    pub(crate) fn add(&mut self, other: &Self) {
        self.messages_inflated += other.messages_inflated;
        self.inflated_from += other.inflated_from;
        self.inflated_to += other.inflated_to;
        self.messages_compressed += other.messages_compressed;
        self.compressed_from += other.compressed_from;
        self.compressed_to += other.compressed_to;
    }
}

/// The extension in force on an open connection.
pub(crate) struct Deflate {
    pub(crate) inflater: Inflater,
    pub(crate) compressor: Option<Compressor>,
    pub(crate) threshold: usize,
    /// What was compressed (what was inflated, the inflater counts).
    sent: CompressionStats,
    /// Where an outgoing message is compressed before it is framed, kept
    /// for the next (here, not in the connection: only connections that
    /// agreed to compression carry it).
    pub(crate) out: Vec<u8>,
}

impl Deflate {
    pub(crate) fn new(config: &DeflateConfig, params: DeflateParams) -> Self {
        // RFC 7692 §7.1.2.2 allows a window of 8 bits, which zlib cannot
        // compress with (it silently uses 9); such a connection sends plain.
        let compressor = (params.client_max_window_bits >= 9).then(|| {
            Compressor::new(
                config.level,
                config.mem_level,
                params.client_max_window_bits,
                params.client_no_context_takeover,
            )
        });
        Self {
            inflater: Inflater::new(params.server_max_window_bits),
            compressor,
            threshold: config.compress_threshold,
            sent: CompressionStats::default(),
            out: Vec::new(),
        }
    }

    /// What compression has done both ways.
    pub(crate) fn stats(&self) -> CompressionStats {
        let (messages_inflated, inflated_from, inflated_to) = self.inflater.counts();
        CompressionStats { messages_inflated, inflated_from, inflated_to, ..self.sent }
    }

    /// Compresses `payload` into `out` (cleared first) when it is worth it;
    /// returns whether it did.
    pub(crate) fn compress(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(compressor) = self.compressor.as_mut().filter(|_| payload.len() >= self.threshold) else {
            return false;
        };
        out.clear();
        compressor.compress(payload, out);
        self.sent.messages_compressed += 1;
        self.sent.compressed_from += payload.len() as u64;
        self.sent.compressed_to += out.len() as u64;
        true
    }
}
