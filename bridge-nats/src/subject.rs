//! Channel names as NATS subjects.
//!
//! A subject is `<prefix>.<endpoint>.<channel tokens>`. The channel keeps
//! its dots as subject levels, so a consumer can filter with wildcards
//! (`wslink.deribit.trades.>`); inside a level, every byte outside
//! `A-Z a-z 0-9 - _` is written `~HH` (its hex value), and an empty level
//! (`a..b`, a leading or trailing dot) is written `~`. The mapping is
//! injective: two channels never share a subject, since `~` itself is
//! escaped (`~7E`) and an escape is always `~` and two upper-case hex digits.
//! Messages whose channel cannot be found go to `<prefix>.<endpoint>.~none`,
//! which no channel maps to (`n` is not a hex digit).
//!
//! A channel whose escaped form is longer than [`MAX_CHANNEL`] bytes (a
//! hostile or broken message can name any channel) becomes the single level
//! `~long~<32 hex digits>`, a 128-bit hash of the channel, which no other
//! channel maps to either (`l` is not a hex digit). A subject is therefore
//! at most 128 + 128 + 2 + [`MAX_CHANNEL`] bytes, well inside nats-server's
//! 4 KiB protocol line: a longer one makes the server close the connection,
//! and the publish could never succeed.

use crate::hash;

/// The last token of the subject for messages without a channel.
pub const NO_CHANNEL: &str = "~none";

/// The longest channel part of a subject, escaped; longer ones are hashed.
pub const MAX_CHANNEL: usize = 1024;

/// Whether `s` is a non-empty token of plain characters (`A-Z a-z 0-9 - _`),
/// as names in the configuration must be.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(plain)
}

fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The subject for a message of `channel` (`None`: no channel found) from `endpoint`.
pub fn subject(prefix: &str, endpoint: &str, channel: Option<&str>) -> String {
    let mut out = String::with_capacity(prefix.len() + endpoint.len() + channel.map_or(8, str::len) + 8);
    out.push_str(prefix);
    out.push('.');
    out.push_str(endpoint);
    out.push('.');
    match channel {
        None => out.push_str(NO_CHANNEL),
        Some(channel) => {
            let start = out.len();
            // The escaped form is at least as long as the channel: only a short one is escaped.
            if channel.len() <= MAX_CHANNEL {
                push_channel(&mut out, channel);
            }
            if channel.len() > MAX_CHANNEL || out.len() - start > MAX_CHANNEL {
                out.truncate(start);
                out.push_str("~long~");
                out.push_str(&hash::hash128(&[channel.as_bytes()]));
            }
        }
    }
    out
}

/// The wildcard that covers every subject under `prefix`.
pub fn wildcard(prefix: &str) -> String {
    format!("{prefix}.>")
}

/// Whether the stream subject `pattern` takes every subject that `filter`
/// matches (both may hold `*` and `>`): `feed.>`, `*.>` and `>` cover
/// `feed.>`; `feed.*` and `feed.mock.>` do not.
pub fn covers(pattern: &str, filter: &str) -> bool {
    let filter: Vec<&str> = filter.split('.').collect();
    let mut levels = 0;
    for (i, p) in pattern.split('.').enumerate() {
        if p == ">" {
            return i < filter.len();
        }
        let Some(&f) = filter.get(i) else { return false };
        // A wildcard of the filter is covered only by the same or a wider one.
        if f == ">" || (p != "*" && p != f) {
            return false;
        }
        levels = i + 1;
    }
    levels == filter.len()
}

fn push_channel(out: &mut String, channel: &str) {
    for (i, level) in channel.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if level.is_empty() {
            out.push('~');
            continue;
        }
        for b in level.bytes() {
            if plain(b) {
                out.push(char::from(b));
            } else {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('~');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_channels_keep_their_levels() {
        assert_eq!(
            subject("wslink", "deribit", Some("trades.BTC-PERPETUAL.raw")),
            "wslink.deribit.trades.BTC-PERPETUAL.raw"
        );
        assert_eq!(subject("p", "e", None), "p.e.~none");
    }

    #[test]
    fn wildcards_spaces_and_empty_levels_are_escaped() {
        assert_eq!(subject("p", "e", Some("a b*>")), "p.e.a~20b~2A~3E");
        assert_eq!(subject("p", "e", Some(".a..b.")), "p.e.~.a.~.b.~");
        assert_eq!(subject("p", "e", Some("~")), "p.e.~7E");
        assert_eq!(subject("p", "e", Some("é")), "p.e.~C3~A9");
        assert_eq!(subject("p", "e", Some("none")), "p.e.none");
    }

    #[test]
    fn distinct_channels_get_distinct_subjects() {
        let channels = ["a.b", "a~2Eb", "a~b", "a", "a.", ".a", "", "~", "~none", "none", "a b", "a_b", "a-b"];
        let subjects: std::collections::HashSet<_> = channels.iter().map(|c| subject("p", "e", Some(c))).collect();
        assert_eq!(subjects.len(), channels.len());
        assert!(!subjects.contains(&subject("p", "e", None)));
    }

    #[test]
    fn subjects_hold_no_whitespace_or_wildcard() {
        for c in ["a b", "\t\n", "*", ">", "x.>", "\0"] {
            let s = subject("p", "e", Some(c));
            assert!(!s.contains(|ch: char| ch.is_whitespace() || ch == '*' || ch == '>' || ch == '\0'), "{s}");
        }
    }

    #[test]
    fn long_channels_become_a_bounded_hashed_level() {
        let long = "a".repeat(MAX_CHANNEL + 1);
        let s = subject("p", "e", Some(&long));
        assert!(s.starts_with("p.e.~long~") && s.len() == "p.e.~long~".len() + 32, "{s}");
        assert_ne!(s, subject("p", "e", Some(&"a".repeat(MAX_CHANNEL + 2))));
        assert_eq!(s, subject("p", "e", Some(&long)));
        // At the limit the channel is kept; escapes count toward it.
        let edge = "b".repeat(MAX_CHANNEL);
        assert_eq!(subject("p", "e", Some(&edge)), format!("p.e.{edge}"));
        let escaped = " ".repeat(MAX_CHANNEL / 3 + 1);
        assert!(subject("p", "e", Some(&escaped)).starts_with("p.e.~long~"));
        let huge = "c".repeat(1 << 20);
        assert!(subject("p", "e", Some(&huge)).len() < 200);
    }

    #[test]
    fn coverage_of_a_filter() {
        assert!(covers("feed.>", "feed.>"));
        assert!(covers(">", "feed.>"));
        assert!(covers("*.>", "feed.>"));
        assert!(!covers("feed.*", "feed.>"));
        assert!(!covers("feed.mock.>", "feed.>"));
        assert!(!covers("other.>", "feed.>"));
        assert!(covers("feed.*", "feed.a"));
        assert!(!covers("feed.a", "feed.*"));
        assert!(!covers("feed", "feed.a"));
    }

    #[test]
    fn tokens() {
        assert!(is_token("deribit-1_x"));
        assert!(!is_token(""));
        assert!(!is_token("a.b"));
        assert!(!is_token("a b"));
        assert!(!is_token(">"));
    }
}
