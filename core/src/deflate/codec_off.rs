//! The codec's stand-in when the `deflate` feature is off: the same shapes,
//! no zlib. Nothing reaches it: `DeflateConfig::validate` refuses every
//! configuration that would offer the extension, and a server that answers
//! an offer never made is refused in the handshake; were one to reach it,
//! every compressed frame would fail as `InvalidCompressedData` and nothing
//! would be compressed.

use bytes::BytesMut;

use crate::error::ProtocolError;

/// Inflates nothing.
pub(crate) struct Inflater;

impl Inflater {
    /// The stand-in (the window does not matter).
    pub(crate) fn new(_window_bits: u8) -> Self {
        Self
    }

    /// Fails: there is no codec.
    pub(crate) fn inflate(&mut self, _input: &[u8], _fin: bool, _limit: usize) -> Result<(), ProtocolError> {
        Err(ProtocolError::InvalidCompressedData)
    }

    /// Nothing was inflated.
    pub(crate) fn inflated(&self) -> &[u8] {
        &[]
    }

    /// An empty message.
    pub(crate) fn take(&mut self) -> BytesMut {
        BytesMut::new()
    }

    /// No message, no byte.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        (0, 0, 0)
    }
}

/// Compresses nothing.
pub(crate) struct Compressor;

impl Compressor {
    /// The stand-in.
    pub(crate) fn new(_level: u8, _mem_level: u8, _window_bits: u8, _reset_each: bool) -> Self {
        Self
    }

    /// Declines: the message goes out plain.
    pub(crate) fn compress(&mut self, _payload: &[u8], _out: &mut Vec<u8>) -> bool {
        false
    }
}
