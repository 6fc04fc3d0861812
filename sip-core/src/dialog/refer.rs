//! Call transfer helpers: REFER (RFC 3515), Referred-By (RFC 3892), Replaces (RFC 3891) and
//! `Refer-Sub` (RFC 4488).
//!
//! A transfer runs inside the call's INVITE dialog: the transferor sends a REFER whose
//! `Refer-To` names the new target, the transferee answers 202 and reports the new call's
//! progress in NOTIFYs (`Event: refer`) whose bodies are `message/sipfrag` status lines
//! (`SIP/2.0 180 Ringing`). These are the pure pieces of that exchange: building and reading
//! sipfrag bodies, `Refer-To` targets (with an embedded `Replaces` for an attended transfer)
//! and the `Refer-Sub` answer. The state of a transfer lives with the call that owns it.
//!
//! ```
//! use tincan_sip::dialog::refer::{ReferTarget, parse_sipfrag, sipfrag};
//! let body = sipfrag(180, "Ringing");
//! assert_eq!(parse_sipfrag(&body), Some((180, "Ringing".to_owned())));
//! let t = ReferTarget::parse("<sip:carol@example.com?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>")
//!     .unwrap();
//! assert_eq!(t.uri.to_string(), "sip:carol@example.com");
//! assert_eq!(t.replaces.as_deref(), Some("abc@h;to-tag=1;from-tag=2"));
//! ```

use bytes::Bytes;

use crate::message::typed::{Header, NameAddr, Replaces};
use crate::message::{HeaderName, Message, Uri};

/// The event package of a REFER's implicit subscription (RFC 3515 §2.4.4).
pub const REFER_EVENT: &str = "refer";

/// The body type of a transfer NOTIFY (RFC 3515 §2.4.5, RFC 3420).
pub const SIPFRAG: &str = "message/sipfrag;version=2.0";

/// The `Refer-Sub` header (RFC 4488 §4).
pub const REFER_SUB: &str = "Refer-Sub";

/// How long the transferee says the implicit subscription lasts, in seconds (RFC 3515
/// §2.4.4 leaves it to the notifier).
pub const SUBSCRIPTION_SECONDS: u32 = 60;

/// A `message/sipfrag` body holding only a status line (RFC 3515 §2.4.5).
pub fn sipfrag(status: u16, reason: &str) -> Bytes {
    Bytes::from(format!("SIP/2.0 {status} {reason}\r\n"))
}

/// The status code and reason phrase of a sipfrag body's status line; `None` when the body
/// does not start with one.
pub fn parse_sipfrag(body: &[u8]) -> Option<(u16, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.lines().next()?.trim();
    let rest = line.strip_prefix("SIP/2.0 ")?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let status: u16 = code.parse().ok()?;
    (100..700)
        .contains(&status)
        .then(|| (status, reason.trim().to_owned()))
}

/// Whether a NOTIFY belongs to a REFER subscription (`Event: refer`, with or without an
/// `id` parameter).
pub fn is_refer_notify(notify: &Message) -> bool {
    notify
        .get::<crate::message::typed::Event<'_>>()
        .and_then(Result::ok)
        .is_some_and(|e| e.package.eq_ignore_ascii_case(REFER_EVENT))
}

/// Whether a NOTIFY ends its subscription (`Subscription-State: terminated`).
pub fn ends_subscription(notify: &Message) -> bool {
    notify
        .get::<crate::message::typed::SubscriptionState<'_>>()
        .and_then(Result::ok)
        .is_some_and(|s| s.state.eq_ignore_ascii_case("terminated"))
}

/// Whether a 2xx to our REFER says there is no implicit subscription (`Refer-Sub: false`,
/// RFC 4488 §4): no NOTIFY will come.
pub fn refer_sub_refused(response: &Message) -> bool {
    response
        .header_lines_named(REFER_SUB)
        .filter_map(Result::ok)
        .any(|v| v.trim().eq_ignore_ascii_case("false"))
}

/// Where a REFER sends the transferee: the `Refer-To` URI without its headers, and the
/// `Replaces` value embedded in them (RFC 3891 §7), unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferTarget {
    /// The URI to call.
    pub uri: Uri<'static>,
    /// The `Replaces` header the new INVITE carries (attended transfer).
    pub replaces: Option<String>,
}

/// Why a `Refer-To` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferToError {
    /// No `Refer-To`, or more than one (RFC 3515 §2.4.1).
    #[error("a REFER needs exactly one Refer-To")]
    Missing,
    /// The value is not a name-addr with a SIP URI.
    #[error("bad Refer-To: {0}")]
    Bad(String),
}

impl ReferTarget {
    /// Reads a `Refer-To` value.
    ///
    /// # Errors
    ///
    /// [`ReferToError::Bad`] for anything but a name-addr around a `sip:`/`sips:` URI, or an
    /// embedded `Replaces` that does not parse.
    pub fn parse(value: &str) -> Result<ReferTarget, ReferToError> {
        let bad = |e: &dyn std::fmt::Display| ReferToError::Bad(e.to_string());
        let na = NameAddr::parse_as(HeaderName::ReferTo, value).map_err(|e| bad(&e))?;
        let uri = na.uri().map_err(|e| bad(&e))?;
        let Uri::Sip(mut sip) = uri.into_owned() else {
            return Err(ReferToError::Bad("not a sip: URI".to_owned()));
        };
        let mut replaces = None;
        if let Some(headers) = sip.headers.take() {
            for pair in headers.split('&') {
                let (name, v) = pair.split_once('=').unwrap_or((pair, ""));
                if name.eq_ignore_ascii_case("Replaces") {
                    let v = unescape(v).ok_or_else(|| bad(&"bad escape in Replaces"))?;
                    Replaces::parse(&v).map_err(|e| bad(&e))?;
                    replaces = Some(v);
                }
            }
        }
        Ok(ReferTarget {
            uri: Uri::Sip(sip),
            replaces,
        })
    }

    /// The target of a REFER request.
    ///
    /// # Errors
    ///
    /// [`ReferToError::Missing`] without exactly one `Refer-To`; see [`ReferTarget::parse`].
    pub fn of_request(refer: &Message) -> Result<ReferTarget, ReferToError> {
        let mut all = refer.header_lines(HeaderName::ReferTo);
        let (Some(Ok(value)), None) = (all.next(), all.next()) else {
            return Err(ReferToError::Missing);
        };
        ReferTarget::parse(value)
    }
}

/// A `Refer-To` value for an attended transfer (RFC 3891 §7): `uri` with the dialog to
/// replace as an escaped `Replaces` header. `to_tag` and `from_tag` are as the *target*
/// sees the dialog (its To and From tags).
pub fn refer_to_replacing(uri: &Uri<'_>, call_id: &str, to_tag: &str, from_tag: &str) -> String {
    let replaces = format!("{call_id};to-tag={to_tag};from-tag={from_tag}");
    let mut escaped = String::new();
    for b in replaces.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            escaped.push(char::from(b));
        } else {
            escaped.push_str(&format!("%{b:02X}"));
        }
    }
    let mut uri = uri.clone().into_owned();
    if let Uri::Sip(s) = &mut uri {
        s.headers = None;
    }
    format!("<{uri}?Replaces={escaped}>")
}

/// Undoes `%HH` escapes; `None` on a broken escape or bytes that are not UTF-8.
fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sipfrag_round_trips_and_refuses_garbage() {
        assert_eq!(&sipfrag(100, "Trying")[..], b"SIP/2.0 100 Trying\r\n");
        assert_eq!(
            parse_sipfrag(b"SIP/2.0 603 Declined\r\nContent-Length: 0\r\n"),
            Some((603, "Declined".to_owned()))
        );
        assert_eq!(parse_sipfrag(b"SIP/2.0 200"), Some((200, String::new())));
        assert_eq!(parse_sipfrag(b"SIP/2.0 99 Low"), None);
        assert_eq!(parse_sipfrag(b"INVITE sip:a@b SIP/2.0"), None);
        assert_eq!(parse_sipfrag(&[0xff, 0xfe]), None);
        assert_eq!(parse_sipfrag(b""), None);
    }

    #[test]
    fn refer_to_with_replaces_round_trips() {
        let uri = Uri::parse("sip:carol@10.0.0.3:5060").unwrap();
        let v = refer_to_replacing(&uri, "x@y", "t1", "f2");
        assert_eq!(
            v,
            "<sip:carol@10.0.0.3:5060?Replaces=x%40y%3Bto-tag%3Dt1%3Bfrom-tag%3Df2>"
        );
        let t = ReferTarget::parse(&v).unwrap();
        assert_eq!(t.uri.to_string(), "sip:carol@10.0.0.3:5060");
        assert_eq!(t.replaces.as_deref(), Some("x@y;to-tag=t1;from-tag=f2"));
        let plain = ReferTarget::parse("Carol <sip:carol@example.com>").unwrap();
        assert_eq!(plain.replaces, None);
        assert!(ReferTarget::parse("<tel:+123>").is_err());
        assert!(ReferTarget::parse("<sip:a@b?Replaces=%zz>").is_err());
        assert!(ReferTarget::parse("garbage <").is_err());
    }
}
