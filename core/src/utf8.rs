//! Incremental UTF-8 validation of a text message that arrives in fragments.
//!
//! Each fragment is checked as it arrives (RFC 6455 §8.1 lets a client fail
//! as soon as the octets seen cannot start valid UTF-8), and so is each piece
//! of a text frame still arriving (`connection/partial_text.rs`), carrying at
//! most three bytes of a code point split across pieces. Validation itself is
//! the standard library's, which refuses a sequence at its first byte that no
//! continuation can make valid; this only stitches the split code points.

/// Validates a byte stream chunk by chunk.
#[derive(Debug, Default, Clone)]
pub(crate) struct Utf8Validator {
    pending: [u8; 4],
    pending_len: usize,
}

/// The stream can no longer become valid UTF-8.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Validator {
    /// Checks the next chunk; fails at the first byte that makes the text invalid.
    pub(crate) fn feed(&mut self, mut chunk: &[u8]) -> Result<(), InvalidUtf8> {
        if self.pending_len > 0 {
            let width = char_width(self.pending[0]);
            let take = (width - self.pending_len).min(chunk.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&chunk[..take]);
            self.pending_len += take;
            chunk = &chunk[take..];
            match std::str::from_utf8(&self.pending[..self.pending_len]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                // Still a valid prefix of a code point, and the chunk is used up.
                Err(_) => return Ok(()),
            }
        }
        match std::str::from_utf8(chunk) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = &chunk[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len();
                Ok(())
            }
        }
    }

    /// Checks that the text did not end inside a code point. Messages do not
    /// need it (their last fragment is checked with the whole message); the
    /// tests use it to compare the validator with the standard library.
    #[cfg(test)]
    pub(crate) fn finish(&self) -> Result<(), InvalidUtf8> {
        if self.pending_len == 0 {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

/// The length of the code point a valid lead byte starts.
fn char_width(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn validate_split(bytes: &[u8], cuts: &[usize]) -> Result<(), InvalidUtf8> {
        let mut v = Utf8Validator::default();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let cut = cut.clamp(start, bytes.len());
            v.feed(&bytes[start..cut])?;
            start = cut;
        }
        v.finish()
    }

    #[test]
    fn split_code_points_are_stitched() {
        let text = "aé€𝄞z".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                assert_eq!(validate_split(text, &[a, b]), Ok(()), "{a} {b}");
            }
        }
    }

    #[test]
    fn fails_at_the_fragment_holding_the_first_bad_byte() {
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"ok \xce"), Ok(()));
        assert_eq!(v.feed(b"\xba"), Ok(()));
        assert_eq!(v.feed(b"\xf0\x28"), Err(InvalidUtf8));
        // A prefix that can never complete fails before the rest arrives.
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"\xed"), Ok(()));
        assert_eq!(v.feed(b"\xa0"), Err(InvalidUtf8), "surrogate half");
        let mut v = Utf8Validator::default();
        assert_eq!(v.feed(b"\xce"), Ok(()));
        assert_eq!(v.finish(), Err(InvalidUtf8), "truncated at the end");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn agrees_with_std_for_any_bytes_and_cuts(bytes in prop::collection::vec(any::<u8>(), 0..64), cuts in prop::collection::vec(0usize..64, 0..6), text in ".{0,16}") {
            let mut cuts = cuts;
            cuts.sort_unstable();
            prop_assert_eq!(validate_split(&bytes, &cuts).is_ok(), std::str::from_utf8(&bytes).is_ok());
            prop_assert_eq!(validate_split(text.as_bytes(), &cuts), Ok(()));
        }
    }
}
