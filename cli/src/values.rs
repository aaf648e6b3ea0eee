//! Each flag's value, checked as it is read, and what an error may show of
//! it: numbers, seconds, sizes, headers, and the URL with a suggestion.
//!
//! Invariant: an error names the flag and shows the value only where it
//! cannot be a secret: a header's value, text that failed to split into a
//! name, a short flag's attached value and a URL's query and credentials
//! are never shown (the URL goes through `redact.rs`).

use std::time::Duration;

use crate::args::UsageError;
use crate::redact;

/// Why `text` is not a URL wslink takes, with what to type instead when it
/// can tell: `ws://` before a bare `host:port`, `ws`/`wss` for `http`/`https`.
/// The URL is shown redacted (see `redact.rs`).
pub(crate) fn url_error(text: &str, error: &wslink_core::UrlError) -> String {
    let shown = redact::url(text);
    // Its text would quote the "port", which `redact::url` hides when it is not a number.
    let port_error;
    let error: &dyn std::fmt::Display = match error {
        wslink_core::UrlError::InvalidPort(_) => {
            port_error = "invalid port: expected a number from 1 to 65535";
            &port_error
        }
        other => other,
    };
    let (scheme, rest) = redact::split_scheme(text);
    let scheme = scheme.trim_end_matches("://").to_ascii_lowercase();
    let suggested = match scheme.as_str() {
        // A bare `host:port/path`; not a path, nor text with spaces.
        "" if text.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '[')
            && !text.contains(char::is_whitespace) =>
        {
            Some(format!("ws://{shown}"))
        }
        "http" => Some(format!("ws://{}", redact::url(rest))),
        "https" => Some(format!("wss://{}", redact::url(rest))),
        _ => None,
    };
    match suggested {
        Some(s) if scheme.is_empty() => {
            format!("{shown:?} is not a WebSocket URL: did you mean {s} (or wss:// for TLS)?")
        }
        Some(s) => format!("{shown:?}: {error} (did you mean {s}?)"),
        None => format!("{shown:?}: {error}"),
    }
}

/// An unknown flag as shown: a long one (`--name`, its `=value` already cut
/// off) when it looks like a flag name, else only its first two characters:
/// a short flag may carry its value (`-Xsecret`).
pub(crate) fn shown_flag(flag: &str) -> String {
    let plain =
        flag.starts_with("--") && flag.len() <= 32 && flag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if plain {
        flag.to_owned()
    } else {
        let start: String = flag.chars().take(2).collect();
        if start.len() == flag.len() {
            start
        } else {
            format!("{start}…")
        }
    }
}

/// `value`, unless it is empty.
pub(crate) fn non_empty(flag: &str, value: String) -> Result<String, UsageError> {
    if value.is_empty() {
        return Err(UsageError(format!("{flag} needs a non-empty value")));
    }
    Ok(value)
}

/// A whole number from 1 up.
pub(crate) fn positive(flag: &str, value: &str) -> Result<u64, UsageError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(UsageError(format!("{flag} {value:?}: expected a whole number from 1 up"))),
    }
}

/// Seconds as a decimal number, from a millisecond to a day: beyond that a
/// heartbeat means nothing, and `Duration::from_secs_f64` would panic on
/// infinity or a negative value.
pub(crate) fn seconds(flag: &str, value: &str) -> Result<Duration, UsageError> {
    match value.parse::<f64>() {
        Ok(s) if (0.001..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(UsageError(format!("{flag} {value:?}: expected seconds from 0.001 to 86400"))),
    }
}

/// A size in bytes: a whole number from 1, with an optional `K`, `M` or `G`
/// (KiB, MiB, GiB; `KiB`, `MB` ... read the same).
pub(crate) fn size(flag: &str, value: &str) -> Result<usize, UsageError> {
    let bad = || UsageError(format!("{flag} {value:?}: expected bytes from 1 up, with an optional K, M or G"));
    let lower = value.trim().to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let shift = match &lower[digits.len()..] {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad()),
    };
    let n = digits.parse::<usize>().map_err(|_| bad())?;
    match n.checked_mul(1 << shift) {
        Some(bytes) if bytes > 0 => Ok(bytes),
        _ => Err(bad()),
    }
}

/// `Name: value`, as curl and websocat take it, checked here so that a typo
/// is a usage error. Only the name is ever shown, once it is known to be a
/// header name: the value (and text that failed to split into a name) may be
/// a credential.
pub(crate) fn header(text: &str) -> Result<(String, String), UsageError> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(UsageError(format!(
            "--header: expected 'Name: value', and the {} characters given have no colon",
            text.chars().count()
        )));
    };
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return Err(UsageError("--header: the name before the colon is empty".into()));
    }
    // RFC 9110 §5.6.2: a name is a token.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if let Some((i, c)) = name.chars().enumerate().find(|&(_, c)| !token(c)) {
        let c =
            if c.is_ascii_graphic() || c == ' ' { format!("{c:?}") } else { "a control or non-ASCII character".into() };
        return Err(UsageError(format!(
            "--header: character {} of the name is {c}, which a header name may not hold",
            i + 1
        )));
    }
    if value.contains(['\r', '\n', '\0']) {
        return Err(UsageError(format!("--header {name}: the value may not hold CR, LF or NUL")));
    }
    Ok((name.to_owned(), value.to_owned()))
}
