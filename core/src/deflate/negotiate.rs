//! The permessage-deflate offer and the check of the server's answer
//! (RFC 7692 §7.1).
//!
//! The server's answer must stay inside what was offered: it may lower our
//! window, must grant the window cap and the context takeover we asked of it,
//! and may add `client_no_context_takeover` or a server window of its own
//! choosing. Anything else fails the handshake with the parameter named, with
//! one exception for interoperability: a client window *above* our offer
//! (which RFC 7692 §7.1.2.2 forbids, and some deployed servers send anyway)
//! is taken and recorded, and we compress with our own smaller window, which
//! a server ready for the larger one always inflates.

use super::DeflateConfig;
use crate::error::DeflateNegotiationError;

/// The extension's name in `Sec-WebSocket-Extensions`.
pub(crate) const EXTENSION_NAME: &str = "permessage-deflate";

/// What the server agreed to, as in force on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The server compresses every message on its own.
    pub server_no_context_takeover: bool,
    /// We compress every message on its own.
    pub client_no_context_takeover: bool,
    /// The largest window the server compresses with (15 unless it said less).
    pub server_max_window_bits: u8,
    /// The largest window we compress with: our setting, or less if the server said so.
    pub client_max_window_bits: u8,
    /// The `client_max_window_bits` the server answered when it was larger
    /// than our offer (RFC 7692 §7.1.2.2 says it must not be); `None` when the
    /// answer kept to the offer. The connection opens all the same and we
    /// compress with our smaller window (`client_max_window_bits`), which an
    /// inflater with the server's larger window decodes; the adapters log it
    /// as a warning, since such a server may break other rules too.
    pub client_window_over_granted: Option<u8>,
}

impl DeflateParams {
    /// Parameters agreed on an upgrade done elsewhere (for
    /// `Connection::from_upgraded_with_deflate`): both windows in bits (8
    /// to 15) and both context takeovers; nothing over-granted.
    pub fn new(
        server_max_window_bits: u8,
        client_max_window_bits: u8,
        server_no_context_takeover: bool,
        client_no_context_takeover: bool,
    ) -> Self {
        Self {
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits,
            client_max_window_bits,
            client_window_over_granted: None,
        }
    }
}

/// The offer written into `Sec-WebSocket-Extensions`.
pub(crate) fn offer(config: &DeflateConfig) -> String {
    let mut offer = String::from(EXTENSION_NAME);
    // Bare, the parameter says "you may lower my window"; with a value it
    // also says how large ours is at most.
    match config.client_max_window_bits {
        15 => offer.push_str("; client_max_window_bits"),
        bits => offer.push_str(&format!("; client_max_window_bits={bits}")),
    }
    if let Some(bits) = config.server_max_window_bits {
        offer.push_str(&format!("; server_max_window_bits={bits}"));
    }
    if config.client_no_context_takeover {
        offer.push_str("; client_no_context_takeover");
    }
    if config.server_no_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    offer
}

/// Checks the server's acceptance (one element of `Sec-WebSocket-Extensions`,
/// name included) against `config`, the offer it answers.
pub(crate) fn negotiate(config: &DeflateConfig, accepted: &str) -> Result<DeflateParams, DeflateNegotiationError> {
    let mut params = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: config.client_no_context_takeover,
        server_max_window_bits: 15,
        client_max_window_bits: config.client_max_window_bits,
        client_window_over_granted: None,
    };
    let mut seen: Vec<&str> = Vec::new();
    for param in accepted.split(';').skip(1).map(str::trim) {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(unquote(value.trim()))),
            None => (param, None),
        };
        if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            return Err(DeflateNegotiationError::DuplicateParameter(name.to_owned()));
        }
        seen.push(name);
        let flag = |value: Option<&str>| match value {
            None => Ok(true),
            Some(v) => Err(DeflateNegotiationError::InvalidValue { parameter: name.to_owned(), value: v.to_owned() }),
        };
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => params.server_no_context_takeover = flag(value)?,
            "client_no_context_takeover" => params.client_no_context_takeover = flag(value)?,
            "server_max_window_bits" => {
                let bits = window_bits(name, value)?;
                if config.server_max_window_bits.is_some_and(|asked| bits > asked) {
                    return Err(DeflateNegotiationError::WindowAboveOffer { parameter: name.to_owned(), bits });
                }
                params.server_max_window_bits = bits;
            }
            "client_max_window_bits" => {
                let bits = window_bits(name, value)?;
                if bits > config.client_max_window_bits {
                    // A server that can inflate a larger window can inflate
                    // ours: refusing would only fail (and retry) forever.
                    params.client_window_over_granted = Some(bits);
                } else {
                    params.client_max_window_bits = bits;
                }
            }
            "" => {
                return Err(DeflateNegotiationError::InvalidValue { parameter: String::new(), value: param.to_owned() })
            }
            _ => return Err(DeflateNegotiationError::UnknownParameter(name.to_owned())),
        }
    }
    if config.server_no_context_takeover && !params.server_no_context_takeover {
        return Err(DeflateNegotiationError::NotGranted("server_no_context_takeover"));
    }
    if config.server_max_window_bits.is_some() && !seen.iter().any(|s| s.eq_ignore_ascii_case("server_max_window_bits"))
    {
        return Err(DeflateNegotiationError::NotGranted("server_max_window_bits"));
    }
    Ok(params)
}

/// A parameter value may be a quoted string (RFC 7692 §7.1, RFC 7230 §3.2.6).
fn unquote(value: &str) -> &str {
    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value)
}

fn window_bits(name: &str, value: Option<&str>) -> Result<u8, DeflateNegotiationError> {
    let invalid = || DeflateNegotiationError::InvalidValue {
        parameter: name.to_owned(),
        value: value.unwrap_or_default().to_owned(),
    };
    // 1*DIGIT with a value from 8 to 15 and no leading zero (RFC 7692 §7.1.2).
    let v = value.ok_or_else(invalid)?;
    if v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    v.parse::<u8>().ok().filter(|b| (8..=15).contains(b)).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DeflateConfig {
        DeflateConfig::default()
    }

    #[test]
    fn offers_carry_each_setting() {
        assert_eq!(offer(&config()), "permessage-deflate; client_max_window_bits=12");
        let all = DeflateConfig {
            client_max_window_bits: 15,
            server_max_window_bits: Some(10),
            client_no_context_takeover: true,
            server_no_context_takeover: true,
            ..config()
        };
        assert_eq!(
            offer(&all),
            "permessage-deflate; client_max_window_bits; server_max_window_bits=10; \
             client_no_context_takeover; server_no_context_takeover"
        );
    }

    #[test]
    fn answers_inside_the_offer_are_taken() {
        let p = negotiate(&config(), "permessage-deflate").unwrap();
        assert_eq!(
            p,
            DeflateParams {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                server_max_window_bits: 15,
                client_max_window_bits: 12,
                client_window_over_granted: None,
            }
        );
        let p = negotiate(
            &config(),
            "permessage-deflate; Server_No_Context_Takeover; client_no_context_takeover; \
             server_max_window_bits=\"9\"; client_max_window_bits=8",
        )
        .unwrap();
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!((p.server_max_window_bits, p.client_max_window_bits), (9, 8));
        let asked = DeflateConfig { server_max_window_bits: Some(10), server_no_context_takeover: true, ..config() };
        let p = negotiate(&asked, "permessage-deflate; server_max_window_bits=10; server_no_context_takeover").unwrap();
        assert_eq!(p.server_max_window_bits, 10);
    }

    #[test]
    fn a_client_window_above_the_offer_is_taken_and_ours_kept() {
        // What some deployed servers answer whatever was offered.
        let p = negotiate(&config(), "permessage-deflate; client_max_window_bits=15").unwrap();
        assert_eq!(p.client_max_window_bits, 12, "we compress with the window we offered");
        assert_eq!(p.client_window_over_granted, Some(15), "and the server's answer is on record");
        let p = negotiate(&config(), "permessage-deflate; client_max_window_bits=12").unwrap();
        assert_eq!((p.client_max_window_bits, p.client_window_over_granted), (12, None));
        let p = negotiate(&config(), "permessage-deflate; client_max_window_bits=9").unwrap();
        assert_eq!((p.client_max_window_bits, p.client_window_over_granted), (9, None));
    }

    #[test]
    fn answers_that_break_the_offer_are_refused_by_name() {
        use DeflateNegotiationError::*;
        let asked = DeflateConfig { server_max_window_bits: Some(10), server_no_context_takeover: true, ..config() };
        let cases: &[(&DeflateConfig, &str, DeflateNegotiationError)] = &[
            (&config(), "permessage-deflate; x=1", UnknownParameter("x".into())),
            (
                &config(),
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                DuplicateParameter("server_no_context_takeover".into()),
            ),
            (
                &config(),
                "permessage-deflate; server_no_context_takeover=1",
                InvalidValue { parameter: "server_no_context_takeover".into(), value: "1".into() },
            ),
            (
                &config(),
                "permessage-deflate; server_max_window_bits",
                InvalidValue { parameter: "server_max_window_bits".into(), value: String::new() },
            ),
            (
                &config(),
                "permessage-deflate; server_max_window_bits=7",
                InvalidValue { parameter: "server_max_window_bits".into(), value: "7".into() },
            ),
            (
                &config(),
                "permessage-deflate; server_max_window_bits=010",
                InvalidValue { parameter: "server_max_window_bits".into(), value: "010".into() },
            ),
            (
                &config(),
                "permessage-deflate; client_max_window_bits=+9",
                InvalidValue { parameter: "client_max_window_bits".into(), value: "+9".into() },
            ),
            (
                &asked,
                "permessage-deflate; server_max_window_bits=11; server_no_context_takeover",
                WindowAboveOffer { parameter: "server_max_window_bits".into(), bits: 11 },
            ),
            (&asked, "permessage-deflate; server_max_window_bits=10", NotGranted("server_no_context_takeover")),
            (&asked, "permessage-deflate; server_no_context_takeover", NotGranted("server_max_window_bits")),
            (&config(), "permessage-deflate;", InvalidValue { parameter: String::new(), value: String::new() }),
        ];
        for (config, answer, want) in cases {
            assert_eq!(negotiate(config, answer).as_ref(), Err(want), "{answer}");
        }
    }
}
