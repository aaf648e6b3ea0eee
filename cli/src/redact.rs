//! What the CLI shows of text the user gave that may hold a secret: a URL
//! that did not parse, a header, an argument.
//!
//! Invariant: every message that quotes the user's URL, header or argument
//! goes through here (or quotes a `WsUrl`'s `redacted_text`, which holds no
//! credentials). A URL that parsed never carries user information (`WsUrl`
//! refuses it); one that did not parse may be anything, so what is hidden is
//! chosen to leak nothing whatever the text: everything before the last `@`
//! (user information, even with `/`, `?` or `:` in the password) and
//! everything from the first `?` or `#` (a token in the query or fragment).
//! Too much is hidden rather than too little: an `@` in a query hides the host.
//! A "port" that is not a number is hidden too: `ws://user:password/`, the
//! host forgotten, reads as host `user` and port `password`.

/// `text`, a URL as typed, with its user information shown as `***@` and
/// its query and fragment as `?<redacted>` / `#<redacted>`.
pub(crate) fn url(text: &str) -> String {
    let (scheme, rest) = split_scheme(text);
    let query = rest.find(['?', '#']).unwrap_or(rest.len());
    let userinfo_end = rest.rfind('@');
    let visible_start = userinfo_end.map_or(0, |at| at + 1);
    let mut out = String::with_capacity(text.len().min(256));
    out.push_str(scheme);
    if userinfo_end.is_some() {
        out.push_str("***@");
    }
    if visible_start <= query {
        let visible = &rest[visible_start..query];
        let authority_end = visible.find('/').unwrap_or(visible.len());
        let (authority, path) = visible.split_at(authority_end);
        // The port follows the last `:` that is not inside an IPv6 literal's brackets.
        match authority.rfind(':').filter(|&at| !authority[at..].contains(']')) {
            Some(at) if !authority[at + 1..].bytes().all(|b| b.is_ascii_digit()) => {
                out.push_str(&authority[..=at]);
                out.push_str("***");
            }
            _ => out.push_str(authority),
        }
        out.push_str(path);
    }
    match rest[query..].chars().next() {
        Some('?') => out.push_str("?<redacted>"),
        Some('#') => out.push_str("#<redacted>"),
        _ => {}
    }
    out
}

/// The scheme with its `://`, when `text` starts with one (RFC 3986:
/// a letter, then letters, digits, `+`, `-` and `.`), and the rest.
pub(crate) fn split_scheme(text: &str) -> (&str, &str) {
    let Some(at) = text.find("://") else { return ("", text) };
    let scheme = &text[..at];
    let valid = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if valid {
        text.split_at(at + 3)
    } else {
        ("", text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_queries_and_fragments_are_hidden() {
        let cases = [
            ("ws://alice:SECRET@127.0.0.1:1/", "ws://***@127.0.0.1:1/"),
            ("http://alice:SECRET@host/feed?x=1", "http://***@host/feed?<redacted>"),
            ("alice:SECRET@host:1/feed", "***@host:1/feed"),
            ("ws://host/feed?token=SECRET", "ws://host/feed?<redacted>"),
            ("ws://host/#SECRET", "ws://host/#<redacted>"),
            ("ws://host/?#SECRET", "ws://host/?<redacted>"),
            // A password with `/`, `?` or `#` in it: all before the last `@` goes.
            ("ws://a:SE/CRET@host/", "ws://***@host/"),
            ("ws://a:SE?CRET@host/", "ws://***@?<redacted>"),
            ("ws://a:SE#CRET@host/", "ws://***@#<redacted>"),
            // An `@` in the query hides the rest, never shows the query.
            ("ws://host/p?mail=a@b.c&token=SECRET", "ws://***@?<redacted>"),
            ("127.0.0.1:8765", "127.0.0.1:8765"),
            ("", ""),
            // `://` inside a query is not a scheme.
            ("host/p?u=http://SECRET", "host/p?<redacted>"),
            ("wss://host:443/a/b", "wss://host:443/a/b"),
            // The host forgotten: the password would read as a port.
            ("ws://user:SECRET/feed", "ws://user:***/feed"),
            ("ws://[::1]:SECRET/", "ws://[::1]:***/"),
            ("ws://[::1]/x:y", "ws://[::1]/x:y"),
            ("ws://[::1]:8080/", "ws://[::1]:8080/"),
        ];
        for (text, shown) in cases {
            assert_eq!(url(text), shown, "{text}");
            assert!(!url(text).contains("SECRET"), "{text}");
        }
    }

    #[test]
    fn any_text_keeps_its_secret_hidden() {
        // Every split of a password around the URL's delimiters.
        let delimiters = ['/', '?', '#', ':', '@', ' '];
        for a in delimiters {
            for b in delimiters {
                let text = format!("ws://u:SEC{a}RET{b}x@host/p?q=SECRET#SECRET");
                let shown = url(&text);
                assert!(!shown.contains("SEC") && !shown.contains("RET"), "{text} -> {shown}");
            }
        }
    }
}
