//! A user agent's checks on a parsed message (RFC 3261 §8.2, §18.1.2, §18.3; RFC 4475).

use bytes::Bytes;

use super::typed::{self, Header};
use super::{HeaderName, Message, ParseError, ParseLimits, Uri, Verdict, split_list};

/// Option tags a Tincan user agent understands in `Require` (RFC 3261 §8.2.2.3), and lists
/// in the `Supported` of its REGISTERs: only extensions it implements.
///
/// - `outbound`: RFC 5626 client behaviour (instance id, reg-id, flows and their keep-alives).
/// - `path`: RFC 3327's user agent side, which RFC 5626 §4.2.1 makes a UA announce: the UA
///   lets the registrar's edge proxies record a Path and asks nothing more of the registrar.
///
/// - `timer`: RFC 4028 session timers (`dialog::invite`): a call asks for and grants a
///   Session-Expires and is refreshed, by UPDATE or re-INVITE.
/// - `100rel`: RFC 3262 reliable provisional responses (`dialog::invite`): PRACK with
///   RSeq/RAck, both as caller and callee.
/// - `replaces`: RFC 3891, an INVITE that takes over one of our calls (`dialog::refer`, the
///   phone's transfer).
/// - `norefersub`: RFC 4488, a REFER without an implicit subscription (`Refer-Sub: false`).
pub const SUPPORTED_EXTENSIONS: &[&str] = &[
    "outbound",
    "path",
    "timer",
    "100rel",
    "replaces",
    "norefersub",
];

/// What [`Message::check`] accepts.
#[derive(Debug, Clone, Copy)]
pub struct CheckConfig<'a> {
    /// Option tags understood in `Require`; others get 420 Bad Extension.
    pub supported: &'a [&'a str],
    /// Request-URI schemes served; others get 416 Unsupported URI Scheme.
    pub schemes: &'a [&'a str],
}

impl Default for CheckConfig<'_> {
    fn default() -> Self {
        CheckConfig {
            supported: SUPPORTED_EXTENSIONS,
            schemes: &["sip", "sips", "tel"],
        }
    }
}

/// The verdict a Tincan user agent gives one datagram: accept it, reject it with a status
/// (requests), or drop it (responses and unanswerable bytes).
///
/// ```
/// use tincan_sip::message::{verdict, Verdict};
/// let v = verdict(b"OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n");
/// assert!(matches!(v, Verdict::Reject { status: 505, .. }));
/// ```
pub fn verdict(datagram: &[u8]) -> Verdict {
    diagnose(datagram).0
}

/// Like [`verdict`], with the defect that decided it (`None` when accepted).
pub fn diagnose(datagram: &[u8]) -> (Verdict, Option<ParseError>) {
    let looks_like_request = {
        let start = datagram
            .iter()
            .position(|&c| c != b'\r' && c != b'\n')
            .unwrap_or(datagram.len());
        !datagram[start..]
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    };
    let (is_request, error) =
        match Message::parse_lenient(Bytes::copy_from_slice(datagram), &ParseLimits::default()) {
            Err(e) => (looks_like_request, e),
            Ok((msg, Some(defect))) => (msg.is_request(), defect),
            Ok((msg, None)) => match msg.check(&CheckConfig::default()) {
                Ok(()) => return (Verdict::Accept, None),
                Err(e) => (msg.is_request(), e),
            },
        };
    (error.verdict(is_request), Some(error))
}

/// Headers whose list may be empty by grammar (`Allow:` with no method).
fn may_be_empty(name: HeaderName) -> bool {
    matches!(
        name,
        HeaderName::Allow
            | HeaderName::Supported
            | HeaderName::Accept
            | HeaderName::AcceptEncoding
            | HeaderName::AcceptLanguage
            | HeaderName::Unsupported
    )
}

fn validate_value(name: HeaderName, v: &str) -> Result<(), ParseError> {
    fn p<'a, T: Header<'a>>(v: &'a str) -> Result<(), ParseError> {
        T::parse(v).map(drop).map_err(ParseError::from)
    }
    /// The URI of a name-addr header's value (typed reads parse it only when asked).
    fn uri(name: HeaderName, a: &typed::NameAddr<'_>) -> Result<(), ParseError> {
        a.uri().map(drop).map_err(|_| {
            ParseError::from(typed::HeaderError {
                name: name.as_str(),
                reason: "URI",
            })
        })
    }
    /// A name-addr header, its URI included.
    fn na(name: HeaderName, v: &str) -> Result<(), ParseError> {
        uri(name, &typed::NameAddr::parse_as(name, v)?)
    }
    match name {
        HeaderName::Via => p::<typed::Via<'_>>(v),
        HeaderName::From => na(name, v),
        HeaderName::To => na(name, v),
        HeaderName::CallId => p::<typed::CallId<'_>>(v),
        HeaderName::CSeq => p::<typed::CSeq>(v),
        HeaderName::Contact => match typed::Contact::parse(v)? {
            typed::Contact::Star => Ok(()),
            typed::Contact::Address(a) => uri(name, &a),
        },
        HeaderName::MaxForwards => p::<typed::MaxForwards>(v),
        HeaderName::Route => na(name, v),
        HeaderName::RecordRoute => na(name, v),
        HeaderName::Path => na(name, v),
        HeaderName::ServiceRoute => na(name, v),
        HeaderName::ContentLength => p::<typed::ContentLength>(v),
        HeaderName::ContentType => p::<typed::ContentType<'_>>(v),
        HeaderName::Expires => p::<typed::Expires>(v),
        HeaderName::MinExpires => p::<typed::MinExpires>(v),
        HeaderName::WwwAuthenticate => p::<typed::WwwAuthenticate<'_>>(v),
        HeaderName::ProxyAuthenticate => p::<typed::ProxyAuthenticate<'_>>(v),
        HeaderName::Authorization => p::<typed::Authorization<'_>>(v),
        HeaderName::ProxyAuthorization => p::<typed::ProxyAuthorization<'_>>(v),
        HeaderName::AuthenticationInfo => p::<typed::AuthenticationInfo<'_>>(v),
        HeaderName::Allow => p::<typed::Allow<'_>>(v),
        HeaderName::Supported => p::<typed::Supported<'_>>(v),
        HeaderName::Require => p::<typed::Require<'_>>(v),
        HeaderName::ProxyRequire => p::<typed::ProxyRequire<'_>>(v),
        HeaderName::Unsupported => p::<typed::Unsupported<'_>>(v),
        HeaderName::Event => p::<typed::Event<'_>>(v),
        HeaderName::AllowEvents => p::<typed::AllowEvents<'_>>(v),
        HeaderName::SubscriptionState => p::<typed::SubscriptionState<'_>>(v),
        HeaderName::ReferTo => na(name, v),
        HeaderName::ReferredBy => na(name, v),
        HeaderName::Replaces => p::<typed::Replaces<'_>>(v),
        HeaderName::SessionExpires => p::<typed::SessionExpires<'_>>(v),
        HeaderName::MinSe => p::<typed::MinSe<'_>>(v),
        HeaderName::RSeq => p::<typed::RSeq>(v),
        HeaderName::RAck => p::<typed::RAck>(v),
        HeaderName::RetryAfter => p::<typed::RetryAfter<'_>>(v),
        HeaderName::Warning => p::<typed::Warning<'_>>(v),
        HeaderName::Date => p::<typed::Date>(v),
        HeaderName::Accept => p::<typed::Accept<'_>>(v),
        HeaderName::ContentEncoding => p::<typed::ContentEncoding<'_>>(v),
        HeaderName::ReplyTo => na(name, v),
        _ => Ok(()),
    }
}

pub(crate) fn check(msg: &Message, config: &CheckConfig<'_>) -> Result<(), ParseError> {
    if let Some(uri) = msg.uri_text() {
        super::parse::check_request_uri(uri.as_bytes()).map_err(ParseError::RequestUri)?;
    }
    // Mandatory headers (§8.1.1; a response carries the same five, §8.2.6.2).
    for (name, label) in [
        (HeaderName::Via, "Via"),
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::CSeq, "CSeq"),
    ] {
        if msg.entries(name).next().is_none() {
            return Err(ParseError::Missing(label));
        }
    }
    // Single-value headers that appear more than once (RFC 4475 §3.3.8 multi01).
    for (i, e) in msg.headers.iter().enumerate() {
        if e.name.is_single() && msg.headers[..i].iter().any(|p| p.name == e.name) {
            return Err(ParseError::Multiple(e.name.as_str()));
        }
    }
    // Every known header's grammar.
    for e in &msg.headers {
        if e.name == HeaderName::Other {
            continue;
        }
        let text = msg.entry_text(e)?;
        if e.name.is_list() {
            if super::lex::trim_lws(text).is_empty() {
                if may_be_empty(e.name) {
                    continue;
                }
                return Err(typed::HeaderError {
                    name: e.name.as_str(),
                    reason: "empty value",
                }
                .into());
            }
            for v in split_list(text) {
                validate_value(e.name, v?)?;
            }
        } else {
            validate_value(e.name, text)?;
        }
    }
    let cseq = msg.cseq().ok_or(ParseError::Missing("CSeq"))??;
    let Some(method) = msg.method() else {
        return Ok(());
    };
    if cseq.method != *method {
        return Err(ParseError::CSeqMismatch {
            method: method.to_string(),
            cseq: cseq.method.to_string(),
            unknown_method: !method.is_known(),
        });
    }
    let uri = msg.uri().ok_or(ParseError::RequestUri("does not parse"))?;
    let scheme = uri.scheme();
    if !config
        .schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        let scheme = match &uri {
            Uri::Other(o) => o.scheme.to_string(),
            _ => scheme.to_string(),
        };
        return Err(ParseError::UnsupportedScheme(scheme));
    }
    // §8.2.2.3: Require is not checked for ACK and CANCEL.
    if !matches!(method, typed::Method::Ack | typed::Method::Cancel) {
        let unknown: Vec<String> = msg
            .get_all::<typed::Require<'_>>()
            .filter_map(Result::ok)
            .filter(|t| {
                !config
                    .supported
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(t.as_str()))
            })
            .map(|t| t.as_str().to_owned())
            .collect();
        if !unknown.is_empty() {
            return Err(ParseError::BadExtension(unknown));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(extra: &str, from: &str, to: &str, contact: &str) -> Vec<u8> {
        format!(
            "OPTIONS sip:bob@example.com SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\
             From: {from};tag=1\r\nTo: {to}\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\
             Contact: {contact}\r\n{extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    /// Typed reads leave a name-addr's URI unparsed; the check still parses every one.
    #[test]
    fn every_name_addr_uri_is_checked() {
        let good = "<sip:a@example.com>";
        let bad = "<sip:@example.com>";
        assert_eq!(verdict(&request("", good, good, good)), Verdict::Accept);
        assert_eq!(verdict(&request("", good, good, "*")), Verdict::Accept);
        for msg in [
            request("", bad, good, good),
            request("", good, bad, good),
            request("", good, good, bad),
            request("", "sip:a@b c", good, good),
            request("Route: <sip:p1;lr>, <sip:@p2>\r\n", good, good, good),
            request("Record-Route: <sip:p1:99999;lr>\r\n", good, good, good),
        ] {
            let (v, e) = diagnose(&msg);
            assert!(
                matches!(v, Verdict::Reject { status: 400, .. }),
                "{}: {v:?} {e:?}",
                String::from_utf8_lossy(&msg)
            );
        }
    }
}
