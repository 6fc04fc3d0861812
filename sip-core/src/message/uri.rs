//! URIs: `sip:` and `sips:` (RFC 3261 §19.1, RFC 5118 for IPv6), `tel:` (RFC 3966), and any
//! other absolute URI kept as opaque text.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::lex;
use super::params::Params;

/// Why a URI did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// No `scheme:` prefix.
    #[error("missing scheme")]
    MissingScheme,
    /// A part of the URI breaks the grammar.
    #[error("bad {0}")]
    Bad(&'static str),
}

/// Any URI Tincan may meet in a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Uri<'a> {
    /// A `sip:` or `sips:` URI.
    Sip(SipUri<'a>),
    /// A `tel:` URI (RFC 3966).
    Tel(TelUri<'a>),
    /// Any other absolute URI, kept verbatim (`scheme:rest`).
    Other(OpaqueUri<'a>),
}

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SipUri<'a> {
    /// True for `sips:`.
    pub secure: bool,
    /// The user part, as written (escapes kept).
    pub user: Option<Cow<'a, str>>,
    /// The password, as written (escapes kept).
    pub password: Option<Cow<'a, str>>,
    /// The host.
    pub host: Host<'a>,
    /// The port, when given.
    pub port: Option<u16>,
    /// `uri-parameters` (`;transport=tcp;lr`...).
    pub params: Params<'a>,
    /// `headers` (`?name=value&...`), as written, without the `?`.
    pub headers: Option<Cow<'a, str>>,
}

/// A `tel:` URI (RFC 3966): the number and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TelUri<'a> {
    /// The telephone number (global `+...` or local), as written.
    pub number: Cow<'a, str>,
    /// Parameters (`;phone-context=...;ext=...`).
    pub params: Params<'a>,
}

/// An absolute URI of a scheme Tincan does not interpret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OpaqueUri<'a> {
    /// The scheme, as written.
    pub scheme: Cow<'a, str>,
    /// Everything after the `:`.
    pub rest: Cow<'a, str>,
}

/// The host of a SIP URI or of a Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A domain name, as written.
    Name(Cow<'a, str>),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written in brackets).
    V6(Ipv6Addr),
}

impl Host<'_> {
    /// The address when the host is numeric.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Name(_) => None,
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
        }
    }

    /// Detaches from the message buffer.
    pub fn into_owned(self) -> Host<'static> {
        match self {
            Host::Name(n) => Host::Name(Cow::Owned(n.into_owned())),
            Host::V4(a) => Host::V4(a),
            Host::V6(a) => Host::V6(a),
        }
    }

    /// Compares hosts as RFC 3261 §19.1.4 does: names case-insensitively, addresses by value.
    pub fn equivalent(&self, other: &Host<'_>) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            (Host::V4(a), Host::V4(b)) => a == b,
            (Host::V6(a), Host::V6(b)) => a == b,
            _ => false,
        }
    }

    /// Parses `host` (hostname, IPv4address or IPv6reference in brackets).
    pub fn parse(s: &'_ str) -> Result<Host<'_>, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or(UriError::Bad("IPv6 reference"))?;
            return parse_ipv6(inner)
                .map(Host::V6)
                .ok_or(UriError::Bad("IPv6 reference"));
        }
        // hostname = *( domainlabel "." ) toplabel [ "." ] (we also accept "_" seen in the
        // wild) or IPv4address: the whole text read as a host, with no port after it.
        match scan_host_port(s, 0) {
            Some((host, None, end)) if end == s.len() => Ok(host),
            _ => Err(UriError::Bad("host")),
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// The one-pass reading of `host[:port]` in `s` from `start`: host characters, then digits
/// after a `:` (what [`split_host_port`] and [`Host::parse`] accept of such text). Returns the
/// host, the port and the index after them; `None` where the general path would refuse.
#[inline(always)]
pub(crate) fn scan_host_port(s: &str, start: usize) -> Option<(Host<'_>, Option<u16>, usize)> {
    let b = s.as_bytes();
    let mut i = start;
    // Host characters, checked as Host::parse checks them in the same pass: no '.' first or
    // right after another, and whether they are all digits and dots (maybe an IPv4 address).
    let mut prev_dot = true;
    let mut numeric = true;
    while i < b.len() {
        let c = b[i];
        if !lex::is(c, lex::class::HOST) {
            break;
        }
        let dot = c == b'.';
        if dot && prev_dot {
            return None;
        }
        prev_dot = dot;
        numeric &= dot || c.is_ascii_digit();
        i += 1;
    }
    if i == start {
        return None;
    }
    // Digits and dots, the first not a dot: an IPv4 address if it reads as one, else a name
    // (`1.2.3`); other names may not start with '-'.
    let host = match numeric.then(|| parse_ipv4(&b[start..i])).flatten() {
        Some(a) => Host::V4(a),
        None if b[start] == b'-' => return None,
        None => Host::Name(Cow::Borrowed(&s[start..i])),
    };
    let port = if b.get(i) == Some(&b':') {
        let digits = i + 1;
        i = digits;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        Some(lex::parse_decimal(&s[digits..i], u64::from(u16::MAX))? as u16)
    } else {
        None
    };
    Some((host, port, i))
}

/// Parses a dotted-quad IPv4 address as `Ipv4Addr::from_str` does (four decimal octets of
/// one to three digits, no leading zero, at most 255), without its generic parser.
///
/// One pass over the bytes: digits build the octet, a '.' closes it.
fn parse_ipv4(s: &[u8]) -> Option<Ipv4Addr> {
    if s.len() > 15 {
        return None;
    }
    let mut octets = [0u8; 4];
    let mut k = 0;
    let mut v: u32 = 0;
    let mut digits = 0;
    for &c in s {
        if c.is_ascii_digit() {
            // At most three digits, no leading zero.
            if digits == 3 || (digits == 1 && v == 0) {
                return None;
            }
            v = v * 10 + u32::from(c - b'0');
            digits += 1;
        } else if c == b'.' && k < 3 && digits > 0 && v <= 255 {
            octets[k] = v as u8;
            k += 1;
            v = 0;
            digits = 0;
        } else {
            return None;
        }
    }
    if k != 3 || digits == 0 || v > 255 {
        return None;
    }
    octets[3] = v as u8;
    Some(Ipv4Addr::from(octets))
}

/// Parses an IPv6 address. RFC 5118 §4.10: the RFC 3261 ABNF also produced `x:::d.d.d.d`
/// (three colons before an IPv4 tail); it is read as `x::d.d.d.d`.
fn parse_ipv6(s: &str) -> Option<Ipv6Addr> {
    if let Ok(a) = s.parse() {
        return Some(a);
    }
    let i = s.find(":::")?;
    let tail = &s[i + 3..];
    if !tail.contains('.') || tail.contains(':') {
        return None;
    }
    format!("{}::{}", &s[..i], tail).parse().ok()
}

/// Splits `host[:port]`, with `[v6]:port` support.
pub(crate) fn split_host_port(s: &str) -> Result<(Host<'_>, Option<u16>), UriError> {
    let (host, port) = if s.starts_with('[') {
        let close = lex::find_byte(s, b']').ok_or(UriError::Bad("IPv6 reference"))?;
        let rest = &s[close + 1..];
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return Err(UriError::Bad("host")),
        };
        (&s[..=close], port)
    } else {
        match s.bytes().rposition(|b| b == b':') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => Some(
            lex::parse_decimal(p, u64::from(u16::MAX))
                .map(|p| p as u16)
                .ok_or(UriError::Bad("port"))?,
        ),
        None => None,
    };
    Ok((Host::parse(host)?, port))
}

/// True when every byte of `s` is in `class` and its `%HH` escapes are well formed.
#[inline]
fn chars_ok(s: &str, class: u8) -> bool {
    lex::all_in(s.as_bytes(), class) && lex::escapes_ok(s)
}

fn is_param_char(b: u8) -> bool {
    lex::is(b, lex::class::PARAM)
}

fn is_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

impl<'a> Uri<'a> {
    /// Parses an absolute URI. `sip`, `sips` and `tel` are interpreted, others kept opaque.
    #[inline]
    pub fn parse(s: &'a str) -> Result<Uri<'a>, UriError> {
        // The usual `sip:` URI in one pass, inlined where it is read (the value is large:
        // built in place rather than moved out through the layers of the general path).
        if s.len() >= 4
            && s.as_bytes()[..4].eq_ignore_ascii_case(b"sip:")
            && let Some(uri) = SipUri::parse_plain(false, &s[4..])
        {
            return Ok(Uri::Sip(uri));
        }
        Uri::parse_general(s)
    }

    /// [`Uri::parse`] of any URI.
    #[inline(never)]
    fn parse_general(s: &'a str) -> Result<Uri<'a>, UriError> {
        // The usual schemes first, without looking for the colon. A `sip:` URI is here when
        // the one-pass path of `Uri::parse` did not read it.
        let b = s.as_bytes();
        if b.len() >= 4 && b[..4].eq_ignore_ascii_case(b"sip:") {
            return SipUri::parse_general(false, &s[4..]).map(Uri::Sip);
        }
        if b.len() >= 5 && b[..5].eq_ignore_ascii_case(b"sips:") {
            return SipUri::parse_parts(true, &s[5..]).map(Uri::Sip);
        }
        let colon = lex::find_byte(s, b':').ok_or(UriError::MissingScheme)?;
        let scheme = &s[..colon];
        if !is_scheme(scheme) {
            return Err(UriError::MissingScheme);
        }
        let rest = &s[colon + 1..];
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            SipUri::parse_parts(scheme.len() == 4, rest).map(Uri::Sip)
        } else if scheme.eq_ignore_ascii_case("tel") {
            TelUri::parse_rest(rest).map(Uri::Tel)
        } else {
            // absoluteURI: no white space or controls, no "<>\"" (RFC 3986 reserved/unreserved/escaped).
            if rest.is_empty()
                || rest
                    .bytes()
                    .any(|b| b <= b' ' || b >= 0x7f || matches!(b, b'<' | b'>' | b'"'))
            {
                return Err(UriError::Bad("absolute URI"));
            }
            Ok(Uri::Other(OpaqueUri {
                scheme: Cow::Borrowed(scheme),
                rest: Cow::Borrowed(rest),
            }))
        }
    }

    /// The scheme, lower-case for the interpreted ones.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other(o) => &o.scheme,
        }
    }

    /// The SIP URI inside, if this is one.
    pub fn as_sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }

    /// Detaches from the message buffer.
    pub fn into_owned(self) -> Uri<'static> {
        match self {
            Uri::Sip(u) => Uri::Sip(u.into_owned()),
            Uri::Tel(t) => Uri::Tel(TelUri {
                number: Cow::Owned(t.number.into_owned()),
                params: t.params.into_owned(),
            }),
            Uri::Other(o) => Uri::Other(OpaqueUri {
                scheme: Cow::Owned(o.scheme.into_owned()),
                rest: Cow::Owned(o.rest.into_owned()),
            }),
        }
    }

    /// URI equivalence (RFC 3261 §19.1.4 for SIP; RFC 3966 §4 for tel; text otherwise).
    pub fn equivalent(&self, other: &Uri<'_>) -> bool {
        match (self, other) {
            (Uri::Sip(a), Uri::Sip(b)) => a.equivalent(b),
            (Uri::Tel(a), Uri::Tel(b)) => {
                tel_digits(&a.number) == tel_digits(&b.number)
                    && params_equivalent(&a.params, &b.params, &[])
            }
            (Uri::Other(a), Uri::Other(b)) => {
                a.scheme.eq_ignore_ascii_case(&b.scheme) && a.rest == b.rest
            }
            _ => false,
        }
    }
}

fn tel_digits(n: &str) -> String {
    n.chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')'))
        .flat_map(|c| c.to_lowercase())
        .collect()
}

/// For the fuzz targets: panics when the one-pass SIP URI path answers differently from the
/// general one on `rest` (the text after `sip:`).
pub(crate) fn check_plain_path(rest: &str) {
    if let Some(plain) = SipUri::parse_plain(false, rest) {
        assert_eq!(
            Ok(plain),
            SipUri::parse_general(false, rest),
            "the one-pass URI path differs on {rest:?}"
        );
    }
}

impl<'a> SipUri<'a> {
    /// Parses a whole `sip:`/`sips:` URI.
    pub fn parse(s: &'a str) -> Result<SipUri<'a>, UriError> {
        match Uri::parse(s)? {
            Uri::Sip(u) => Ok(u),
            _ => Err(UriError::Bad("scheme (not sip or sips)")),
        }
    }

    /// A URI `sip:host` (or `sips:`) with nothing else.
    pub fn new(secure: bool, host: Host<'a>) -> SipUri<'a> {
        SipUri {
            secure,
            user: None,
            password: None,
            host,
            port: None,
            params: Params::default(),
            headers: None,
        }
    }

    fn parse_parts(secure: bool, rest: &'a str) -> Result<SipUri<'a>, UriError> {
        match SipUri::parse_plain(secure, rest) {
            Some(uri) => Ok(uri),
            None => SipUri::parse_general(secure, rest),
        }
    }

    /// The usual SIP URI in one pass: `[user@]host[:port][;params]` with no password,
    /// `%` escape, URI headers or IPv6 reference. Gives what [`SipUri::parse_general`]
    /// gives, or `None` when the URI needs that path (which also reports every error).
    #[inline]
    fn parse_plain(secure: bool, s: &'a str) -> Option<SipUri<'a>> {
        use lex::{class, is};
        let b = s.as_bytes();
        // The user part, if the first byte outside the user characters is an '@'.
        let mut i = 0;
        while i < b.len() && is(b[i], class::USER) && b[i] != b'%' {
            i += 1;
        }
        let (user, host_start) = match b.get(i) {
            Some(b'@') if i > 0 => (Some(Cow::Borrowed(&s[..i])), i + 1),
            Some(b'@') => return None,
            _ => (None, 0),
        };
        let (host, port, mut i) = scan_host_port(s, host_start)?;
        let params = if b.get(i) == Some(&b';') {
            // name[=value] pieces of parameter characters, none empty, no escape.
            let params_start = i + 1;
            let mut piece = params_start;
            let mut eq = None;
            i = params_start;
            while i < b.len() {
                let c = b[i];
                if c == b';' {
                    if i == piece || eq.is_some_and(|e| e + 1 == i) {
                        return None;
                    }
                    piece = i + 1;
                    eq = None;
                } else if c == b'=' && eq.is_none() && i > piece {
                    eq = Some(i);
                } else if !is(c, class::PARAM) || c == b'%' {
                    return None;
                }
                i += 1;
            }
            if i == piece || eq.is_some_and(|e| e + 1 == i) {
                return None;
            }
            &s[params_start..]
        } else if i == b.len() {
            ""
        } else {
            return None;
        };
        Some(SipUri {
            secure,
            user,
            password: None,
            host,
            port,
            params: Params::from_raw(Cow::Borrowed(params)),
            headers: None,
        })
    }

    /// Any SIP URI (after the scheme), or the error that makes it invalid.
    fn parse_general(secure: bool, rest: &'a str) -> Result<SipUri<'a>, UriError> {
        use lex::{class, find_byte};
        // One pass for the delimiters: the first '@' ends the userinfo; after it, the first
        // '?' starts the headers and the first ';' before that the parameters ('?' and ';'
        // may appear in the user part).
        let mut at = None;
        let mut question = None;
        let mut semicolon = None;
        let bytes = rest.as_bytes();
        let mut from = 0;
        while let Some(off) = lex::find3(&bytes[from..], b'@', b'?', b';') {
            let i = from + off;
            match bytes[i] {
                b'@' if at.is_some() => return Err(UriError::Bad("userinfo (several '@')")),
                b'@' => {
                    at = Some(i);
                    question = None;
                    semicolon = None;
                }
                b'?' if question.is_none() => question = Some(i),
                b';' if question.is_none() && semicolon.is_none() => semicolon = Some(i),
                _ => {}
            }
            from = i + 1;
        }
        let host_start = at.map_or(0, |a| a + 1);
        let hostpart_end = question.unwrap_or(rest.len());
        let headers = question.map(|q| &rest[q + 1..]);
        let (hostport, params) = match semicolon {
            Some(sc) => (&rest[host_start..sc], &rest[sc + 1..hostpart_end]),
            None => (&rest[host_start..hostpart_end], ""),
        };
        let (user, password) = match at.map(|a| &rest[..a]) {
            None => (None, None),
            Some(ui) => {
                // The password is after the first ':' (user chars do not include ':').
                let (u, p) = match find_byte(ui, b':') {
                    Some(c) => (&ui[..c], Some(&ui[c + 1..])),
                    None => (ui, None),
                };
                if u.is_empty() || !chars_ok(u, class::USER) {
                    return Err(UriError::Bad("user"));
                }
                if let Some(p) = p
                    && !chars_ok(p, class::PASSWORD)
                {
                    return Err(UriError::Bad("password"));
                }
                (Some(Cow::Borrowed(u)), p.map(Cow::Borrowed))
            }
        };
        let (host, port) = split_host_port(hostport)?;
        if !params.is_empty() {
            for piece in lex::Pieces::new(params, b';') {
                let (name, value) = match find_byte(piece, b'=') {
                    Some(eq) => (&piece[..eq], Some(&piece[eq + 1..])),
                    None => (piece, None),
                };
                if name.is_empty() || !chars_ok(name, class::PARAM) {
                    return Err(UriError::Bad("uri-parameter"));
                }
                if let Some(v) = value
                    && (v.is_empty() || !chars_ok(v, class::PARAM))
                {
                    return Err(UriError::Bad("uri-parameter value"));
                }
            }
        }
        if let Some(h) = headers {
            for piece in h.split('&') {
                let (name, value) = piece.split_once('=').ok_or(UriError::Bad("uri header"))?;
                if name.is_empty()
                    || !chars_ok(name, class::HEADER)
                    || !chars_ok(value, class::HEADER)
                {
                    return Err(UriError::Bad("uri header"));
                }
            }
        }
        Ok(SipUri {
            secure,
            user,
            password,
            host,
            port,
            params: Params::from_raw(Cow::Borrowed(params)),
            headers: headers.map(Cow::Borrowed),
        })
    }

    /// The user part with `%HH` escapes undone.
    pub fn user_decoded(&self) -> Option<Cow<'_, [u8]>> {
        self.user.as_deref().and_then(lex::percent_decode)
    }

    /// The `transport` parameter, lower-cased.
    pub fn transport_param(&self) -> Option<String> {
        self.params
            .get("transport")
            .flatten()
            .map(str::to_ascii_lowercase)
    }

    /// Detaches from the message buffer.
    pub fn into_owned(self) -> SipUri<'static> {
        SipUri {
            secure: self.secure,
            user: self.user.map(|u| Cow::Owned(u.into_owned())),
            password: self.password.map(|p| Cow::Owned(p.into_owned())),
            host: self.host.into_owned(),
            port: self.port,
            params: self.params.into_owned(),
            headers: self.headers.map(|h| Cow::Owned(h.into_owned())),
        }
    }

    /// URI comparison of RFC 3261 §19.1.4: escapes are equivalent to the characters they
    /// stand for, the host and parameter names compare without case, `user`, `ttl`,
    /// `method`, `maddr` and `transport` must match when either side has them, other
    /// parameters only when both have them, and headers must all match.
    pub fn equivalent(&self, other: &SipUri<'_>) -> bool {
        if self.secure != other.secure || self.port != other.port {
            return false;
        }
        if self.user_decoded() != other.user_decoded() {
            return false;
        }
        let pa = self.password.as_deref().and_then(lex::percent_decode);
        let pb = other.password.as_deref().and_then(lex::percent_decode);
        if pa != pb || !self.host.equivalent(&other.host) {
            return false;
        }
        if !params_equivalent(
            &self.params,
            &other.params,
            &["user", "ttl", "method", "maddr", "transport"],
        ) {
            return false;
        }
        let mut ha = header_set(self.headers.as_deref());
        let mut hb = header_set(other.headers.as_deref());
        ha.sort();
        hb.sort();
        ha == hb
    }
}

fn header_set(h: Option<&str>) -> Vec<(String, Vec<u8>)> {
    h.map(|h| {
        h.split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(n, v)| {
                (
                    n.to_ascii_lowercase(),
                    lex::percent_decode(v)
                        .map(Cow::into_owned)
                        .unwrap_or_default(),
                )
            })
            .collect()
    })
    .unwrap_or_default()
}

fn params_equivalent(a: &Params<'_>, b: &Params<'_>, must_match: &[&str]) -> bool {
    let dec = |v: Option<&str>| {
        v.and_then(lex::percent_decode)
            .map(|c| c.to_ascii_lowercase())
    };
    for p in a.iter() {
        let other = b.get(p.name);
        match other {
            Some(v) if dec(p.value) != dec(v) => return false,
            Some(_) => {}
            None if must_match.iter().any(|m| m.eq_ignore_ascii_case(p.name)) => return false,
            None => {}
        }
    }
    for p in b.iter() {
        if a.get(p.name).is_none() && must_match.iter().any(|m| m.eq_ignore_ascii_case(p.name)) {
            return false;
        }
    }
    true
}

impl<'a> TelUri<'a> {
    fn parse_rest(rest: &'a str) -> Result<TelUri<'a>, UriError> {
        let (number, params) = match rest.find(';') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let global = number.strip_prefix('+');
        let digits = global.unwrap_or(number);
        let ok_char = |b: u8| {
            b.is_ascii_digit()
                || matches!(b, b'-' | b'.' | b'(' | b')')
                || (global.is_none() && (b.is_ascii_hexdigit() || b == b'*' || b == b'#'))
        };
        if digits.is_empty() || !digits.bytes().all(ok_char) {
            return Err(UriError::Bad("telephone number"));
        }
        if !params.is_empty()
            && params.split(';').any(|p| {
                p.is_empty()
                    || !p
                        .bytes()
                        .all(|b| is_param_char(b) || b == b'=' || b == b'+' || b == b'&')
            })
        {
            return Err(UriError::Bad("tel parameter"));
        }
        Ok(TelUri {
            number: Cow::Borrowed(number),
            params: Params::from_raw(Cow::Borrowed(params)),
        })
    }
}

impl fmt::Display for SipUri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(u) = &self.user {
            f.write_str(u)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(t) => write!(f, "tel:{}{}", t.number, t.params),
            Uri::Other(o) => write!(f, "{}:{}", o.scheme, o.rest),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass path gives exactly what the general path gives, whenever it answers.
    fn plain_agrees(rest: &str) -> bool {
        match SipUri::parse_plain(false, rest) {
            Some(plain) => {
                assert_eq!(
                    Ok(&plain),
                    SipUri::parse_general(false, rest).as_ref(),
                    "{rest:?}"
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn plain_path_agrees_with_the_general_one() {
        for rest in [
            "alice@example.com",
            "alice@192.0.2.10:5060",
            "bob@example.com;transport=tcp;lr",
            "example.com",
            "example.com:5061;transport=tls",
            "proxy.example.com;lr",
            "alice;x=1@host",
            "alice?x@host",
            "1.2.3.999",
            "a_b.example.com:5060",
            "+15555550100@gw.example.com;user=phone",
            "alice@host;maddr=[::1]",
            "alice@host;a=b:c",
        ] {
            assert!(plain_agrees(rest), "{rest:?} should take the one-pass path");
        }
        // Forms the one-pass path leaves to the general one (valid or not).
        for rest in [
            "",
            "@host",
            "alice@",
            "alice:secret@host",
            "al%41ice@host",
            "alice@host;a=%41",
            "alice@host?subject=x",
            "alice@[2001:db8::1]:5060",
            "alice@host:",
            "alice@host:99999",
            "alice@host;",
            "alice@host;;lr",
            "alice@host;=x",
            "alice@host;a=",
            "alice@host;a=b=c",
            "alice@host;a@b",
            "alice@host@other",
            "alice@ho st",
            "alice@-host",
            "alice@a..b",
        ] {
            assert!(!plain_agrees(rest), "{rest:?} should take the general path");
        }
    }

    proptest::proptest! {
        #[test]
        fn ipv4_never_disagrees_with_the_standard_parser(s in "[0-9.]{0,17}|[0-3.a]{0,9}") {
            proptest::prop_assert_eq!(parse_ipv4(s.as_bytes()), s.parse().ok());
        }

        #[test]
        fn plain_path_never_disagrees(rest in "[a-c0-2@:;=.%?\\[\\]_+-]{0,24}") {
            plain_agrees(&rest);
        }
    }

    fn sip(s: &str) -> SipUri<'_> {
        SipUri::parse(s).unwrap()
    }

    #[test]
    fn parts() {
        let u = sip("sips:alice:pw@[2001:db8::10]:5061;transport=tcp;lr?Subject=x&a=b");
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.host, Host::V6("2001:db8::10".parse().unwrap()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.transport_param().as_deref(), Some("tcp"));
        assert!(u.params.contains("lr"));
        assert_eq!(u.headers.as_deref(), Some("Subject=x&a=b"));
        assert_eq!(
            u.to_string(),
            "sips:alice:pw@[2001:db8::10]:5061;transport=tcp;lr?Subject=x&a=b"
        );
    }

    #[test]
    fn semicolon_in_user() {
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user.as_deref(), Some("user;par=u%40example.net"));
        assert_eq!(u.host, Host::Name("example.com".into()));
    }

    #[test]
    fn ipv6_forms() {
        assert!(SipUri::parse("sip:2001:db8::10").is_err());
        let u = sip("sip:[2001:db8::10:5070]");
        assert_eq!(u.port, None);
        let u = sip("sip:[2001:db8::10]:5070");
        assert_eq!(u.port, Some(5070));
        // RFC 5118 §4.10: tolerated, read as 2001:db8::192.0.2.1.
        assert_eq!(
            sip("sip:[2001:db8:::192.0.2.1]").host,
            Host::V6("2001:db8::192.0.2.1".parse().unwrap())
        );
        assert!(SipUri::parse("sip:[2001:db8:::1]").is_err());
        assert!(SipUri::parse("sip:[::ffff:192.0.2.1]").is_ok());
    }

    #[test]
    fn escapes_are_equivalent() {
        assert!(
            sip("sip:%61lice@atlanta.com;transport=TCP")
                .equivalent(&sip("sip:alice@AtLanTa.CoM;Transport=tcp"))
        );
        assert!(!sip("sip:alice@atlanta.com").equivalent(&sip("sip:ALICE@atlanta.com")));
        assert!(!sip("sip:bob@biloxi.com").equivalent(&sip("sip:bob@biloxi.com:5060")));
        assert!(!sip("sip:bob@biloxi.com;transport=udp").equivalent(&sip("sip:bob@biloxi.com")));
        assert!(
            sip("sip:carol@chicago.com;security=on")
                .equivalent(&sip("sip:carol@chicago.com;newparam=5"))
        );
        assert!(
            sip("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com").equivalent(
                &sip("sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com")
            )
        );
        assert!(
            !sip("sip:carol@chicago.com?Subject=next%20meeting")
                .equivalent(&sip("sip:carol@chicago.com?Subject=another%20meeting"))
        );
    }

    #[test]
    fn ipv4_like_the_standard_parser() {
        let cases = [
            "192.0.2.10",
            "0.0.0.0",
            "255.255.255.255",
            "256.0.0.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.",
            "1.2.3.4.5",
            "1..2.3",
            "1.2.3.04",
            "1.2.3.0",
            "1234.1.1.1",
            "1.2.3.-4",
            "",
            "1",
            "10.0.0.1a",
            "1.2.3.4a",
            "1.2.3.",
            ".1.2.3",
            "1.2.3.255",
            "1.2.3.256",
            "192.0.2.10",
            "0.00.0.0",
            "1.2.3.400",
            "999.1.1.1",
            "1.2.3.4 ",
            "100.200.250.255",
            "1.2.3.4.5.6.7.8",
        ];
        for c in cases {
            assert_eq!(parse_ipv4(c.as_bytes()), c.parse().ok(), "{c:?}");
        }
        assert_eq!(Host::parse("1.2.3").unwrap(), Host::Name("1.2.3".into()));
        assert!(Host::parse("a..b").is_err());
        assert!(Host::parse(".a").is_err());
        assert!(Host::parse("-a").is_err());
        assert!(Host::parse("a-.b_c.").is_ok());
    }

    #[test]
    fn delimiters_in_the_user_part() {
        let u = sip("sip:a?b;c@host;lr?x=y");
        assert_eq!(u.user.as_deref(), Some("a?b;c"));
        assert!(u.params.contains("lr"));
        assert_eq!(u.headers.as_deref(), Some("x=y"));
        // A ';' after the '?' belongs to the headers (where it is not allowed).
        assert_eq!(
            SipUri::parse("sip:host?h=v;w"),
            Err(UriError::Bad("uri header"))
        );
        assert!(SipUri::parse("sip:a@b@c").is_err());
        assert!(
            Uri::parse("SIPS:alice@host")
                .unwrap()
                .as_sip()
                .unwrap()
                .secure
        );
    }

    #[test]
    fn tel_and_other() {
        let u = Uri::parse("tel:+1-201-555-0123;ext=1").unwrap();
        assert_eq!(u.scheme(), "tel");
        assert!(u.equivalent(&Uri::parse("tel:+12015550123;ext=1").unwrap()));
        let o = Uri::parse("urn:service:sos").unwrap();
        assert!(matches!(o, Uri::Other(_)));
        assert_eq!(o.to_string(), "urn:service:sos");
        assert!(Uri::parse("nocolon").is_err());
        assert!(Uri::parse("sip:user@host with space").is_err());
    }
}
