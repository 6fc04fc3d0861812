//! Typed header values (RFC 3261 §20 and the extension RFCs).
//!
//! Each type parses one header value from the message's text without copying (fields are
//! `Cow` borrowing the received bytes) and prints itself with `Display` in canonical form, so
//! `parse -> print -> parse` gives the same value. Build values for sending with the public
//! fields and constructors; owned values are `'static`.

use std::borrow::Cow;
use std::fmt;

use super::header::HeaderName;
use super::lex::{self, is_token, is_token_char, trim_lws};
use super::params::{
    Params, plain_header_params, validate_header_params, validate_header_params_with,
};
use super::uri::{Host, SipUri, Uri, UriError, scan_host_port, split_host_port};

/// A header value that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad {name} header: {reason}")]
pub struct HeaderError {
    /// The header's canonical name.
    pub name: &'static str,
    /// What is wrong, in a few words.
    pub reason: &'static str,
}

/// A header with a typed value.
pub trait Header<'a>: Sized + fmt::Display {
    /// The header this type reads.
    const NAME: HeaderName;
    /// Parses one value (for list headers, one element of the comma-separated list). Line
    /// folds are already replaced with spaces.
    fn parse(value: &'a str) -> Result<Self, HeaderError>;

    /// For list headers: parses a whole line in one pass when it holds a single value in a
    /// shape the type reads without splitting (no comma outside quotes), giving what
    /// [`parse`](Self::parse) gives on that one element. `None` (the default) sends the line
    /// through the general path: split at commas, then `parse` each element.
    #[inline]
    fn parse_line(line: &'a str) -> Option<Self> {
        let _ = line;
        None
    }
}

fn err(name: HeaderName, reason: &'static str) -> HeaderError {
    HeaderError {
        name: name.as_str(),
        reason,
    }
}

fn owned(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

/// Splits `value;params` at the first top-level `;`, validating the params.
fn split_params(name: HeaderName, s: &str) -> Result<(&str, Params<'_>), HeaderError> {
    split_params_with(name, s, |_, _, _| Ok(()))
}

/// [`split_params`], with `check` applied to each parameter in the validating pass.
fn split_params_with(
    name: HeaderName,
    s: &str,
    check: impl FnMut(&str, Option<&str>, bool) -> Result<(), &'static str>,
) -> Result<(&str, Params<'_>), HeaderError> {
    match lex::top_level(s, b';').next() {
        Some(head) if head.len() < s.len() => {
            let rest = &s[head.len() + 1..];
            validate_header_params_with(rest, check).map_err(|r| err(name, r))?;
            Ok((trim_lws(head), Params::from_raw(Cow::Borrowed(rest))))
        }
        _ => Ok((trim_lws(s), Params::default())),
    }
}

// ------------------------------------------------------------------------------------ Method

/// A request method (RFC 3261 §7.1); extension methods are tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// OPTIONS (RFC 3261).
    Options,
    /// REGISTER (RFC 3261).
    Register,
    /// PRACK (RFC 3262).
    Prack,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// PUBLISH (RFC 3903).
    Publish,
    /// INFO (RFC 6086).
    Info,
    /// REFER (RFC 3515).
    Refer,
    /// MESSAGE (RFC 3428).
    Message,
    /// UPDATE (RFC 3311).
    Update,
    /// Any other method (a token), case-sensitive.
    Extension(Box<str>),
}

impl Method {
    /// Reads a method token (case-sensitive, RFC 3261 §7.1). `None` if not a token.
    pub fn parse(s: &str) -> Option<Method> {
        Self::from_bytes(s.as_bytes())
    }

    /// [`parse`](Self::parse) on bytes: a known method without a UTF-8 check (the request
    /// line's method as received).
    #[inline]
    pub(crate) fn from_bytes(b: &[u8]) -> Option<Method> {
        Some(match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"OPTIONS" => Method::Options,
            b"REGISTER" => Method::Register,
            b"PRACK" => Method::Prack,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"PUBLISH" => Method::Publish,
            b"INFO" => Method::Info,
            b"REFER" => Method::Refer,
            b"MESSAGE" => Method::Message,
            b"UPDATE" => Method::Update,
            other => match std::str::from_utf8(other) {
                Ok(s) if is_token(s) => Method::Extension(s.into()),
                _ => return None,
            },
        })
    }

    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Prack => "PRACK",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Info => "INFO",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Update => "UPDATE",
            Method::Extension(m) => m,
        }
    }

    /// True for methods defined by RFC 3261 or a standard extension Tincan knows.
    pub fn is_known(&self) -> bool {
        !matches!(self, Method::Extension(_))
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// --------------------------------------------------------------------------------------- Via

/// One Via value (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// Protocol name and version, normally `SIP/2.0`.
    pub protocol: Cow<'a, str>,
    /// Transport token (`UDP`, `TCP`, `TLS`, `SCTP`, `WS`... or an extension), as written.
    pub transport: Cow<'a, str>,
    /// sent-by host.
    pub host: Host<'a>,
    /// sent-by port.
    pub port: Option<u16>,
    /// via-params.
    pub params: Params<'a>,
}

/// The RFC 3261 branch magic cookie (§8.1.1.7).
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";

impl<'a> Via<'a> {
    /// A `SIP/2.0/<transport>` Via for `host:port` with a branch.
    pub fn new(transport: &str, host: Host<'a>, port: Option<u16>, branch: &str) -> Via<'a> {
        let mut params = Params::default();
        params.set("branch", Some(branch));
        Via {
            protocol: Cow::Borrowed("SIP/2.0"),
            transport: Cow::Owned(transport.to_ascii_uppercase()),
            host,
            port,
            params,
        }
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// The `received` parameter (RFC 3261 §18.2.1), brackets of an IPv6 value removed.
    pub fn received(&self) -> Option<&str> {
        self.params
            .get("received")
            .flatten()
            .map(|r| r.trim_start_matches('[').trim_end_matches(']'))
    }

    /// `rport` (RFC 3581): `Some(None)` when present without a value.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| lex::parse_decimal(p, 65535).map(|p| p as u16)))
    }

    /// Detaches from the message buffer.
    pub fn into_owned(self) -> Via<'static> {
        Via {
            protocol: owned(self.protocol),
            transport: owned(self.transport),
            host: self.host.into_owned(),
            port: self.port,
            params: self.params.into_owned(),
        }
    }
}

impl<'a> Header<'a> for Via<'a> {
    const NAME: HeaderName = HeaderName::Via;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        match Via::parse_plain(value) {
            Some(via) => Ok(via),
            None => Via::parse_general(value),
        }
    }

    /// The one-pass path accepts no comma but inside a quoted parameter value, no white
    /// space at either end: a line it reads is one element, as split and trimmed.
    #[inline]
    fn parse_line(line: &'a str) -> Option<Self> {
        // White space at an end (a value set with it: received lines are trimmed) goes the
        // general way, which trims the element.
        match line.as_bytes() {
            [first, .., last] if !lex::is_wsp(*first) && !lex::is_wsp(*last) => {
                Via::parse_plain(line)
            }
            _ => None,
        }
    }
}

/// For the fuzz targets: panics when the one-pass Via path answers differently from the
/// general one on `value`.
pub(crate) fn check_plain_via(value: &str) {
    if let Some(plain) = Via::parse_plain(value) {
        assert_eq!(
            Ok(plain),
            Via::parse_general(value),
            "the one-pass Via path differs on {value:?}"
        );
    }
}

impl<'a> Via<'a> {
    /// Any Via value, or the error that makes it invalid.
    fn parse_general(value: &'a str) -> Result<Via<'a>, HeaderError> {
        let n = HeaderName::Via;
        // The via-params with rules of their own are checked in the validating pass.
        let (head, params) = split_params_with(n, value, check_via_param)?;
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, LWS around "/".
        let (name, version, rest) = match head.strip_prefix("SIP/2.0/") {
            Some(rest) => ("SIP", "2.0", trim_lws(rest)),
            None => {
                let mut parts = head.splitn(3, '/');
                let name = trim_lws(parts.next().ok_or_else(|| err(n, "sent-protocol"))?);
                let version = trim_lws(parts.next().ok_or_else(|| err(n, "sent-protocol"))?);
                let rest = trim_lws(parts.next().ok_or_else(|| err(n, "sent-protocol"))?);
                (name, version, rest)
            }
        };
        if !is_token(name) || !is_token(version) {
            return Err(err(n, "sent-protocol"));
        }
        let split = lex::find_wsp(rest).ok_or_else(|| err(n, "missing sent-by"))?;
        let transport = &rest[..split];
        let sent_by = trim_lws(&rest[split..]);
        if !is_token(transport) {
            return Err(err(n, "transport"));
        }
        let (host, port) = split_host_port(sent_by).map_err(|_| err(n, "sent-by"))?;
        let protocol = if name.eq_ignore_ascii_case("SIP") && version == "2.0" {
            Cow::Borrowed("SIP/2.0")
        } else {
            Cow::Owned(format!("{name}/{version}"))
        };
        Ok(Via {
            protocol,
            transport: Cow::Borrowed(transport),
            host,
            port,
            params,
        })
    }
}

impl<'a> Via<'a> {
    /// The usual Via in one pass: `SIP/2.0/TRANSPORT host[:port][;params]` with no white
    /// space but the one space, no IPv6 reference, plain parameters. `None` when the value
    /// needs the general parser (which also reports every error).
    fn parse_plain(value: &'a str) -> Option<Via<'a>> {
        let rest = value.strip_prefix("SIP/2.0/")?;
        let b = rest.as_bytes();
        let transport_end = b.iter().position(|&c| !lex::is(c, lex::class::TOKEN))?;
        if transport_end == 0 || b[transport_end] != b' ' {
            return None;
        }
        // sent-by: host characters, then digits after a ':' (what split_host_port and
        // Host::parse accept of such text, read in the same pass).
        let (host, port, i) = scan_host_port(rest, transport_end + 1)?;
        let params = match b.get(i) {
            None => None,
            Some(b';') => Some(&rest[i + 1..]),
            Some(_) => return None,
        };
        if let Some(params) = params {
            validate_header_params_with(params, check_via_param).ok()?;
        }
        let params = params.unwrap_or_default();
        Some(Via {
            protocol: Cow::Borrowed("SIP/2.0"),
            transport: Cow::Borrowed(&rest[..transport_end]),
            host,
            port,
            params: Params::from_raw(Cow::Borrowed(params)),
        })
    }
}

/// The via-params of RFC 3261 §20.42 and RFC 3581 with a grammar of their own; `token` says
/// whether the value is a token (the validating pass knows it).
#[inline]
fn check_via_param(name: &str, v: Option<&str>, token: bool) -> Result<(), &'static str> {
    let is = |known: &str| lex::eq_ignore_case(name.as_bytes(), known.as_bytes());
    let ok = if is("branch") {
        token
    } else if is("rport") {
        v.is_none_or(|v| lex::parse_decimal(v, 65535).is_some())
    } else if is("received") || is("ttl") || is("maddr") {
        check_via_address_param(name, v)
    } else {
        true
    };
    if ok { Ok(()) } else { Err("via-param") }
}

/// [`check_via_param`] for `received`, `ttl` and `maddr`.
#[inline(never)]
fn check_via_address_param(name: &str, v: Option<&str>) -> bool {
    if name.eq_ignore_ascii_case("received") {
        v.is_some_and(|v| {
            let v = v.trim_start_matches('[').trim_end_matches(']');
            v.parse::<std::net::IpAddr>().is_ok()
        })
    } else if name.eq_ignore_ascii_case("ttl") {
        v.and_then(|v| lex::parse_decimal(v, 255)).is_some()
    } else {
        v.is_some_and(|v| Host::parse(v).is_ok())
    }
}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.protocol, self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

// ---------------------------------------------------------------------------------- NameAddr

/// `name-addr` or `addr-spec` with header parameters (From, To, Contact, Route, Record-Route,
/// Refer-To, Referred-By, Reply-To, Path, Service-Route).
///
/// The URI is kept as text and parsed when it is read ([`NameAddr::uri`]), as Kamailio and
/// reSIProcate do: reading a From tag or a Contact's `expires` does not pay for parsing a URI
/// nobody looks at. [`Message::check`](super::Message::check) parses every name-addr URI of a
/// received message, so a message it accepts has URIs that parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name, unquoted (quoted-pairs undone).
    pub display_name: Option<Cow<'a, str>>,
    /// The URI's text (inside `<>` when it had them).
    uri: Cow<'a, str>,
    /// Header parameters (`tag`, `q`, `expires`...), not URI parameters.
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// A name-addr around `uri` with no display name and no parameters.
    pub fn new(uri: Uri<'_>) -> NameAddr<'a> {
        NameAddr {
            display_name: None,
            uri: Cow::Owned(uri.to_string()),
            params: Params::default(),
        }
    }

    /// The URI, parsed from its text.
    ///
    /// ```
    /// use tincan_sip::message::{HeaderName, typed::NameAddr};
    /// let a = NameAddr::parse_as(HeaderName::To, "Bob <sip:bob@example.com>").unwrap();
    /// assert_eq!(a.uri().unwrap().as_sip().unwrap().host.to_string(), "example.com");
    /// assert!(NameAddr::parse_as(HeaderName::To, "<sip:@x>").unwrap().uri().is_err());
    /// ```
    #[inline]
    pub fn uri(&self) -> Result<Uri<'_>, UriError> {
        Uri::parse(&self.uri)
    }

    /// The URI's text, as received (or as printed by [`NameAddr::new`]/[`NameAddr::set_uri`]).
    pub fn uri_str(&self) -> &str {
        &self.uri
    }

    /// Replaces the URI.
    pub fn set_uri(&mut self, uri: &Uri<'_>) {
        self.uri = Cow::Owned(uri.to_string());
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    /// Detaches from the message buffer.
    pub fn into_owned(self) -> NameAddr<'static> {
        NameAddr {
            display_name: self.display_name.map(owned),
            uri: owned(self.uri),
            params: self.params.into_owned(),
        }
    }

    /// Parses a name-addr / addr-spec with its parameters; `name` is for error messages.
    #[inline]
    pub fn parse_as(name: HeaderName, value: &'a str) -> Result<NameAddr<'a>, HeaderError> {
        match NameAddr::parse_plain(value) {
            Some(plain) => Ok(plain),
            None => NameAddr::parse_general(name, value),
        }
    }

    /// The usual name-addr or addr-spec in one pass: `"display" <uri>`, `token words <uri>`,
    /// `<uri>` or `uri`, then plain parameters, with no quoted-pair in the display name and no
    /// white space at the ends. Gives what [`parse_general`](Self::parse_general) gives, or
    /// `None` when the value needs that path (which also reports every error). Like it, it
    /// leaves the URI as text.
    #[inline]
    fn parse_plain(value: &'a str) -> Option<NameAddr<'a>> {
        let b = value.as_bytes();
        // The display name and the index of the '<'.
        let (display_name, lt) = match *b.first()? {
            b'<' => (None, 0),
            b'"' => {
                // A quoted string without quoted-pair, then white space up to the '<'.
                let close = 1 + lex::find3_short(&b[1..], b'"', b'\\', b'\\')?;
                if b[close] != b'"' {
                    return None;
                }
                let mut lt = close + 1;
                while lt < b.len() && lex::is_wsp(b[lt]) {
                    lt += 1;
                }
                (Some(Cow::Borrowed(&value[1..close])), lt)
            }
            first if lex::is(first, lex::class::TOKEN) => {
                // *(token LWS): token characters and white space up to the '<'.
                let mut lt = 1;
                while lt < b.len() && (lex::is(b[lt], lex::class::TOKEN) || lex::is_wsp(b[lt])) {
                    lt += 1;
                }
                if b.get(lt) != Some(&b'<') {
                    return NameAddr::parse_plain_addr_spec(value);
                }
                let mut end = lt;
                while lex::is_wsp(b[end - 1]) {
                    end -= 1;
                }
                (Some(Cow::Borrowed(&value[..end])), lt)
            }
            _ => return None,
        };
        if b.get(lt) != Some(&b'<') {
            return None;
        }
        // The URI up to the first '>': not empty, no white space at its ends.
        let gt = lt + 1 + lex::find_byte(&value[lt + 1..], b'>')?;
        let uri = &value[lt + 1..gt];
        match uri.as_bytes() {
            [first, .., last] if !lex::is_wsp(*first) && !lex::is_wsp(*last) => {}
            [one] if !lex::is_wsp(*one) => {}
            _ => return None,
        }
        let params = match b.get(gt + 1) {
            None => "",
            Some(b';') if plain_header_params(&value[gt + 2..]) => &value[gt + 2..],
            Some(_) => return None,
        };
        Some(NameAddr {
            display_name,
            uri: Cow::Borrowed(uri),
            params: Params::from_raw(Cow::Borrowed(params)),
        })
    }

    /// [`parse_plain`](Self::parse_plain) of an addr-spec: the URI up to the first `;`
    /// (header parameters follow), no `<` anywhere, no `?` or `,` in the URI.
    #[inline(never)]
    fn parse_plain_addr_spec(value: &'a str) -> Option<NameAddr<'a>> {
        let b = value.as_bytes();
        if lex::find3_short(b, b'<', b'<', b'<').is_some() {
            return None;
        }
        let end = lex::find3_short(b, b';', b' ', b'\t').unwrap_or(b.len());
        if lex::find3_short(&b[..end], b'?', b',', b',').is_some() {
            return None;
        }
        let params = match b.get(end) {
            None => "",
            Some(b';') if plain_header_params(&value[end + 1..]) => &value[end + 1..],
            Some(_) => return None,
        };
        Some(NameAddr {
            display_name: None,
            uri: Cow::Borrowed(&value[..end]),
            params: Params::from_raw(Cow::Borrowed(params)),
        })
    }

    /// Any name-addr or addr-spec, or the error that makes it invalid.
    #[inline(never)]
    fn parse_general(name: HeaderName, value: &'a str) -> Result<NameAddr<'a>, HeaderError> {
        let s = trim_lws(value);
        if s.is_empty() {
            return Err(err(name, "empty value"));
        }
        // A quoted display name is read once: its end is where '<' is looked for from.
        let quoted = if s.starts_with('"') {
            lex::quoted_end_escaped(s)
        } else {
            None
        };
        let escaped = quoted.is_some_and(|(_, escaped)| escaped);
        let quoted = quoted.map(|(end, _)| end);
        let laquot = match quoted {
            Some(end) => lex::find_byte(&s[end..], b'<').map(|i| i + end),
            None if s.starts_with('"') => None,
            None => lex::find_byte(s, b'<'),
        };
        let (display, uri_text, rest) = if let Some(lt) = laquot {
            let display = trim_lws(&s[..lt]);
            let display = if display.is_empty() {
                None
            } else if display.starts_with('"') {
                // `display` starts like `s`: its quoted string ends where `s`'s does.
                if quoted != Some(display.len()) {
                    return Err(err(name, "display name"));
                }
                if escaped {
                    Some(lex::unquote(display))
                } else {
                    // No quoted-pair: the text between the quotes, as unquote gives it.
                    Some(Cow::Borrowed(&display[1..display.len() - 1]))
                }
            } else {
                // *(token LWS)
                if !display
                    .bytes()
                    .all(|b| lex::is(b, lex::class::TOKEN) || lex::is_wsp(b))
                {
                    return Err(err(name, "display name"));
                }
                Some(Cow::Borrowed(display))
            };
            let after = &s[lt + 1..];
            let gt = lex::find_byte(after, b'>').ok_or_else(|| err(name, "missing '>'"))?;
            let uri_text = &after[..gt];
            if uri_text.is_empty()
                || uri_text.starts_with([' ', '\t'])
                || uri_text.ends_with([' ', '\t'])
            {
                return Err(err(name, "white space inside <>"));
            }
            (display, uri_text, &after[gt + 1..])
        } else {
            if s.starts_with('"') {
                return Err(err(name, "display name without <uri>"));
            }
            // addr-spec: the URI ends at the first ';' (what follows are header params);
            // it may not contain ',', '?' or ';' (RFC 3261 §20).
            let end = lex::find3_short(s.as_bytes(), b';', b' ', b'\t').unwrap_or(s.len());
            let uri_text = &s[..end];
            if lex::find3_short(uri_text.as_bytes(), b'?', b',', b',').is_some() {
                return Err(err(name, "addr-spec with '?' or ',' needs <>"));
            }
            (None, uri_text, &s[end..])
        };
        let rest = trim_lws(rest);
        let params = if rest.is_empty() {
            Params::default()
        } else {
            let p = rest
                .strip_prefix(';')
                .ok_or_else(|| err(name, "text after URI"))?;
            validate_header_params(p).map_err(|r| err(name, r))?;
            Params::from_raw(Cow::Borrowed(p))
        };
        Ok(NameAddr {
            display_name: display,
            uri: Cow::Borrowed(uri_text),
            params,
        })
    }
}

/// For the fuzz targets and tests: panics when the one-pass name-addr path answers
/// differently from the general one on `value`; true when it answered.
pub(crate) fn check_plain_name_addr(value: &str) -> bool {
    let Some(plain) = NameAddr::parse_plain(value) else {
        return false;
    };
    assert_eq!(
        Ok(plain),
        NameAddr::parse_general(HeaderName::To, value),
        "the one-pass name-addr path differs on {value:?}"
    );
    true
}

impl fmt::Display for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display_name {
            if is_token_list(d) {
                write!(f, "{d} ")?;
            } else {
                write!(f, "{} ", lex::quote(d))?;
            }
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

fn is_token_list(s: &str) -> bool {
    !s.is_empty() && s.split(' ').all(is_token)
}

macro_rules! name_addr_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty<'a>(pub NameAddr<'a>);

        impl<'a> Header<'a> for $ty<'a> {
            const NAME: HeaderName = $name;
            #[inline]
            fn parse(value: &'a str) -> Result<Self, HeaderError> {
                // `parse_as` spelled out: the value is wrapped once (36 instructions fewer
                // on the bench's INVITE than `parse_as(..).map(..)`).
                match NameAddr::parse_plain(value) {
                    Some(plain) => Ok($ty(plain)),
                    None => NameAddr::parse_general(Self::NAME, value).map($ty),
                }
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<'a> std::ops::Deref for $ty<'a> {
            type Target = NameAddr<'a>;
            fn deref(&self) -> &NameAddr<'a> {
                &self.0
            }
        }

        impl<'a> $ty<'a> {
            /// Detaches from the message buffer.
            pub fn into_owned(self) -> $ty<'static> {
                $ty(self.0.into_owned())
            }
        }
    };
}

name_addr_header!(
    /// `From` (RFC 3261 §20.20).
    From, HeaderName::From);
name_addr_header!(
    /// `To` (RFC 3261 §20.39).
    To, HeaderName::To);
name_addr_header!(
    /// One `Route` value (RFC 3261 §20.34).
    Route, HeaderName::Route);
name_addr_header!(
    /// One `Record-Route` value (RFC 3261 §20.30).
    RecordRoute, HeaderName::RecordRoute);
name_addr_header!(
    /// `Refer-To` (RFC 3515 §2.1).
    ReferTo, HeaderName::ReferTo);
name_addr_header!(
    /// `Referred-By` (RFC 3892).
    ReferredBy, HeaderName::ReferredBy);
name_addr_header!(
    /// `Reply-To` (RFC 3261 §20.31).
    ReplyTo, HeaderName::ReplyTo);
name_addr_header!(
    /// One `Path` value (RFC 3327).
    Path, HeaderName::Path);
name_addr_header!(
    /// One `Service-Route` value (RFC 3608).
    ServiceRoute, HeaderName::ServiceRoute);

/// One `Contact` value (RFC 3261 §20.10): `*` or a name-addr with `q`/`expires` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `Contact: *` (REGISTER: remove all bindings).
    Star,
    /// An address.
    Address(NameAddr<'a>),
}

impl<'a> Contact<'a> {
    /// The address, unless this is `*`.
    pub fn address(&self) -> Option<&NameAddr<'a>> {
        match self {
            Contact::Star => None,
            Contact::Address(a) => Some(a),
        }
    }

    /// The `expires` parameter.
    pub fn expires(&self) -> Option<u32> {
        self.address()?
            .params
            .get("expires")
            .flatten()
            .and_then(|v| lex::parse_decimal(v, u64::MAX))
            .map(|v| v.min(u64::from(u32::MAX)) as u32)
    }

    /// Detaches from the message buffer.
    pub fn into_owned(self) -> Contact<'static> {
        match self {
            Contact::Star => Contact::Star,
            Contact::Address(a) => Contact::Address(a.into_owned()),
        }
    }
}

impl<'a> Header<'a> for Contact<'a> {
    const NAME: HeaderName = HeaderName::Contact;

    #[inline]
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        if trim_lws(value) == "*" {
            return Ok(Contact::Star);
        }
        NameAddr::parse_as(Self::NAME, value).map(Contact::Address)
    }

    /// A line the one-pass name-addr path reads is one element: it has a comma only inside
    /// a quoted string or `<>`, and no white space at its ends. Otherwise a line without
    /// any comma is one element (`parse` trims it as the split would); a value that does
    /// not parse goes the general way, which reports the error.
    #[inline]
    fn parse_line(line: &'a str) -> Option<Self> {
        if line != "*"
            && let Some(plain) = NameAddr::parse_plain(line)
        {
            return Some(Contact::Address(plain));
        }
        if lex::find_byte(line, b',').is_some() || trim_lws(line).is_empty() {
            return None;
        }
        Self::parse(line).ok()
    }
}

impl fmt::Display for Contact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Contact::Star => f.write_str("*"),
            Contact::Address(a) => a.fmt(f),
        }
    }
}

// ----------------------------------------------------------------------------- CSeq, Call-ID

/// `CSeq` (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// The sequence number (a 32-bit unsigned integer, §8.1.1.5).
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl Header<'_> for CSeq {
    const NAME: HeaderName = HeaderName::CSeq;

    fn parse(value: &str) -> Result<Self, HeaderError> {
        let n = Self::NAME;
        // The usual `digits SP method`: the two words are found in one pass.
        let b = value.as_bytes();
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0
            && b.get(digits) == Some(&b' ')
            && let Some(method) = value.get(digits + 1..)
            && !method.is_empty()
            && !method.bytes().any(lex::is_wsp)
            && let Some(seq) = lex::parse_decimal(&value[..digits], u64::from(u32::MAX))
            && let Some(method) = Method::parse(method)
        {
            return Ok(CSeq {
                seq: seq as u32,
                method,
            });
        }
        // Two words separated by SP/HTAB.
        let mut words = Words(value);
        let seq = words.next().ok_or_else(|| err(n, "missing number"))?;
        let method = words.next().ok_or_else(|| err(n, "missing method"))?;
        if words.next().is_some() {
            return Err(err(n, "extra text"));
        }
        let seq =
            lex::parse_decimal(seq, u64::from(u32::MAX)).ok_or_else(|| err(n, "bad number"))?;
        let method = Method::parse(method).ok_or_else(|| err(n, "bad method"))?;
        Ok(CSeq {
            seq: seq as u32,
            method,
        })
    }
}

/// The words of a text separated by runs of SP and HTAB.
struct Words<'a>(&'a str);

impl<'a> Iterator for Words<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let skip = self.0.bytes().take_while(|&b| lex::is_wsp(b)).count();
        let s = &self.0[skip..];
        if s.is_empty() {
            self.0 = s;
            return None;
        }
        let end = lex::find_wsp(s).unwrap_or(s.len());
        self.0 = &s[end..];
        Some(&s[..end])
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// `Call-ID` (RFC 3261 §20.8): `word [ "@" word ]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallId<'a>(pub Cow<'a, str>);

impl<'a> CallId<'a> {
    /// The identifier text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Detaches from the message buffer.
    pub fn into_owned(self) -> CallId<'static> {
        CallId(owned(self.0))
    }
}

impl<'a> Header<'a> for CallId<'a> {
    const NAME: HeaderName = HeaderName::CallId;

    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        // word [ "@" word ]: '@' is not a word character.
        let ok = match lex::find_byte(v, b'@') {
            Some(at) => {
                let (a, b) = (&v.as_bytes()[..at], &v.as_bytes()[at + 1..]);
                !a.is_empty()
                    && !b.is_empty()
                    && lex::all_in(a, lex::class::WORD)
                    && lex::all_in(b, lex::class::WORD)
            }
            None => !v.is_empty() && lex::all_in(v.as_bytes(), lex::class::WORD),
        };
        if !ok {
            return Err(err(Self::NAME, "not a word[@word]"));
        }
        Ok(CallId(Cow::Borrowed(v)))
    }
}

impl fmt::Display for CallId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// --------------------------------------------------------------------------- numeric values

macro_rules! number_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr, $int:ty, $max:expr, saturate = $sat:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(pub $int);

        impl Header<'_> for $ty {
            const NAME: HeaderName = $name;
            fn parse(value: &str) -> Result<Self, HeaderError> {
                let v = trim_lws(value);
                let max = if $sat { u64::MAX } else { $max as u64 };
                match lex::parse_decimal(v, max) {
                    Some(n) => Ok($ty(n.min($max as u64) as $int)),
                    None if $sat && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
                        Ok($ty($max))
                    }
                    None => Err(err(Self::NAME, "not a number in range")),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

number_header!(
    /// `Max-Forwards` (RFC 3261 §20.22): 0 to 255.
    MaxForwards, HeaderName::MaxForwards, u8, 255u8, saturate = false);
number_header!(
    /// `Content-Length` (RFC 3261 §20.14).
    ContentLength, HeaderName::ContentLength, u32, u32::MAX, saturate = false);
number_header!(
    /// `Expires` (RFC 3261 §20.19), delta-seconds; values over 2^32-1 are read as 2^32-1.
    Expires, HeaderName::Expires, u32, u32::MAX, saturate = true);
number_header!(
    /// `Min-Expires` (RFC 3261 §20.23).
    MinExpires, HeaderName::MinExpires, u32, u32::MAX, saturate = true);
number_header!(
    /// `RSeq` (RFC 3262 §7.1): 1 to 2^31-1.
    RSeq, HeaderName::RSeq, u32, u32::MAX, saturate = false);

/// `Session-Expires` (RFC 4028 §4): delta-seconds with an optional `refresher`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionExpires<'a> {
    /// The session interval in seconds.
    pub delta: u32,
    /// Parameters (`refresher=uac|uas`).
    pub params: Params<'a>,
}

impl<'a> Header<'a> for SessionExpires<'a> {
    const NAME: HeaderName = HeaderName::SessionExpires;
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let (head, params) = split_params(Self::NAME, value)?;
        let delta = lex::parse_decimal(head, u64::from(u32::MAX))
            .ok_or_else(|| err(Self::NAME, "delta-seconds"))? as u32;
        Ok(SessionExpires { delta, params })
    }
}

impl fmt::Display for SessionExpires<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.delta, self.params)
    }
}

/// `Min-SE` (RFC 4028 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinSe<'a> {
    /// The minimum session interval in seconds.
    pub delta: u32,
    /// Extension parameters.
    pub params: Params<'a>,
}

impl<'a> Header<'a> for MinSe<'a> {
    const NAME: HeaderName = HeaderName::MinSe;
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let (head, params) = split_params(Self::NAME, value)?;
        let delta = lex::parse_decimal(head, u64::from(u32::MAX))
            .ok_or_else(|| err(Self::NAME, "delta-seconds"))? as u32;
        Ok(MinSe { delta, params })
    }
}

impl fmt::Display for MinSe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.delta, self.params)
    }
}

/// `RAck` (RFC 3262 §7.2): `response-num CSeq-num Method`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RAck {
    /// The RSeq of the acknowledged response.
    pub rseq: u32,
    /// The CSeq number of the acknowledged response.
    pub cseq: u32,
    /// The CSeq method of the acknowledged response.
    pub method: Method,
}

impl Header<'_> for RAck {
    const NAME: HeaderName = HeaderName::RAck;
    fn parse(value: &str) -> Result<Self, HeaderError> {
        let n = Self::NAME;
        let w: Vec<&str> = value.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
        let [rseq, cseq, method] = w.as_slice() else {
            return Err(err(n, "expected 'rseq cseq method'"));
        };
        Ok(RAck {
            rseq: lex::parse_decimal(rseq, u64::from(u32::MAX)).ok_or_else(|| err(n, "rseq"))?
                as u32,
            cseq: lex::parse_decimal(cseq, u64::from(u32::MAX)).ok_or_else(|| err(n, "cseq"))?
                as u32,
            method: Method::parse(method).ok_or_else(|| err(n, "method"))?,
        })
    }
}

impl fmt::Display for RAck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.rseq, self.cseq, self.method)
    }
}

/// `Retry-After` (RFC 3261 §20.33): seconds, optional comment, parameters (`duration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryAfter<'a> {
    /// Seconds to wait.
    pub delta: u32,
    /// The comment, without parentheses.
    pub comment: Option<Cow<'a, str>>,
    /// Parameters.
    pub params: Params<'a>,
}

impl<'a> Header<'a> for RetryAfter<'a> {
    const NAME: HeaderName = HeaderName::RetryAfter;
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let n = Self::NAME;
        let v = trim_lws(value);
        let digits_end = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
        let delta = lex::parse_decimal(&v[..digits_end], u64::from(u32::MAX))
            .ok_or_else(|| err(n, "delta-seconds"))? as u32;
        let mut rest = trim_lws(&v[digits_end..]);
        let mut comment = None;
        if rest.starts_with('(') {
            let close = comment_end(rest).ok_or_else(|| err(n, "comment"))?;
            comment = Some(Cow::Borrowed(&rest[1..close - 1]));
            rest = trim_lws(&rest[close..]);
        }
        let params = if rest.is_empty() {
            Params::default()
        } else {
            let p = rest
                .strip_prefix(';')
                .ok_or_else(|| err(n, "text after value"))?;
            validate_header_params(p).map_err(|r| err(n, r))?;
            Params::from_raw(Cow::Borrowed(p))
        };
        Ok(RetryAfter {
            delta,
            comment,
            params,
        })
    }
}

impl RetryAfter<'_> {
    /// The wait a response asks for: its `Retry-After`'s seconds, `None` without a readable
    /// one.
    pub fn of(response: &super::Message) -> Option<std::time::Duration> {
        let header = response.get::<RetryAfter<'_>>()?.ok()?;
        Some(std::time::Duration::from_secs(u64::from(header.delta)))
    }
}

/// The index just past the `)` closing the comment at `s[0] == '('` (nested comments allowed).
fn comment_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'(' => depth += 1,
            b')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

impl fmt::Display for RetryAfter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        if let Some(c) = &self.comment {
            write!(f, " ({c})")?;
        }
        write!(f, "{}", self.params)
    }
}

// --------------------------------------------------------------------------------- token lists

macro_rules! token_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $ty<'a>(pub Cow<'a, str>);

        impl<'a> Header<'a> for $ty<'a> {
            const NAME: HeaderName = $name;
            fn parse(value: &'a str) -> Result<Self, HeaderError> {
                let v = trim_lws(value);
                if !is_token(v) {
                    return Err(err(Self::NAME, "not a token"));
                }
                Ok($ty(Cow::Borrowed(v)))
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl $ty<'_> {
            /// The token.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
    };
}

token_header!(
    /// One `Allow` value (RFC 3261 §20.5): a method.
    Allow, HeaderName::Allow);
token_header!(
    /// One `Supported` option tag (RFC 3261 §20.37).
    Supported, HeaderName::Supported);
token_header!(
    /// One `Require` option tag (RFC 3261 §20.32).
    Require, HeaderName::Require);
token_header!(
    /// One `Proxy-Require` option tag (RFC 3261 §20.29).
    ProxyRequire, HeaderName::ProxyRequire);
token_header!(
    /// One `Unsupported` option tag (RFC 3261 §20.40).
    Unsupported, HeaderName::Unsupported);
token_header!(
    /// One `Content-Encoding` value (RFC 3261 §20.12).
    ContentEncoding, HeaderName::ContentEncoding);

/// One `Allow-Events` value (RFC 6665 §8.2.2): an event type (`package[.template]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowEvents<'a>(pub Cow<'a, str>);

impl<'a> Header<'a> for AllowEvents<'a> {
    const NAME: HeaderName = HeaderName::AllowEvents;
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        if !is_token(v) {
            return Err(err(Self::NAME, "not an event type"));
        }
        Ok(AllowEvents(Cow::Borrowed(v)))
    }
}

impl fmt::Display for AllowEvents<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `Event` (RFC 6665 §8.2.1): an event type with parameters (`id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The event package (and templates), e.g. `presence`, `refer`, `reg`.
    pub package: Cow<'a, str>,
    /// Parameters.
    pub params: Params<'a>,
}

impl<'a> Header<'a> for Event<'a> {
    const NAME: HeaderName = HeaderName::Event;
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let (head, params) = split_params(Self::NAME, value)?;
        if !is_token(head) {
            return Err(err(Self::NAME, "event type"));
        }
        Ok(Event {
            package: Cow::Borrowed(head),
            params,
        })
    }
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.package, self.params)
    }
}

/// `Subscription-State` (RFC 6665 §8.2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState<'a> {
    /// `active`, `pending`, `terminated` or an extension.
    pub state: Cow<'a, str>,
    /// Parameters (`reason`, `expires`, `retry-after`).
    pub params: Params<'a>,
}

impl<'a> Header<'a> for SubscriptionState<'a> {
    const NAME: HeaderName = HeaderName::SubscriptionState;
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let (head, params) = split_params(Self::NAME, value)?;
        if !is_token(head) {
            return Err(err(Self::NAME, "substate-value"));
        }
        Ok(SubscriptionState {
            state: Cow::Borrowed(head),
            params,
        })
    }
}

impl fmt::Display for SubscriptionState<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.state, self.params)
    }
}

/// `Replaces` (RFC 3891 §6.1): a Call-ID with `to-tag`, `from-tag` and `early-only`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces<'a> {
    /// The Call-ID of the dialog to replace.
    pub call_id: Cow<'a, str>,
    /// Parameters.
    pub params: Params<'a>,
}

impl<'a> Replaces<'a> {
    /// The `to-tag` parameter.
    pub fn to_tag(&self) -> Option<&str> {
        self.params.get("to-tag").flatten()
    }
    /// The `from-tag` parameter.
    pub fn from_tag(&self) -> Option<&str> {
        self.params.get("from-tag").flatten()
    }
}

impl<'a> Header<'a> for Replaces<'a> {
    const NAME: HeaderName = HeaderName::Replaces;
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let (head, params) = split_params(Self::NAME, value)?;
        CallId::parse(head).map_err(|_| err(Self::NAME, "callid"))?;
        Ok(Replaces {
            call_id: Cow::Borrowed(head),
            params,
        })
    }
}

impl fmt::Display for Replaces<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.call_id, self.params)
    }
}

// ------------------------------------------------------------------------------ media types

/// A media type with parameters: `Content-Type` (RFC 3261 §20.15) and one `Accept` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType<'a> {
    /// The type (`application`, or `*` in Accept).
    pub mtype: Cow<'a, str>,
    /// The subtype (`sdp`, or `*`).
    pub subtype: Cow<'a, str>,
    /// Parameters (`charset`, `boundary`, `q`...).
    pub params: Params<'a>,
}

impl<'a> MediaType<'a> {
    /// `type/subtype` without parameters.
    pub fn new(mtype: &'a str, subtype: &'a str) -> MediaType<'a> {
        MediaType {
            mtype: Cow::Borrowed(mtype),
            subtype: Cow::Borrowed(subtype),
            params: Params::default(),
        }
    }

    /// True when this is `mtype/subtype` (case-insensitive, parameters ignored).
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    fn parse_as(name: HeaderName, value: &'a str) -> Result<MediaType<'a>, HeaderError> {
        let (head, params) = split_params(name, value)?;
        let (t, s) = head
            .split_once('/')
            .ok_or_else(|| err(name, "missing '/'"))?;
        let (t, s) = (trim_lws(t), trim_lws(s));
        if !is_token(t) || !is_token(s) {
            return Err(err(name, "media type"));
        }
        Ok(MediaType {
            mtype: Cow::Borrowed(t),
            subtype: Cow::Borrowed(s),
            params,
        })
    }
}

impl fmt::Display for MediaType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.mtype, self.subtype, self.params)
    }
}

/// `Content-Type` (RFC 3261 §20.15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType<'a>(pub MediaType<'a>);

impl<'a> Header<'a> for ContentType<'a> {
    const NAME: HeaderName = HeaderName::ContentType;
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        MediaType::parse_as(Self::NAME, value).map(ContentType)
    }
}

impl fmt::Display for ContentType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'a> std::ops::Deref for ContentType<'a> {
    type Target = MediaType<'a>;
    fn deref(&self) -> &MediaType<'a> {
        &self.0
    }
}

/// One `Accept` value (RFC 3261 §20.1): a media range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accept<'a>(pub MediaType<'a>);

impl<'a> Header<'a> for Accept<'a> {
    const NAME: HeaderName = HeaderName::Accept;
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        MediaType::parse_as(Self::NAME, value).map(Accept)
    }
}

impl fmt::Display for Accept<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

// -------------------------------------------------------------------------- Warning, products

/// One `Warning` value (RFC 3261 §20.43): `code agent "text"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning<'a> {
    /// The three-digit warn-code.
    pub code: u16,
    /// The warn-agent (`host[:port]` or pseudonym).
    pub agent: Cow<'a, str>,
    /// The warn-text, unquoted.
    pub text: Cow<'a, str>,
}

impl<'a> Header<'a> for Warning<'a> {
    const NAME: HeaderName = HeaderName::Warning;
    fn parse(value: &'a str) -> Result<Self, HeaderError> {
        let n = Self::NAME;
        let v = trim_lws(value);
        let (code, rest) = v
            .split_once([' ', '\t'])
            .ok_or_else(|| err(n, "missing agent"))?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(n, "warn-code is not three digits"));
        }
        let rest = trim_lws(rest);
        let (agent, text) = rest
            .split_once([' ', '\t'])
            .ok_or_else(|| err(n, "missing text"))?;
        let text = trim_lws(text);
        if agent.is_empty()
            || !agent
                .bytes()
                .all(|b| is_token_char(b) || matches!(b, b':' | b'[' | b']'))
        {
            return Err(err(n, "warn-agent"));
        }
        if !text.starts_with('"') || lex::quoted_end(text) != Some(text.len()) {
            return Err(err(n, "warn-text"));
        }
        Ok(Warning {
            code: code.parse().map_err(|_| err(n, "warn-code"))?,
            agent: Cow::Borrowed(agent),
            text: lex::unquote(text),
        })
    }
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:03} {} {}",
            self.code,
            self.agent,
            lex::quote(&self.text)
        )
    }
}

macro_rules! text_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty<'a>(pub Cow<'a, str>);

        impl<'a> Header<'a> for $ty<'a> {
            const NAME: HeaderName = $name;
            fn parse(value: &'a str) -> Result<Self, HeaderError> {
                let v = trim_lws(value);
                if v.is_empty() {
                    return Err(err(Self::NAME, "empty value"));
                }
                Ok($ty(Cow::Borrowed(v)))
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_header!(
    /// `User-Agent` (RFC 3261 §20.41): product tokens and comments, kept as text.
    UserAgent, HeaderName::UserAgent);
text_header!(
    /// `Server` (RFC 3261 §20.35): product tokens and comments, kept as text.
    Server, HeaderName::Server);

// ------------------------------------------------------------------------------------- Date

/// `Date` (RFC 3261 §20.17): an RFC 1123 date, always GMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    /// Year.
    pub year: u16,
    /// Month, 1 to 12.
    pub month: u8,
    /// Day of the month, 1 to 31.
    pub day: u8,
    /// Hour, 0 to 23.
    pub hour: u8,
    /// Minute, 0 to 59.
    pub minute: u8,
    /// Second, 0 to 60.
    pub second: u8,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

impl Date {
    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        // Days from civil (H. Hinnant's algorithm).
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The date of a Unix time in seconds.
    pub fn from_unix_seconds(secs: i64) -> Date {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u16;
        Date {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
        }
    }
}

impl Header<'_> for Date {
    const NAME: HeaderName = HeaderName::Date;
    fn parse(value: &str) -> Result<Self, HeaderError> {
        let n = Self::NAME;
        // wkday "," SP date1 SP time SP "GMT"; date1 = 2DIGIT SP month SP 4DIGIT
        let v = trim_lws(value);
        let (wkday, rest) = v.split_once(',').ok_or_else(|| err(n, "weekday"))?;
        if !WEEKDAYS.contains(&wkday) {
            return Err(err(n, "weekday"));
        }
        let w: Vec<&str> = rest.split(' ').filter(|w| !w.is_empty()).collect();
        let [day, month, year, time, zone] = w.as_slice() else {
            return Err(err(n, "rfc1123-date"));
        };
        if *zone != "GMT" {
            return Err(err(n, "time zone is not GMT"));
        }
        let num = |s: &str, len: usize, max: u64| {
            (s.len() == len)
                .then(|| lex::parse_decimal(s, max))
                .flatten()
                .ok_or_else(|| err(n, "rfc1123-date"))
        };
        let month = MONTHS
            .iter()
            .position(|m| m == month)
            .ok_or_else(|| err(n, "month"))? as u8
            + 1;
        let t: Vec<&str> = time.split(':').collect();
        let [h, m, s] = t.as_slice() else {
            return Err(err(n, "time"));
        };
        let day = num(day, 2, 31)? as u8;
        if day == 0 {
            return Err(err(n, "day"));
        }
        Ok(Date {
            year: num(year, 4, 9999)? as u16,
            month,
            day,
            hour: num(h, 2, 23)? as u8,
            minute: num(m, 2, 59)? as u8,
            second: num(s, 2, 60)? as u8,
        })
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.unix_seconds().div_euclid(86_400);
        // 1970-01-01 was a Thursday (index 3 in WEEKDAYS).
        let wd = WEEKDAYS[((days + 3).rem_euclid(7)) as usize];
        write!(
            f,
            "{wd}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
            self.day,
            MONTHS[usize::from(self.month.clamp(1, 12) - 1)],
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

// ------------------------------------------------------------------------------- authentication

/// A `WWW-Authenticate`, `Proxy-Authenticate`, `Authorization`, `Proxy-Authorization` or
/// `Authentication-Info` value: an optional scheme and its comma-separated auth-params.
///
/// This is the syntax only; `crate::auth` computes and checks digests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthValue<'a> {
    /// The scheme (`Digest`), absent for Authentication-Info.
    pub scheme: Option<Cow<'a, str>>,
    /// The auth-params in order: name and value as written (quotes kept).
    pub params: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> AuthValue<'a> {
    /// The value of a parameter with quotes removed (names compare without case).
    pub fn param(&self, name: &str) -> Option<Cow<'_, str>> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| lex::unquote(v))
    }

    fn parse_as(name: HeaderName, value: &'a str, with_scheme: bool) -> Result<Self, HeaderError> {
        let v = trim_lws(value);
        let (scheme, rest) = if with_scheme {
            let end = v.find([' ', '\t']).unwrap_or(v.len());
            let scheme = &v[..end];
            if !is_token(scheme) {
                return Err(err(name, "auth scheme"));
            }
            (Some(Cow::Borrowed(scheme)), trim_lws(&v[end..]))
        } else {
            (None, v)
        };
        let mut params = Vec::new();
        if !rest.is_empty() {
            for piece in
                lex::split_top_level(rest, b',').ok_or_else(|| err(name, "unterminated quote"))?
            {
                let piece = trim_lws(piece);
                let (n, val) = piece
                    .split_once('=')
                    .ok_or_else(|| err(name, "auth-param"))?;
                let (n, val) = (trim_lws(n), trim_lws(val));
                if !is_token(n) {
                    return Err(err(name, "auth-param name"));
                }
                let ok = if val.starts_with('"') {
                    lex::quoted_end(val) == Some(val.len())
                } else {
                    is_token(val)
                };
                if !ok {
                    return Err(err(name, "auth-param value"));
                }
                params.push((Cow::Borrowed(n), Cow::Borrowed(val)));
            }
        }
        Ok(AuthValue { scheme, params })
    }
}

impl fmt::Display for AuthValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.scheme {
            f.write_str(s)?;
            if !self.params.is_empty() {
                f.write_str(" ")?;
            }
        }
        for (i, (n, v)) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{n}={v}")?;
        }
        Ok(())
    }
}

macro_rules! auth_header {
    ($(#[$doc:meta])* $ty:ident, $name:expr, $scheme:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $ty<'a>(pub AuthValue<'a>);

        impl<'a> Header<'a> for $ty<'a> {
            const NAME: HeaderName = $name;
            fn parse(value: &'a str) -> Result<Self, HeaderError> {
                AuthValue::parse_as(Self::NAME, value, $scheme).map($ty)
            }
        }

        impl fmt::Display for $ty<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl<'a> std::ops::Deref for $ty<'a> {
            type Target = AuthValue<'a>;
            fn deref(&self) -> &AuthValue<'a> {
                &self.0
            }
        }
    };
}

auth_header!(
    /// `WWW-Authenticate` (RFC 3261 §20.44): a challenge.
    WwwAuthenticate, HeaderName::WwwAuthenticate, true);
auth_header!(
    /// `Proxy-Authenticate` (RFC 3261 §20.27): a challenge.
    ProxyAuthenticate, HeaderName::ProxyAuthenticate, true);
auth_header!(
    /// `Authorization` (RFC 3261 §20.7): credentials.
    Authorization, HeaderName::Authorization, true);
auth_header!(
    /// `Proxy-Authorization` (RFC 3261 §20.28): credentials.
    ProxyAuthorization, HeaderName::ProxyAuthorization, true);
auth_header!(
    /// `Authentication-Info` (RFC 3261 §20.6): `nextnonce`, `rspauth`...
    AuthenticationInfo, HeaderName::AuthenticationInfo, false);

/// The SIP URI of a host and port, a convenience for building Contact and Route values.
pub fn sip_uri(host: Host<'static>, port: Option<u16>) -> SipUri<'static> {
    let mut u = SipUri::new(false, host);
    u.port = port;
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip<'a, T: Header<'a> + PartialEq + fmt::Debug>(v: &'a str) -> String {
        let parsed = T::parse(v).unwrap();
        parsed.to_string()
    }

    #[test]
    fn via_with_lws() {
        let v = Via::parse(
            "SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw"
                .replace("\r\n", " ")
                .leak(),
        )
        .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, Host::V4("192.0.2.2".parse().unwrap()));
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert_eq!(v.to_string(), "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw");
        let v = Via::parse("SIP/2.0/TCP [2001:db8::9:1]:5061;received=[2001:db8::9:255];rport=5061;branch=z9hG4bKas").unwrap();
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.received(), Some("2001:db8::9:255"));
        assert_eq!(v.rport(), Some(Some(5061)));
        assert!(Via::parse("SIP/2.0/UDP host;;branch=x").is_err());
        assert!(Via::parse("SIP/2.0/UDP host;ttl=300").is_err());
    }

    #[test]
    fn via_lines_read_whole_or_split() {
        use crate::message::Message;
        let msg = |via: &str| {
            let text = format!(
                "OPTIONS sip:b@example.com SIP/2.0\r\nVia: {via}\r\nVia: SIP/2.0/TCP last\r\n\
                 To: <sip:b@example.com>\r\nFrom: <sip:a@example.com>;tag=1\r\n\
                 Call-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            );
            Message::parse(bytes::Bytes::from(text)).unwrap()
        };
        let m = msg("SIP/2.0/UDP h;x=\"a,b\";branch=z9hG4bK1");
        let top = m.top_via().unwrap().unwrap();
        assert_eq!(top.branch(), Some("z9hG4bK1"));
        assert_eq!(top.params.get("x"), Some(Some("\"a,b\"")));
        assert_eq!(m.vias().count(), 2);
        let m = msg("SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b:5070;branch=z9hG4bK2");
        let vias: Vec<_> = m.vias().map(Result::unwrap).collect();
        assert_eq!(vias.len(), 3);
        assert_eq!(vias[1].port, Some(5070));
        assert_eq!(m.top_via().unwrap().unwrap().branch(), Some("z9hG4bK1"));
        let m = msg("SIP/2.0/UDP a;branch=z9hG4bK1,,SIP/2.0/UDP b");
        assert!(m.top_via().unwrap().is_ok());
        assert!(m.vias().any(|v| v.is_err()));
    }

    #[test]
    fn name_addr_forms() {
        let f =
            From::parse(r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8"#)
                .unwrap();
        assert_eq!(f.display_name.as_deref(), Some(r#"J Rosenberg \""#));
        assert_eq!(f.tag(), Some("98asjd8"));
        let t = To::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(t.tag(), Some("1918181833n"));
        assert!(matches!(t.uri(), Ok(Uri::Sip(_))));
        let c = From::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(c.display_name.as_deref(), Some("caller"));
        assert!(To::parse(r#""Watson, Thomas" < sip:t.watson@example.org >"#).is_err());
        assert!(From::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_err());
        assert!(From::parse(r#""Mr. J. User <sip:j.user@example.com>"#).is_err());
        assert!(Contact::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        assert!(Contact::parse("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>").is_ok());
        assert_eq!(Contact::parse(" * ").unwrap(), Contact::Star);
        assert_eq!(Contact::parse("*").unwrap(), Contact::Star);
        assert_eq!(Contact::parse_line("*"), Some(Contact::Star));
        let c = Contact::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert!(c.address().unwrap().params.contains("unknownparam"));
        assert!(
            c.address()
                .unwrap()
                .uri()
                .unwrap()
                .as_sip()
                .unwrap()
                .params
                .is_empty()
        );
    }

    #[test]
    fn plain_name_addr_path_agrees_with_the_general_one() {
        for value in [
            "<sip:alice@example.com>",
            "\"Alice\" <sip:alice@example.com>;tag=9fxced76sl",
            "\"Alice\"<sip:alice@example.com>",
            "\"A, x\" <sip:a@b>",
            "\"\" <sip:a@b>",
            "\"\u{e9}\" <sip:a@b>",
            "Alice <sip:alice@example.com>",
            "Alice  Liddell \t<sip:alice@example.com>",
            "A<sip:a@b>",
            "<sips:bob@192.0.2.4:5061;transport=tls>;expires=60;q=0.5",
            "<SIP:bob@host>",
            "<sip:a@b>;lr",
            "<sip:alice@198.51.100.10:26389;transport=udp;ob>;expires=3591;+sip.instance=\"<urn:uuid:6513270e>\";reg-id=1",
            "<sip:a,b@host>",
            "<sip:host;lr>",
            "sip:alice@example.com",
            "sip:alice@example.com;tag=1",
            "SIPS:bob@host;expires=0",
            "<sip:1.2.3>",
            // The URI is text until read: these take the one-pass path too.
            "*",
            "<sip:a%41@b>",
            "<sip:a@b?x=y>",
            "<sip:a:pw@b>",
            "<sip:[::1]>",
            "<tel:+1234>",
            "<urn:x:y>",
            "<sip:>",
            "tel:+1234",
            "<sip:a@-b>",
            "<sip:a@b..c>",
        ] {
            assert!(
                check_plain_name_addr(value),
                "{value:?} should take the one-pass path"
            );
        }
        // Forms the one-pass path leaves to the general one (valid or not).
        for value in [
            "",
            " <sip:a@b>",
            "<sip:a@b> ",
            "<sip:a@b>;",
            "<sip:a@b>;tag=\"x\\\"y\"",
            "<sip:a@b> ;tag=1",
            "<sip:a@b>x",
            "<sip:a@b",
            "< sip:a@b>",
            "<sip:a@b >",
            "<>",
            "\"A\\\"B\" <sip:a@b>",
            "\"A\" x <sip:a@b>",
            "\"open <sip:a@b>",
            "\"A\"",
            "A B",
            "A, B <sip:a@b>",
            "A@B <sip:a@b>",
            "sip:a@b?x=y",
            "sip:a,b@c",
            "sip:a@b;x=\"<\"",
            "sip:a@b x",
            "sip:a;b@c",
            "<sip:a@b><sip:c@d>",
        ] {
            assert!(
                !check_plain_name_addr(value),
                "{value:?} should take the general path"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn plain_name_addr_path_never_disagrees(
            value in "[\"<>a-c0-2@:;=. \\\\,%?_+-]{0,28}|(\"[a ,]{0,3}\" ?)?<sip:[a@.:;=0-2]{0,12}>[;a-c=\"<>0-2]{0,10}",
        ) {
            check_plain_name_addr(&value);
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(CSeq::parse("0009\t INVITE").unwrap().seq, 9);
        assert!(CSeq::parse("36893488147419103232 INVITE").is_err());
        assert!(CSeq::parse("4294967296 INVITE").is_err());
        assert_eq!(CSeq::parse("4294967295 ACK").unwrap().seq, u32::MAX);
        assert_eq!(CSeq::parse("1 INVITE").unwrap().method, Method::Invite);
        assert_eq!(CSeq::parse("1  BYE").unwrap().method, Method::Bye);
        assert_eq!(CSeq::parse("1 FOO\t").unwrap().method.as_str(), "FOO");
        assert!(CSeq::parse("1 INV ITE").is_err());
        assert!(CSeq::parse("1 ").is_err());
        assert!(CSeq::parse("1 IN\rVITE").is_err());
        for (id, ok) in [
            ("a84b4c76e66710@192.0.2.10", true),
            ("a", true),
            ("@b", false),
            ("a@", false),
            ("a@b@c", false),
            ("@", false),
            ("", false),
            ("a b", false),
            ("<a>:{b}@[c]", true),
        ] {
            assert_eq!(CallId::parse(id).is_ok(), ok, "{id:?}");
        }
        let f = From::parse(r#""A \"B\"" <sip:a@b>"#).unwrap();
        assert_eq!(f.display_name.as_deref(), Some(r#"A "B""#));
        let f = From::parse(r#""" <sip:a@b>"#).unwrap();
        assert_eq!(f.display_name.as_deref(), Some(""));
        assert_eq!(MaxForwards::parse("0068").unwrap(), MaxForwards(68));
        assert!(MaxForwards::parse("300").is_err());
        assert_eq!(
            Expires::parse("10000000000000000000").unwrap(),
            Expires(u32::MAX)
        );
        assert!(ContentLength::parse("-999").is_err());
        assert!(Warning::parse(r#"1812 overture "In Progress""#).is_err());
        assert_eq!(
            roundtrip::<Warning<'_>>(r#"399 host.example.com "Incompatible network protocol""#),
            r#"399 host.example.com "Incompatible network protocol""#
        );
        let r = RetryAfter::parse("18000;duration=3600").unwrap();
        assert_eq!(r.delta, 18000);
        assert!(RetryAfter::parse("949302838503028349304023988").is_err());
        assert_eq!(
            roundtrip::<RetryAfter<'_>>("120 (I'm in a meeting) ;duration=60"),
            "120 (I'm in a meeting);duration=60"
        );
    }

    #[test]
    fn dates() {
        let d = Date::parse("Sat, 13 Nov 2010 23:29:00 GMT").unwrap();
        assert_eq!(d.to_string(), "Sat, 13 Nov 2010 23:29:00 GMT");
        assert_eq!(Date::from_unix_seconds(d.unix_seconds()), d);
        assert!(Date::parse("Fri, 01 Jan 2010 16:00:00 EST").is_err());
    }

    #[test]
    fn auth_values() {
        let w = WwwAuthenticate::parse(
            r#"Digest realm="example.test", nonce="26397n1x608", algorithm=MD5, qop="auth""#,
        )
        .unwrap();
        assert_eq!(w.scheme.as_deref(), Some("Digest"));
        assert_eq!(w.param("nonce").as_deref(), Some("26397n1x608"));
        assert_eq!(w.param("QOP").as_deref(), Some("auth"));
        let again = WwwAuthenticate::parse(w.to_string().leak()).unwrap();
        assert_eq!(again, w);
        let i = AuthenticationInfo::parse(r#"nextnonce="47364c23432d2e131a5fb210812c""#).unwrap();
        assert!(i.scheme.is_none());
    }

    #[test]
    fn media_types() {
        let c = ContentType::parse("multipart/mixed;boundary=7a9cbec02ceef655").unwrap();
        assert!(c.is("Multipart", "MIXED"));
        assert_eq!(c.params.get("boundary"), Some(Some("7a9cbec02ceef655")));
        assert!(Accept::parse("*/*").is_ok());
    }
}
