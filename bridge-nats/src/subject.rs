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

/// The last token of the subject for messages without a channel.
pub const NO_CHANNEL: &str = "~none";

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
        Some(channel) => push_channel(&mut out, channel),
    }
    out
}

/// The wildcard that covers every subject under `prefix`.
pub fn wildcard(prefix: &str) -> String {
    format!("{prefix}.>")
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
    fn tokens() {
        assert!(is_token("deribit-1_x"));
        assert!(!is_token(""));
        assert!(!is_token("a.b"));
        assert!(!is_token("a b"));
        assert!(!is_token(">"));
    }
}
