//! The SDP data model (RFC 8866, formerly RFC 4566): a tolerant parser and a printer.
//!
//! Only what offer/answer needs is typed: `o=`, `s=`, `c=`, `m=` and `a=`. Every other line
//! (`i= u= e= p= b= t= r= z= k=` and letters nobody defined) is kept verbatim and printed back,
//! so an SDP that passes through keeps what we did not understand. Lines are put into the
//! RFC 8866 §5 order when parsed, which makes parse -> print -> parse a fixed point.
//!
//! Tolerated, because real peers send them: bare LF line ends, trailing whitespace, blank or
//! garbage lines (ignored), lines out of order, a missing `t=` or `s=`, session ids longer than
//! 64 bits, unknown media types and transports, an `m=` line without formats.
//! Refused ([`SdpError::Malformed`]): no `v=0` first, no `o=` line or one with fewer than six
//! fields, an `m=` line without port and transport, a `c=` line without an address.

use std::fmt;
use std::net::IpAddr;

use super::SdpError;

/// A parsed session description: the session-level part and its media descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// The `o=` line.
    pub origin: Origin,
    /// The `s=` value (`-` when the peer left the line out).
    pub session_name: String,
    /// The session-level `c=` line, the default for every media description.
    pub connection: Option<Connection>,
    /// Session-level lines kept verbatim (`i= u= e= p= b= t= r= z= k=`, unknown letters), in
    /// RFC 8866 order. A missing `t=` is added as `t=0 0`.
    pub other_lines: Vec<Line>,
    /// Session-level `a=` lines, in their order.
    pub attributes: Vec<Attribute>,
    /// The media descriptions (`m=` sections), in their order.
    pub media: Vec<MediaDescription>,
}

/// The `o=` line (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `<username>`, `-` when none.
    pub username: String,
    /// `<sess-id>`, kept as text: some peers use more digits than 64 bits hold.
    pub session_id: String,
    /// `<sess-version>`, kept as text; see [`Origin::version`].
    pub session_version: String,
    /// `<nettype>`, `IN`.
    pub network_type: String,
    /// `<addrtype>`, `IP4` or `IP6`.
    pub address_type: String,
    /// `<unicast-address>`.
    pub address: String,
}

impl Origin {
    /// The session version as a number, when it is one that fits 64 bits (RFC 3264 §8: an
    /// unchanged version in a re-offer means an unchanged session).
    pub fn version(&self) -> Option<u64> {
        self.session_version.parse().ok()
    }
}

/// A `c=` line (RFC 8866 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `<nettype>`, `IN`.
    pub network_type: String,
    /// `<addrtype>`, `IP4` or `IP6`.
    pub address_type: String,
    /// `<connection-address>`, possibly with a multicast `/ttl` or `/count` suffix, or a
    /// domain name.
    pub address: String,
}

impl Connection {
    /// A `c=IN IP4 ...` or `c=IN IP6 ...` line for `ip`.
    pub fn new(ip: IpAddr) -> Self {
        Self {
            network_type: "IN".to_owned(),
            address_type: address_type(ip).to_owned(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP address (without a multicast suffix); `None` for a domain name
    /// or garbage.
    pub fn ip(&self) -> Option<IpAddr> {
        let address = self.address.split('/').next().unwrap_or_default();
        address.parse().ok()
    }

    /// Whether this is the RFC 2543 hold address `0.0.0.0` (or `::`), which RFC 3264 §8.4
    /// still asks answerers to understand.
    pub fn is_unspecified(&self) -> bool {
        self.ip().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `IP4` or `IP6`, as `o=` and `c=` spell the address type of `ip`.
pub(crate) fn address_type(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// One media description: the `m=` line and the lines under it (RFC 8866 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// `<media>`: `audio`, `video`, `image`, ... (any token is kept).
    pub media: String,
    /// `<port>`; 0 rejects or disables the stream (RFC 3264 §6).
    pub port: u16,
    /// The `/<number of ports>` suffix, when given.
    pub port_count: Option<u16>,
    /// `<proto>`: `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, ...
    pub proto: String,
    /// `<fmt>` list: RTP payload type numbers for the RTP profiles.
    pub formats: Vec<String>,
    /// The media-level `c=` line, which overrides the session's.
    pub connection: Option<Connection>,
    /// Media-level lines kept verbatim (`i= b= k=`, unknown letters), in RFC 8866 order.
    pub other_lines: Vec<Line>,
    /// Media-level `a=` lines, in their order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// The value of the first `a=name` or `a=name:value` (name case-insensitive); `Some("")`
    /// for a property attribute such as `a=rtcp-mux`.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attribute(&self.attributes, name)
    }

    /// The values of every `a=name:value` line with this name, in order.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.attributes
            .iter()
            .filter(move |a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or_default())
    }

    /// The `m=` formats that are RTP payload type numbers (0-127), in order.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt <= 127)
    }
}

impl SessionDescription {
    /// The value of the first session-level `a=name[:value]` (name case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<&str> {
        find_attribute(&self.attributes, name)
    }

    /// The connection that applies to `media`: its own `c=`, else the session's.
    pub fn connection_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }
}

fn find_attribute<'a>(attributes: &'a [Attribute], name: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_deref().unwrap_or_default())
}

/// An `a=` line: `a=name` (a property) or `a=name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name.
    pub name: String,
    /// The value after the first `:`, if any.
    pub value: Option<String>,
}

impl Attribute {
    /// A property attribute, `a=name`.
    pub fn property(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: None,
        }
    }

    /// A value attribute, `a=name:value`.
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            value: Some(value.into()),
        }
    }
}

/// A line kept verbatim: its type letter and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The type letter (`b`, `t`, ...).
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// RFC 8866 §5: the order of session-level lines; letters we do not know go before `a=`.
const SESSION_ORDER: &str = "vosiuepcbtrzk";
/// RFC 8866 §5: the order of media-level lines.
const MEDIA_ORDER: &str = "icbk";

fn rank(order: &str, kind: char) -> usize {
    order.find(kind).unwrap_or(order.len())
}

impl SessionDescription {
    /// Parses an SDP body. Tolerant of what real peers send (see the module documentation);
    /// never panics.
    ///
    /// # Errors
    ///
    /// [`SdpError::Malformed`] when the text is not SDP or a line offer/answer needs is
    /// unusable.
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let mut lines = text
            .split('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter_map(|(n, l)| {
                // A line is `<letter>=<value>`; anything else is ignored.
                let mut chars = l.chars();
                let kind = chars.next()?;
                (kind.is_ascii_alphabetic() && chars.next() == Some('='))
                    .then(|| (n, kind, l[2..].trim()))
            });
        let malformed = |line: usize, reason: &'static str| SdpError::Malformed { line, reason };

        match lines.next() {
            Some((_, 'v', "0")) => {}
            Some((n, 'v', _)) => return Err(malformed(n, "unsupported sdp version")),
            Some((n, _, _)) => return Err(malformed(n, "first line is not v=")),
            None => return Err(malformed(0, "empty session description")),
        }

        let mut origin = None;
        let mut session_name = None;
        let mut connection = None;
        let mut other_lines = Vec::new();
        let mut attributes = Vec::new();
        let mut media: Vec<MediaDescription> = Vec::new();

        for (n, kind, value) in lines {
            if kind == 'm' {
                media.push(parse_media(value).ok_or(malformed(n, "bad m= line"))?);
                continue;
            }
            if let Some(m) = media.last_mut() {
                match kind {
                    'c' => {
                        m.connection =
                            Some(parse_connection(value).ok_or(malformed(n, "bad c= line"))?);
                    }
                    'a' => m.attributes.push(parse_attribute(value)),
                    // A repeated session-level line after m= belongs to nobody: ignore it.
                    'v' | 'o' | 's' | 't' | 'r' | 'z' => {}
                    _ => m.other_lines.push(Line {
                        kind,
                        value: value.to_owned(),
                    }),
                }
                continue;
            }
            match kind {
                'o' if origin.is_none() => {
                    origin = Some(parse_origin(value).ok_or(malformed(n, "bad o= line"))?);
                }
                's' if session_name.is_none() => session_name = Some(value.to_owned()),
                'c' => {
                    connection = Some(parse_connection(value).ok_or(malformed(n, "bad c= line"))?);
                }
                'a' => attributes.push(parse_attribute(value)),
                'v' | 'o' | 's' => {}
                _ => other_lines.push(Line {
                    kind,
                    value: value.to_owned(),
                }),
            }
        }

        let origin = origin.ok_or(malformed(0, "missing o= line"))?;
        if !other_lines.iter().any(|l| l.kind == 't') {
            other_lines.push(Line {
                kind: 't',
                value: "0 0".to_owned(),
            });
        }
        other_lines.sort_by_key(|l| rank(SESSION_ORDER, l.kind));
        for m in &mut media {
            m.other_lines.sort_by_key(|l| rank(MEDIA_ORDER, l.kind));
        }
        Ok(Self {
            origin,
            session_name: session_name.unwrap_or_else(|| "-".to_owned()),
            connection,
            other_lines,
            attributes,
            media,
        })
    }
}

fn parse_origin(value: &str) -> Option<Origin> {
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    let [
        username,
        session_id,
        session_version,
        network_type,
        address_type,
        address,
        ..,
    ] = f.as_slice()
    else {
        return None;
    };
    Some(Origin {
        username: (*username).to_owned(),
        session_id: (*session_id).to_owned(),
        session_version: (*session_version).to_owned(),
        network_type: (*network_type).to_owned(),
        address_type: (*address_type).to_owned(),
        address: (*address).to_owned(),
    })
}

fn parse_connection(value: &str) -> Option<Connection> {
    let f: Vec<&str> = value.split_ascii_whitespace().collect();
    let [network_type, address_type, address, ..] = f.as_slice() else {
        return None;
    };
    Some(Connection {
        network_type: (*network_type).to_owned(),
        address_type: (*address_type).to_owned(),
        address: (*address).to_owned(),
    })
}

fn parse_media(value: &str) -> Option<MediaDescription> {
    let mut f = value.split_ascii_whitespace();
    let media = f.next()?.to_owned();
    let port = f.next()?;
    let (port, port_count) = match port.split_once('/') {
        Some((port, count)) => (port.parse().ok()?, Some(count.parse().ok()?)),
        None => (port.parse().ok()?, None),
    };
    let proto = f.next()?.to_owned();
    Some(MediaDescription {
        media,
        port,
        port_count,
        proto,
        formats: f.map(str::to_owned).collect(),
        connection: None,
        other_lines: Vec::new(),
        attributes: Vec::new(),
    })
}

fn parse_attribute(value: &str) -> Attribute {
    match value.split_once(':') {
        Some((name, value)) => Attribute {
            name: name.trim().to_owned(),
            value: Some(value.trim().to_owned()),
        },
        None => Attribute {
            name: value.to_owned(),
            value: None,
        },
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "a={}:{}\r\n", self.name, v),
            None => write!(f, "a={}\r\n", self.name),
        }
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c={} {} {}\r\n",
            self.network_type, self.address_type, self.address
        )
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}\r\n", self.kind, self.value)
    }
}

impl fmt::Display for MediaDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={} {}", self.media, self.port)?;
        if let Some(count) = self.port_count {
            write!(f, "/{count}")?;
        }
        write!(f, " {}", self.proto)?;
        for format in &self.formats {
            write!(f, " {format}")?;
        }
        f.write_str("\r\n")?;
        let (before_c, after_c): (Vec<_>, Vec<_>) =
            self.other_lines.iter().partition(|l| l.kind == 'i');
        for line in before_c {
            write!(f, "{line}")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "{c}")?;
        }
        for line in after_c {
            write!(f, "{line}")?;
        }
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// Prints the SDP with CRLF line ends, lines in RFC 8866 §5 order.
impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(
            f,
            "v=0\r\no={} {} {} {} {} {}\r\ns={}\r\n",
            o.username,
            o.session_id,
            o.session_version,
            o.network_type,
            o.address_type,
            o.address,
            self.session_name
        )?;
        let c_rank = rank(SESSION_ORDER, 'c');
        let (before_c, after_c): (Vec<_>, Vec<_>) = self
            .other_lines
            .iter()
            .partition(|l| rank(SESSION_ORDER, l.kind) < c_rank);
        for line in before_c {
            write!(f, "{line}")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "{c}")?;
        }
        for line in after_c {
            write!(f, "{line}")?;
        }
        for a in &self.attributes {
            write!(f, "{a}")?;
        }
        for m in &self.media {
            write!(f, "{m}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for SessionDescription {
    type Err = SdpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
        c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";

    #[test]
    fn parses_and_prints_sipp_byte_exact() {
        let d = SessionDescription::parse(SIPP).expect("valid");
        assert_eq!(d.origin.session_id, "53655765");
        assert_eq!(d.origin.version(), Some(2353687637));
        assert_eq!(d.media.len(), 1);
        let m = &d.media[0];
        assert_eq!(
            (m.media.as_str(), m.port, m.proto.as_str()),
            ("audio", 6000, "RTP/AVP")
        );
        assert_eq!(m.payload_types().collect::<Vec<_>>(), [0]);
        assert_eq!(m.attribute("RTPMAP"), Some("0 PCMU/8000"));
        assert_eq!(
            d.connection_for(m).and_then(Connection::ip),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(d.to_string(), SIPP);
    }

    #[test]
    fn tolerates_lf_garbage_out_of_order_and_unknown_letters() {
        let text = "\n v=0 \no=- 123456789012345678901234 x IN IP6 ::1\nc=IN IP6 ::1\n\
            this is not sdp\n=\nt=0 0\nb=AS:64\ny=0100000001\nm=audio 0/2 TCP/MRCPv2\n\
            a=rtcp-mux\nb=TIAS:64000\nc=IN IP4 0.0.0.0\ni=media title\nm=foo 9 x 1\n";
        let d = SessionDescription::parse(text).expect("tolerated");
        assert_eq!(d.session_name, "-");
        assert_eq!(d.origin.version(), None);
        let kinds: String = d.other_lines.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, "bty");
        assert_eq!(d.media.len(), 2);
        assert_eq!(d.media[0].port_count, Some(2));
        assert!(d.media[0].formats.is_empty());
        assert_eq!(d.media[0].attribute("rtcp-mux"), Some(""));
        assert!(d.media[0].connection.as_ref().unwrap().is_unspecified());
        let printed = d.to_string();
        assert!(printed.contains("m=audio 0/2 TCP/MRCPv2\r\ni=media title\r\nc=IN IP4 0.0.0.0\r\nb=TIAS:64000\r\na=rtcp-mux\r\n"), "{printed}");
        assert_eq!(SessionDescription::parse(&printed), Ok(d));
    }

    #[test]
    fn missing_t_is_added() {
        let d = SessionDescription::parse("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=x\r\n").unwrap();
        assert_eq!(
            d.to_string(),
            "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=x\r\nt=0 0\r\n"
        );
    }

    #[test]
    fn refusals() {
        let cases = [
            ("", 0, "empty session description"),
            ("v=1\r\n", 1, "unsupported sdp version"),
            ("o=- 1 1 IN IP4 1.2.3.4\r\n", 1, "first line is not v="),
            ("v=0\r\ns=-\r\n", 0, "missing o= line"),
            ("v=0\r\no=- 1 1 IN IP4\r\n", 2, "bad o= line"),
            ("v=0\r\no=- 1 1 IN IP4 a\r\nc=IN IP4\r\n", 3, "bad c= line"),
            (
                "v=0\r\no=- 1 1 IN IP4 a\r\nm=audio x RTP/AVP 0\r\n",
                3,
                "bad m= line",
            ),
            (
                "v=0\r\no=- 1 1 IN IP4 a\r\nm=audio 70000 RTP/AVP 0\r\n",
                3,
                "bad m= line",
            ),
            ("v=0\r\no=- 1 1 IN IP4 a\r\nm=audio 7\r\n", 3, "bad m= line"),
        ];
        for (text, line, reason) in cases {
            assert_eq!(
                SessionDescription::parse(text),
                Err(SdpError::Malformed { line, reason }),
                "{text:?}"
            );
        }
    }
}
