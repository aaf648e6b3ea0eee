//! A few JSON pointers read from one message in one pass, without building
//! a tree.
//!
//! A session's sequence rule reads a message's channel and numbers with it,
//! and the NATS bridge its channel, id and sequence number. Parsing the message into a `serde_json::Value`
//! to read them allocates every key and value of the message; here
//! serde_json's own parser walks the message once, passes over every
//! subtree no pointer goes into (`Skip`: parsed and checked as a `Value`
//! would be, nothing stored), and keeps only the scalars found, borrowed
//! from the message when they hold no escape. (serde's `IgnoredAny` would
//! be quicker, but serde_json then neither checks escapes and UTF-8 in the
//! strings it passes over nor counts their nesting, so a message a `Value`
//! refuses would have values here.)
//!
//! The answers are those of `Value::pointer` on the parsed message, to the
//! letter (a test holds the two side by side on generated and broken input):
//! a message that is not one valid JSON document (trailing bytes, broken
//! UTF-8, nesting deeper than serde_json's limit of 128) has no values at
//! all; when a key appears twice in an object, the last one counts; array
//! indices are read as RFC 6901 and serde_json read them (`0`, `12`, not
//! `01` or `+1`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON pointer (RFC 6901), split into its unescaped tokens once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pointer {
    /// `None`: no pointer (the empty string, or one not starting with `/`).
    tokens: Option<Vec<Token>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    key: String,
    /// The array index this token names, if any.
    index: Option<usize>,
}

impl Pointer {
    /// Parses `text`; the empty string (and anything not starting with `/`,
    /// which the configuration refuses) points at nothing.
    pub fn parse(text: &str) -> Self {
        if !text.starts_with('/') {
            return Self::default();
        }
        let tokens = text
            .split('/')
            .skip(1)
            .map(|t| {
                let key = t.replace("~1", "/").replace("~0", "~");
                Token { index: parse_index(&key), key }
            })
            .collect();
        Self { tokens: Some(tokens) }
    }

    /// Whether it points at something.
    pub fn is_set(&self) -> bool {
        self.tokens.is_some()
    }

    fn len(&self) -> Option<usize> {
        self.tokens.as_ref().map(Vec::len)
    }

    fn token(&self, depth: usize) -> Option<&Token> {
        self.tokens.as_ref()?.get(depth)
    }
}

/// serde_json's rule for an array index in a pointer.
fn parse_index(s: &str) -> Option<usize> {
    if s.starts_with('+') || (s.starts_with('0') && s.len() != 1) {
        return None;
    }
    s.parse().ok()
}

/// A value found at a pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar<'a> {
    /// A string, borrowed from the message unless it held escapes.
    Str(Cow<'a, str>),
    /// A non-negative integer that fits in 64 bits.
    Unsigned(u64),
    /// A negative integer that fits in 64 bits.
    Signed(i64),
    /// `true` or `false`.
    Bool(bool),
    /// Anything else: null, a fraction or exponent, an integer beyond 64
    /// bits (serde_json reads those as `f64`), an object, an array.
    Other,
}

/// The values at `pointers` in `json`, each `None` where nothing is found;
/// `None` when `json` is not one valid JSON document. Never panics.
pub fn find<'a, const N: usize>(json: &'a [u8], pointers: [&Pointer; N]) -> Option<[Option<Scalar<'a>>; N]> {
    walk(serde_json::Deserializer::from_slice(json), pointers)
}

/// [`find`] on text already known to be UTF-8 (a WebSocket text message):
/// serde_json then does not check each string's UTF-8 again.
pub fn find_in_str<'a, const N: usize>(json: &'a str, pointers: [&Pointer; N]) -> Option<[Option<Scalar<'a>>; N]> {
    walk(serde_json::Deserializer::from_str(json), pointers)
}

fn walk<'a, R: serde_json::de::Read<'a>, const N: usize>(
    mut de: serde_json::Deserializer<R>,
    pointers: [&Pointer; N],
) -> Option<[Option<Scalar<'a>>; N]> {
    const { assert!(N <= 8, "at most 8 pointers: they are a bit mask") };
    let mut out: [Option<Scalar<'a>>; N] = std::array::from_fn(|_| None);
    let active = (0..N).filter(|&i| pointers[i].is_set()).fold(0u8, |m, i| m | (1 << i));
    let root = Node { pointers: &pointers, depth: 0, active, out: &mut out };
    root.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(out)
}

/// One node of the document on the way down: the pointers whose path
/// passes through it (`active`, a bit per pointer) at `depth`.
struct Node<'p, 'a, const N: usize> {
    pointers: &'p [&'p Pointer; N],
    depth: usize,
    active: u8,
    out: &'p mut [Option<Scalar<'a>>; N],
}

impl<'a, const N: usize> Node<'_, 'a, N> {
    /// The active pointers that end at this node.
    fn ending(&self) -> u8 {
        self.select(|p| p.len() == Some(self.depth))
    }

    fn select(&self, keep: impl Fn(&Pointer) -> bool) -> u8 {
        (0..N).filter(|&i| self.active & (1 << i) != 0 && keep(self.pointers[i])).fold(0, |m, i| m | (1 << i))
    }

    /// The active pointers that go on below this node through `step`.
    fn through(&self, step: impl Fn(&Token) -> bool) -> u8 {
        self.select(|p| p.token(self.depth).is_some_and(&step))
    }

    /// Sets the pointers that end here to `value`.
    fn found(&mut self, value: &Scalar<'a>) {
        let ending = self.ending();
        for (i, slot) in self.out.iter_mut().enumerate() {
            if ending & (1 << i) != 0 {
                *slot = Some(value.clone());
            }
        }
    }

    fn child(&mut self, active: u8) -> Node<'_, 'a, N> {
        Node { pointers: self.pointers, depth: self.depth + 1, active, out: &mut *self.out }
    }
}

impl<'de, const N: usize> DeserializeSeed<'de> for Node<'_, 'de, N> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        // The latest subtree on a pointer's path decides its value, as the
        // last of two equal keys does in a parsed `Value`.
        for (i, slot) in self.out.iter_mut().enumerate() {
            if self.active & (1 << i) != 0 {
                *slot = None;
            }
        }
        d.deserialize_any(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Node<'_, 'de, N> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(mut self, v: bool) -> Result<(), E> {
        self.found(&Scalar::Bool(v));
        Ok(())
    }

    fn visit_i64<E>(mut self, v: i64) -> Result<(), E> {
        let value = u64::try_from(v).map_or(Scalar::Signed(v), Scalar::Unsigned);
        self.found(&value);
        Ok(())
    }

    fn visit_u64<E>(mut self, v: u64) -> Result<(), E> {
        self.found(&Scalar::Unsigned(v));
        Ok(())
    }

    fn visit_f64<E>(mut self, _: f64) -> Result<(), E> {
        self.found(&Scalar::Other);
        Ok(())
    }

    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        // Copied (it held escapes) only where a pointer ends.
        if self.ending() != 0 {
            self.found(&Scalar::Str(Cow::Owned(v.to_owned())));
        }
        Ok(())
    }

    fn visit_borrowed_str<E>(mut self, v: &'de str) -> Result<(), E> {
        self.found(&Scalar::Str(Cow::Borrowed(v)));
        Ok(())
    }

    fn visit_unit<E>(mut self) -> Result<(), E> {
        self.found(&Scalar::Other);
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        // An object or array where a pointer ends is no scalar.
        self.found(&Scalar::Other);
        while let Some(through) = map.next_key_seed(Key { node: &self })? {
            if through == 0 {
                map.next_value_seed(Skip)?;
            } else {
                map.next_value_seed(self.child(through))?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        // An object or array where a pointer ends is no scalar.
        self.found(&Scalar::Other);
        let mut index = 0usize;
        loop {
            let through = self.through(|t| t.index == Some(index));
            let more = if through == 0 {
                seq.next_element_seed(Skip)?.is_some()
            } else {
                seq.next_element_seed(self.child(through))?.is_some()
            };
            if !more {
                return Ok(());
            }
            index = index.saturating_add(1);
        }
    }
}

/// An object's key, answered as the pointers that go through it: compared
/// where it lies in the message, never copied unless it held escapes.
struct Key<'n, 'p, 'a, const N: usize> {
    node: &'n Node<'p, 'a, N>,
}

impl<'de, const N: usize> DeserializeSeed<'de> for Key<'_, '_, '_, N> {
    type Value = u8;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<u8, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Key<'_, '_, '_, N> {
    type Value = u8;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<u8, E> {
        Ok(self.node.through(|t| t.key == key))
    }
}

/// A value no pointer goes into: parsed through `deserialize_any`, so
/// serde_json checks it (escapes, UTF-8, nesting) exactly as for a `Value`,
/// and dropped; strings are borrowed, never copied.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }
}

#[cfg(test)]
mod tests;
