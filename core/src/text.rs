//! [`Utf8Bytes`]: the text of a text message, UTF-8 checked once when made
//! and shared through `bytes::Bytes` without a copy.
//!
//! wslink's own type over tungstenite's (whose `&str` view costs nothing,
//! with the unsafe code kept in tungstenite), so that a tungstenite upgrade
//! is never a breaking change of wslink's API. Every conversion a user
//! needs is here; the inner type never shows.

use std::fmt;
use std::ops::Deref;

use bytes::{Bytes, BytesMut};

/// Text known to be UTF-8, backed by [`Bytes`]: cloning and slicing share
/// the buffer it was read into, and [`as_str`](Self::as_str) is free.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Utf8Bytes(tungstenite::Utf8Bytes);

/// Bytes that are not UTF-8, handed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the bytes are not UTF-8 (valid up to byte {valid_up_to})")]
pub struct NotUtf8 {
    /// How many leading bytes were valid UTF-8.
    pub valid_up_to: usize,
}

impl Utf8Bytes {
    /// Text from a static string, with no allocation.
    pub const fn from_static(text: &'static str) -> Self {
        Self(tungstenite::Utf8Bytes::from_static(text))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The text's bytes, sharing the buffer.
    pub fn into_bytes(self) -> Bytes {
        self.0.into()
    }

    /// Checks `bytes` once and keeps them.
    #[inline]
    fn checked(bytes: Bytes) -> Result<Self, NotUtf8> {
        tungstenite::Utf8Bytes::try_from(bytes).map(Self).map_err(|e| NotUtf8 { valid_up_to: e.valid_up_to() })
    }
}

impl Deref for Utf8Bytes {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Utf8Bytes {
    fn as_ref(&self) -> &[u8] {
        self.as_str().as_bytes()
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Utf8Bytes {
    /// As the bytes' debug form, as it has always printed (recordings quote events with it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Self(text.into())
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Self(text.into())
    }
}

impl From<&String> for Utf8Bytes {
    fn from(text: &String) -> Self {
        Self(text.into())
    }
}

impl From<Box<str>> for Utf8Bytes {
    fn from(text: Box<str>) -> Self {
        Self(String::from(text).into())
    }
}

impl From<Utf8Bytes> for Bytes {
    fn from(text: Utf8Bytes) -> Self {
        text.into_bytes()
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = NotUtf8;
    fn try_from(bytes: Bytes) -> Result<Self, NotUtf8> {
        Self::checked(bytes)
    }
}

impl TryFrom<BytesMut> for Utf8Bytes {
    type Error = NotUtf8;
    fn try_from(bytes: BytesMut) -> Result<Self, NotUtf8> {
        Self::checked(bytes.freeze())
    }
}

impl TryFrom<Vec<u8>> for Utf8Bytes {
    type Error = NotUtf8;
    fn try_from(bytes: Vec<u8>) -> Result<Self, NotUtf8> {
        Self::checked(bytes.into())
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Utf8Bytes {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_converts_both_ways_and_refuses_what_is_not_utf8() {
        let t = Utf8Bytes::from("caf\u{e9}");
        assert_eq!(t.as_str(), "caf\u{e9}");
        assert_eq!(t, "caf\u{e9}");
        assert_eq!(&*t, "caf\u{e9}");
        assert_eq!(format!("{t}"), "caf\u{e9}");
        assert_eq!(format!("{t:?}"), r#"Utf8Bytes(b"caf\xc3\xa9")"#, "the debug form recordings know");
        assert_eq!(Bytes::from(t.clone()), Bytes::from_static("caf\u{e9}".as_bytes()));
        assert_eq!(Utf8Bytes::try_from(Bytes::from_static(b"ok")), Ok(Utf8Bytes::from_static("ok")));
        assert_eq!(Utf8Bytes::try_from(vec![b'a', 0xff]), Err(NotUtf8 { valid_up_to: 1 }));
        assert_eq!(Utf8Bytes::try_from(BytesMut::from(&b"\xe9"[..])), Err(NotUtf8 { valid_up_to: 0 }));
        assert_eq!(Utf8Bytes::default().as_str(), "");
    }
}
