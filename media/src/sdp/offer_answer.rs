//! The offer/answer model (RFC 3264) for one audio stream.
//!
//! - [`offer`]: our offer from [`LocalMedia`].
//! - [`answer`]: our answer to a peer's offer. The answer keeps the offer's `m=` lines in
//!   number and order (§6); the first usable audio stream is accepted, every other one is
//!   refused with port 0 and the offer's format list. The offerer's codec order and payload
//!   type numbers win (§6.1).
//! - [`apply_answer`]: the peer's answer to our offer; the answer's first common codec and
//!   its payload type numbers win.
//!
//! SRTP (RFC 4568 SDES): an `RTP/SAVP` offer needs a key; an `RTP/AVP` offer with `a=crypto`
//! is best-effort SRTP, answered with a key under [`SrtpPolicy::Optional`] or
//! [`SrtpPolicy::Required`] and without one (plain RTP) under [`SrtpPolicy::Off`]. We answer
//! the first `a=crypto` line whose suite we hold a key for, with our key and its tag (§5.1.2).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::description::{Connection, Line, MediaDescription, Origin, address_type};
use super::{
    Attribute, LocalMedia, Negotiated, SdpError, SessionDescription, SrtpPolicy,
    TELEPHONE_EVENT_48K_PAYLOAD_TYPE, TELEPHONE_EVENT_PAYLOAD_TYPE,
};
use crate::codec::CodecKind;
use crate::session::Direction;
use crate::srtp::CryptoAttribute;

/// The `a=fmtp` of the telephone-event payload type: DTMF 0-9, *, #, A-D and flash
/// (RFC 4733 §3.2).
const TELEPHONE_EVENT_FMTP: &str = "0-16";

/// The packet durations a G.711 session can send (RFC 3551 §4.5 frame-based packing in
/// 10 ms steps; 200 ms is the session's limit).
const PTIME_RANGE_MS: std::ops::RangeInclusive<u64> = 10..=200;

/// The packet duration sent when the peer asks for nothing we can do.
const DEFAULT_PTIME: Duration = Duration::from_millis(20);

/// Our offer: one audio stream with our codecs, telephone-event, ptime, RTCP and SRTP lines.
pub fn offer(local: &LocalMedia) -> SessionDescription {
    let proto = match local.srtp {
        SrtpPolicy::Required => "RTP/SAVP",
        SrtpPolicy::Off | SrtpPolicy::Optional => "RTP/AVP",
    };
    let mut m = media("audio", local.rtp_port, proto);
    let mut codecs = local.codecs.clone();
    dedup(&mut codecs);
    for codec in &codecs {
        push_codec(&mut m, *codec, codec.default_payload_type());
    }
    if local.telephone_event {
        push_telephone_event(&mut m, TELEPHONE_EVENT_PAYLOAD_TYPE, 8000);
        if codecs.contains(&CodecKind::Opus) {
            push_telephone_event(&mut m, TELEPHONE_EVENT_48K_PAYLOAD_TYPE, 48_000);
        }
    }
    push_transport_attributes(&mut m, local, local.rtcp_mux, true);
    if local.srtp != SrtpPolicy::Off {
        for key in &local.crypto {
            m.attributes.push(Attribute::new("crypto", key.to_string()));
        }
    }
    m.attributes
        .push(Attribute::property(direction_name(local.direction)));
    session(local, vec![m])
}

/// Our answer to `remote_offer`, and the negotiated stream.
///
/// # Errors
///
/// When no audio stream is acceptable: the error of the first audio stream tried (no common
/// codec, SRTP policy mismatch, unsupported transport...), or [`SdpError::NoAudioStream`].
/// The caller answers the INVITE with [`SdpError::status_code`] and [`SdpError::warning`].
pub fn answer(
    remote_offer: &SessionDescription,
    local: &LocalMedia,
) -> Result<(SessionDescription, Negotiated), SdpError> {
    let mut negotiated = None;
    let mut first_error = None;
    let mut answered = Vec::with_capacity(remote_offer.media.len());
    for m in &remote_offer.media {
        if negotiated.is_none() && m.media.eq_ignore_ascii_case("audio") && m.port != 0 {
            match answer_audio(remote_offer, m, local) {
                Ok((ours, n)) => {
                    answered.push(ours);
                    negotiated = Some(n);
                    continue;
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        answered.push(refused(m));
    }
    match negotiated {
        Some(n) => Ok((session(local, answered), n)),
        None => Err(first_error.unwrap_or(SdpError::NoAudioStream)),
    }
}

/// The negotiated stream from the peer's answer to the offer [`offer`] made of `our_offer`.
///
/// # Errors
///
/// [`SdpError::Rejected`] when the peer refused the stream (port 0), or what makes the
/// answer unusable (no common codec, missing or mismatched SRTP key, no address...).
pub fn apply_answer(
    our_offer: &LocalMedia,
    remote_answer: &SessionDescription,
) -> Result<Negotiated, SdpError> {
    let m = remote_answer
        .media
        .first()
        .filter(|m| m.media.eq_ignore_ascii_case("audio"))
        .ok_or(SdpError::NoAudioStream)?;
    if m.port == 0 {
        return Err(SdpError::Rejected);
    }
    let secure_proto = secure_profile(&m.proto)?;
    let formats = rtp_formats(m);
    let (codec, payload_type) = formats
        .iter()
        .find_map(|f| {
            f.codec
                .filter(|c| our_offer.codecs.contains(c))
                .map(|c| (c, f.pt))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let telephone_event_payload_type = our_offer
        .telephone_event
        .then(|| telephone_event(&formats, codec))
        .flatten();

    let srtp = if our_offer.srtp == SrtpPolicy::Off {
        if secure_proto {
            return Err(SdpError::SrtpOff);
        }
        None
    } else {
        let mut lines = m.attributes_named("crypto").peekable();
        let answered = lines.peek().is_some();
        let pair = lines
            .filter_map(|v| CryptoAttribute::parse(v).ok())
            .find_map(|theirs| {
                our_offer
                    .crypto
                    .iter()
                    .find(|ours| ours.tag == theirs.tag && ours.suite == theirs.suite)
                    .map(|ours| (ours.clone(), theirs))
            });
        match pair {
            Some(pair) => Some(pair),
            None if answered => return Err(SdpError::CryptoMismatch),
            None if our_offer.srtp == SrtpPolicy::Required || secure_proto => {
                return Err(SdpError::SrtpRequired);
            }
            None => None,
        }
    };

    let remote = remote_stream(remote_answer, m, our_offer.rtcp_mux)?;
    Ok(Negotiated {
        codec,
        payload_type,
        ptime: send_ptime(codec, remote_answer, m),
        telephone_event_payload_type,
        remote_rtp: remote.rtp,
        remote_rtcp: remote.rtcp,
        rtcp_mux: remote.rtcp_mux,
        srtp,
        direction: intersect(our_offer.direction, reverse(remote.direction)),
        remote_direction: remote.direction,
        remote_on_hold: !remote.direction.receives(),
    })
}

/// Negotiates one offered audio stream: our `m=` section and the outcome.
fn answer_audio(
    offer: &SessionDescription,
    m: &MediaDescription,
    local: &LocalMedia,
) -> Result<(MediaDescription, Negotiated), SdpError> {
    let secure_proto = secure_profile(&m.proto)?;
    let formats = rtp_formats(m);
    let (codec, payload_type) = formats
        .iter()
        .find_map(|f| {
            f.codec
                .filter(|c| local.codecs.contains(c))
                .map(|c| (c, f.pt))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let telephone_event_payload_type = local
        .telephone_event
        .then(|| telephone_event(&formats, codec))
        .flatten();
    let srtp = answer_srtp(m, secure_proto, local)?;
    let remote = remote_stream(offer, m, local.rtcp_mux)?;
    let direction = intersect(reverse(remote.direction), local.direction);

    let mut ours = media(&m.media, local.rtp_port, &m.proto);
    push_codec(&mut ours, codec, payload_type);
    if let Some(pt) = telephone_event_payload_type {
        let rate = formats
            .iter()
            .find(|f| f.pt == pt)
            .and_then(|f| f.telephone_event_rate)
            .unwrap_or(8000);
        push_telephone_event(&mut ours, pt, rate);
    }
    push_transport_attributes(&mut ours, local, remote.rtcp_mux, !remote.rtcp_mux);
    if let Some((key, _)) = &srtp {
        ours.attributes
            .push(Attribute::new("crypto", key.to_string()));
    }
    ours.attributes
        .push(Attribute::property(direction_name(direction)));

    let negotiated = Negotiated {
        codec,
        payload_type,
        ptime: send_ptime(codec, offer, m),
        telephone_event_payload_type,
        remote_rtp: remote.rtp,
        remote_rtcp: remote.rtcp,
        rtcp_mux: remote.rtcp_mux,
        srtp,
        direction,
        remote_direction: remote.direction,
        remote_on_hold: !remote.direction.receives(),
    };
    Ok((ours, negotiated))
}

/// The SRTP keys of our answer: (ours with the offer's tag, theirs), or plain RTP.
fn answer_srtp(
    m: &MediaDescription,
    secure_proto: bool,
    local: &LocalMedia,
) -> Result<Option<(CryptoAttribute, CryptoAttribute)>, SdpError> {
    if local.srtp == SrtpPolicy::Off {
        // A key in an RTP/AVP offer is best effort: plain RTP answers it.
        return if secure_proto {
            Err(SdpError::SrtpOff)
        } else {
            Ok(None)
        };
    }
    let offered: Vec<CryptoAttribute> = m
        .attributes_named("crypto")
        .filter_map(|v| CryptoAttribute::parse(v).ok())
        .collect();
    let chosen = offered.iter().find_map(|theirs| {
        local
            .crypto
            .iter()
            .find(|ours| ours.suite == theirs.suite)
            .map(|ours| {
                let mut ours = ours.clone();
                ours.tag = theirs.tag;
                (ours, theirs.clone())
            })
    });
    match chosen {
        Some(pair) => Ok(Some(pair)),
        None if local.crypto.is_empty() && !offered.is_empty() => Err(SdpError::MissingLocalKey),
        None if secure_proto => Err(SdpError::NoCommonCryptoSuite),
        None if local.srtp == SrtpPolicy::Required => {
            if m.attributes_named("crypto").next().is_some() {
                Err(SdpError::NoCommonCryptoSuite)
            } else {
                Err(SdpError::SrtpRequired)
            }
        }
        None => Ok(None),
    }
}

/// Whether `proto` is a secure RTP profile; an error for transports we do not speak.
fn secure_profile(proto: &str) -> Result<bool, SdpError> {
    match proto.to_ascii_uppercase().as_str() {
        // AVPF (RFC 4585) is AVP with earlier feedback; an AVP endpoint interoperates with it.
        "RTP/AVP" | "RTP/AVPF" => Ok(false),
        "RTP/SAVP" | "RTP/SAVPF" => Ok(true),
        _ => Err(SdpError::UnsupportedTransport(proto.to_owned())),
    }
}

/// One RTP payload type of an `m=` line and what it is.
struct Format {
    pt: u8,
    codec: Option<CodecKind>,
    telephone_event_rate: Option<u32>,
}

/// The payload types of `m`, identified by `a=rtpmap` or, for static types without one,
/// by RFC 3551 table 4.
fn rtp_formats(m: &MediaDescription) -> Vec<Format> {
    // One pass over the attributes, whatever the number of formats (hostile input).
    let mut rtpmaps: [Option<&str>; 128] = [None; 128];
    for v in m.attributes_named("rtpmap") {
        if let Some((number, encoding)) = v.split_once(char::is_whitespace)
            && let Ok(pt) = number.trim().parse::<u8>()
            && let Some(slot) = rtpmaps.get_mut(usize::from(pt))
        {
            slot.get_or_insert(encoding.trim());
        }
    }
    let mut seen = [false; 128];
    m.payload_types()
        .filter(|pt| !std::mem::replace(&mut seen[usize::from(*pt)], true))
        .map(|pt| {
            let (name, rate) = match rtpmaps[usize::from(pt)] {
                Some(encoding) => {
                    let mut parts = encoding.split('/');
                    let name = parts.next().unwrap_or_default();
                    let rate = parts.next().and_then(|r| r.trim().parse::<u32>().ok());
                    (name, rate)
                }
                None => match pt {
                    0 => ("PCMU", Some(8000)),
                    8 => ("PCMA", Some(8000)),
                    _ => ("", None),
                },
            };
            let codec = rate.and_then(|r| CodecKind::from_rtpmap(name, r));
            let telephone_event_rate =
                rate.filter(|_| name.eq_ignore_ascii_case("telephone-event"));
            Format {
                pt,
                codec,
                telephone_event_rate,
            }
        })
        .collect()
}

/// The telephone-event payload type to use with `codec`: one at the codec's clock rate,
/// else, for Opus, one at 8000 Hz.
fn telephone_event(formats: &[Format], codec: CodecKind) -> Option<u8> {
    let at = |rate: u32| {
        formats
            .iter()
            .find(|f| f.telephone_event_rate == Some(rate))
            .map(|f| f.pt)
    };
    at(codec.clock_rate()).or_else(|| (codec == CodecKind::Opus).then(|| at(8000)).flatten())
}

/// Where the peer's stream is and which way it flows.
struct RemoteStream {
    rtp: SocketAddr,
    rtcp: Option<SocketAddr>,
    rtcp_mux: bool,
    /// The peer's direction as it takes effect.
    direction: Direction,
}

fn remote_stream(
    sdp: &SessionDescription,
    m: &MediaDescription,
    local_rtcp_mux: bool,
) -> Result<RemoteStream, SdpError> {
    let connection = sdp.connection_for(m).ok_or(SdpError::NoConnectionAddress)?;
    let ip = connection.ip().ok_or(SdpError::NoConnectionAddress)?;
    let rtcp_mux = local_rtcp_mux && m.attribute("rtcp-mux").is_some();
    let rtcp = if rtcp_mux {
        None
    } else {
        match m.attribute("rtcp").and_then(|v| parse_rtcp(v, ip)) {
            Some(addr) => Some(addr),
            None => m.port.checked_add(1).map(|p| SocketAddr::new(ip, p)),
        }
    };
    let declared = direction_attribute(&m.attributes)
        .or_else(|| direction_attribute(&sdp.attributes))
        .unwrap_or_default();
    // RFC 3264 §8.4: `c=0.0.0.0` (RFC 2543 hold) means "do not send to me".
    let direction = if connection.is_unspecified() {
        intersect(declared, Direction::SendOnly)
    } else {
        declared
    };
    Ok(RemoteStream {
        rtp: SocketAddr::new(ip, m.port),
        rtcp,
        rtcp_mux,
        direction,
    })
}

/// `a=rtcp:<port> [IN IP4 <address>]` (RFC 3605).
fn parse_rtcp(value: &str, default_ip: IpAddr) -> Option<SocketAddr> {
    let mut fields = value.split_ascii_whitespace();
    let port: u16 = fields.next()?.parse().ok()?;
    let ip = fields
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default_ip);
    (port != 0).then_some(SocketAddr::new(ip, port))
}

fn direction_attribute(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().find_map(|a| {
        if a.value.is_some() {
            return None;
        }
        match a.name.to_ascii_lowercase().as_str() {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    })
}

fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::SendRecv => "sendrecv",
        Direction::SendOnly => "sendonly",
        Direction::RecvOnly => "recvonly",
        Direction::Inactive => "inactive",
    }
}

fn direction_from(sends: bool, receives: bool) -> Direction {
    match (sends, receives) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// The other side's view: what one sends, the other receives.
fn reverse(d: Direction) -> Direction {
    direction_from(d.receives(), d.sends())
}

/// What both allow (RFC 3264 §6.1's table is `intersect(reverse(offer), wish)`).
fn intersect(a: Direction, b: Direction) -> Direction {
    direction_from(a.sends() && b.sends(), a.receives() && b.receives())
}

/// The packet duration we send (see [`Negotiated::ptime`]).
fn send_ptime(codec: CodecKind, sdp: &SessionDescription, m: &MediaDescription) -> Duration {
    if codec == CodecKind::Opus {
        return DEFAULT_PTIME;
    }
    let millis = |name: &str| {
        let v = m.attribute(name).or_else(|| sdp.attribute(name))?;
        let v: f64 = v.trim().parse().ok()?;
        (v.fract() == 0.0 && (0.0..=1e6).contains(&v)).then_some(v as u64)
    };
    let usable = |ms: u64| PTIME_RANGE_MS.contains(&ms) && ms.is_multiple_of(10);
    let max = millis("maxptime").filter(|ms| usable(*ms));
    let wanted = millis("ptime")
        .filter(|ms| usable(*ms))
        .unwrap_or(DEFAULT_PTIME.as_millis() as u64);
    Duration::from_millis(max.map_or(wanted, |max| wanted.min(max)))
}

fn media(kind: &str, port: u16, proto: &str) -> MediaDescription {
    MediaDescription {
        media: kind.to_owned(),
        port,
        port_count: None,
        proto: proto.to_owned(),
        formats: Vec::new(),
        connection: None,
        other_lines: Vec::new(),
        attributes: Vec::new(),
    }
}

/// RFC 3264 §6: a refused stream keeps its media type, transport and formats, port 0.
fn refused(m: &MediaDescription) -> MediaDescription {
    let mut r = media(&m.media, 0, &m.proto);
    r.formats = m.formats.clone();
    r
}

fn push_codec(m: &mut MediaDescription, codec: CodecKind, pt: u8) {
    m.formats.push(pt.to_string());
    m.attributes
        .push(Attribute::new("rtpmap", format!("{pt} {}", codec.rtpmap())));
    if let Some(fmtp) = codec.fmtp() {
        m.attributes
            .push(Attribute::new("fmtp", format!("{pt} {fmtp}")));
    }
}

fn push_telephone_event(m: &mut MediaDescription, pt: u8, rate: u32) {
    m.formats.push(pt.to_string());
    m.attributes.push(Attribute::new(
        "rtpmap",
        format!("{pt} telephone-event/{rate}"),
    ));
    m.attributes.push(Attribute::new(
        "fmtp",
        format!("{pt} {TELEPHONE_EVENT_FMTP}"),
    ));
}

/// `a=ptime`; `a=rtcp` (RFC 3605) when our RTCP port is not RTP + 1 and RTCP is not
/// already muxed (an offer announces it as the fallback); `a=rtcp-mux`.
fn push_transport_attributes(
    m: &mut MediaDescription,
    local: &LocalMedia,
    rtcp_mux: bool,
    announce_rtcp: bool,
) {
    m.attributes
        .push(Attribute::new("ptime", local.ptime.as_millis().to_string()));
    if let Some(port) = local.rtcp_port
        && announce_rtcp
        && Some(port) != local.rtp_port.checked_add(1)
    {
        m.attributes.push(Attribute::new("rtcp", port.to_string()));
    }
    if rtcp_mux {
        m.attributes.push(Attribute::property("rtcp-mux"));
    }
}

/// The session-level part around our media descriptions.
fn session(local: &LocalMedia, media: Vec<MediaDescription>) -> SessionDescription {
    let username: String = local
        .username
        .chars()
        .map(|c| if c.is_whitespace() { '_' } else { c })
        .collect();
    SessionDescription {
        origin: Origin {
            username: if username.is_empty() {
                "-".to_owned()
            } else {
                username
            },
            session_id: local.session_id.to_string(),
            session_version: local.session_version.to_string(),
            network_type: "IN".to_owned(),
            address_type: address_type(local.address).to_owned(),
            address: local.address.to_string(),
        },
        session_name: "-".to_owned(),
        connection: Some(Connection::new(local.address)),
        other_lines: vec![Line {
            kind: 't',
            value: "0 0".to_owned(),
        }],
        attributes: Vec::new(),
        media,
    }
}

fn dedup(codecs: &mut Vec<CodecKind>) {
    let mut seen = Vec::with_capacity(codecs.len());
    codecs.retain(|c| {
        let new = !seen.contains(c);
        seen.push(*c);
        new
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::CryptoSuite;

    fn local(port: u16) -> LocalMedia {
        let mut l = LocalMedia::new("192.0.2.1".parse().unwrap(), port);
        l.session_id = 7;
        l.session_version = 1;
        l
    }

    fn key(tag: u32, suite: CryptoSuite, fill: u8) -> CryptoAttribute {
        CryptoAttribute::generate(tag, suite, |b| b.fill(fill))
    }

    fn offer_with(media_lines: &str) -> SessionDescription {
        SessionDescription::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n{media_lines}"
        ))
        .expect("valid offer")
    }

    #[test]
    fn default_offer_text() {
        let o = offer(&local(4000));
        assert_eq!(
            o.to_string(),
            "v=0\r\no=tincan 7 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 111 9 0 8 101 102\r\n\
             a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n\
             a=rtpmap:9 G722/8000\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
             a=rtpmap:102 telephone-event/48000\r\na=fmtp:102 0-16\r\n\
             a=ptime:20\r\na=rtcp-mux\r\na=sendrecv\r\n"
        );
    }

    #[test]
    fn srtp_offers_and_rtcp_port() {
        let mut l = local(4000);
        l.codecs = vec![CodecKind::Pcma, CodecKind::Pcma];
        l.telephone_event = false;
        l.rtcp_port = Some(4010);
        l.rtcp_mux = false;
        l.crypto = vec![key(1, CryptoSuite::AesCm128HmacSha1_80, 1)];
        l.direction = Direction::SendOnly;
        l.srtp = SrtpPolicy::Required;
        let text = offer(&l).to_string();
        assert!(text.contains("m=audio 4000 RTP/SAVP 8\r\n"), "{text}");
        assert!(text.contains("a=rtcp:4010\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(text.ends_with("a=sendonly\r\n"));
        l.srtp = SrtpPolicy::Optional;
        assert!(offer(&l).to_string().contains("m=audio 4000 RTP/AVP 8\r\n"));
        l.srtp = SrtpPolicy::Off;
        assert!(!offer(&l).to_string().contains("a=crypto"));
    }

    /// RFC 3264 §6.1: the answer's direction for each offered one, and hold (§8.4).
    #[test]
    fn direction_table() {
        use Direction::*;
        let cases = [
            ("sendrecv", SendRecv, SendRecv),
            ("sendonly", SendRecv, RecvOnly),
            ("recvonly", SendRecv, SendOnly),
            ("inactive", SendRecv, Inactive),
            ("sendrecv", SendOnly, SendOnly),
            ("sendonly", SendOnly, Inactive),
            ("recvonly", SendOnly, SendOnly),
            ("sendrecv", Inactive, Inactive),
            ("sendrecv", RecvOnly, RecvOnly),
        ];
        for (offered, wish, expected) in cases {
            let o = offer_with(&format!("m=audio 5000 RTP/AVP 0\r\na={offered}\r\n"));
            let mut l = local(4000);
            l.direction = wish;
            let (a, n) = answer(&o, &l).expect("acceptable");
            assert_eq!(n.direction, expected, "{offered} with wish {wish:?}");
            assert_eq!(n.remote_on_hold, matches!(offered, "sendonly" | "inactive"));
            assert_eq!(
                a.media[0].attributes.last().unwrap().name,
                direction_name(expected)
            );
        }
    }

    #[test]
    fn session_level_direction_and_old_style_hold() {
        let o = SessionDescription::parse(
            "v=0\r\no=- 1 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n\
             a=recvonly\r\nm=audio 5000 RTP/AVP 0\r\n",
        )
        .unwrap();
        assert_eq!(
            answer(&o, &local(4000)).unwrap().1.direction,
            Direction::SendOnly
        );
        let hold = offer_with("m=audio 5000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n");
        let n = answer(&hold, &local(4000)).unwrap().1;
        assert_eq!(n.remote_direction, Direction::SendOnly);
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(n.remote_on_hold);
        assert_eq!(n.remote_rtp, "0.0.0.0:5000".parse().unwrap());
    }

    #[test]
    fn ptime_rules() {
        let cases = [
            ("0", "a=ptime:30\r\n", 30),
            ("0", "a=ptime:25\r\n", 20),
            ("0", "a=ptime:0\r\n", 20),
            ("0", "a=ptime:250\r\n", 20),
            ("0", "a=ptime:60\r\na=maxptime:40\r\n", 40),
            ("0", "a=maxptime:10\r\n", 10),
            ("0", "a=ptime:40.0\r\n", 40),
            ("0", "a=ptime:junk\r\n", 20),
            ("0", "", 20),
            ("111", "a=rtpmap:111 opus/48000/2\r\na=ptime:60\r\n", 20),
        ];
        for (fmt, attrs, ms) in cases {
            let o = offer_with(&format!("m=audio 5000 RTP/AVP {fmt}\r\n{attrs}"));
            let n = answer(&o, &local(4000)).unwrap().1;
            assert_eq!(n.ptime, Duration::from_millis(ms), "{attrs:?}");
        }
    }

    #[test]
    fn offerer_preference_and_payload_types_win() {
        let o = offer_with(
            "m=audio 5000 RTP/AVP 18 8 96 0 100\r\na=rtpmap:18 G729/8000\r\n\
             a=rtpmap:96 OPUS/48000\r\na=rtpmap:100 telephone-event/8000\r\n",
        );
        let (a, n) = answer(&o, &local(4000)).unwrap();
        assert_eq!((n.codec, n.payload_type), (CodecKind::Pcma, 8));
        assert_eq!(n.telephone_event_payload_type, Some(100));
        assert!(a.to_string().contains("m=audio 4000 RTP/AVP 8 100\r\n"));
        let mut l = local(4000);
        l.codecs = vec![CodecKind::Opus];
        let (a, n) = answer(&o, &l).unwrap();
        assert_eq!((n.codec, n.payload_type), (CodecKind::Opus, 96));
        // Opus with only telephone-event/8000 offered (baresip): accepted.
        assert_eq!(n.telephone_event_payload_type, Some(100));
        assert!(a.to_string().contains("a=rtpmap:96 opus/48000/2\r\n"));
        l.codecs = vec![CodecKind::Pcmu];
        l.telephone_event = false;
        let n = answer(&o, &l).unwrap().1;
        assert_eq!(n.telephone_event_payload_type, None);
        let none = offer_with("m=audio 5000 RTP/AVP 9 18\r\n");
        assert_eq!(answer(&none, &local(4000)), Err(SdpError::NoCommonCodec));
    }

    #[test]
    fn telephone_event_at_the_codec_rate_is_preferred() {
        let o = offer_with(
            "m=audio 5000 RTP/AVP 96 8 101 110\r\na=rtpmap:96 opus/48000/2\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=rtpmap:110 telephone-event/48000\r\n",
        );
        let (a, n) = answer(&o, &local(4000)).unwrap();
        assert_eq!(n.telephone_event_payload_type, Some(110));
        assert!(
            a.to_string()
                .contains("a=rtpmap:110 telephone-event/48000\r\n")
        );
        let mut l = local(4000);
        l.codecs = vec![CodecKind::Pcma];
        assert_eq!(
            answer(&o, &l).unwrap().1.telephone_event_payload_type,
            Some(101)
        );
        // G.711 never takes telephone-event/48000.
        let o = offer_with("m=audio 5000 RTP/AVP 8 110\r\na=rtpmap:110 telephone-event/48000\r\n");
        assert_eq!(answer(&o, &l).unwrap().1.telephone_event_payload_type, None);
    }

    #[test]
    fn rtcp_mux_and_rtcp_attribute() {
        let o = offer_with("m=audio 5000 RTP/AVP 0\r\na=rtcp:5009 IN IP4 203.0.113.9\r\n");
        let mut l = local(4000);
        l.rtcp_port = Some(4002);
        let (a, n) = answer(&o, &l).unwrap();
        assert!(!n.rtcp_mux);
        assert_eq!(n.remote_rtcp, Some("203.0.113.9:5009".parse().unwrap()));
        assert!(a.to_string().contains("a=rtcp:4002\r\n"));
        assert!(!a.to_string().contains("rtcp-mux"));
        let o = offer_with("m=audio 5000 RTP/AVP 0\r\na=rtcp:5001\r\na=rtcp-mux\r\n");
        let (a, n) = answer(&o, &l).unwrap();
        assert!(n.rtcp_mux);
        assert_eq!(n.remote_rtcp, None);
        assert!(a.to_string().contains("a=rtcp-mux\r\n"));
        assert!(!a.to_string().contains("a=rtcp:"));
        l.rtcp_mux = false;
        let n = answer(&o, &l).unwrap().1;
        assert!(!n.rtcp_mux);
        assert_eq!(n.remote_rtcp, Some("198.51.100.7:5001".parse().unwrap()));
        let o = offer_with("m=audio 5000 RTP/AVP 0\r\n");
        let n = answer(&o, &l).unwrap().1;
        assert_eq!(n.remote_rtcp, Some("198.51.100.7:5001".parse().unwrap()));
    }

    #[test]
    fn srtp_policy_matrix() {
        let theirs80 = key(3, CryptoSuite::AesCm128HmacSha1_80, 9);
        let theirs32 = key(4, CryptoSuite::AesCm128HmacSha1_32, 8);
        let plain = "m=audio 5000 RTP/AVP 0\r\n".to_owned();
        let avp_crypto =
            format!("m=audio 5000 RTP/AVP 0\r\na=crypto:{theirs32}\r\na=crypto:{theirs80}\r\n");
        let savp = format!("m=audio 5000 RTP/SAVP 0\r\na=crypto:{theirs80}\r\n");
        let savp_bad = "m=audio 5000 RTP/SAVP 0\r\na=crypto:1 AES_256_CM_HMAC_SHA1_80 \
            inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
            .to_owned();
        let ours = vec![key(1, CryptoSuite::AesCm128HmacSha1_80, 1)];
        use SrtpPolicy::*;
        // (policy, offer) -> the crypto tag used, plain RTP (None), or the error.
        type Expected = Result<Option<u32>, SdpError>;
        let cases: [(SrtpPolicy, &String, Expected); 12] = [
            (Off, &plain, Ok(None)),
            (Off, &avp_crypto, Ok(None)),
            (Off, &savp, Err(SdpError::SrtpOff)),
            (Optional, &plain, Ok(None)),
            (Optional, &avp_crypto, Ok(Some(3))),
            (Optional, &savp, Ok(Some(3))),
            (Optional, &savp_bad, Err(SdpError::NoCommonCryptoSuite)),
            (Required, &plain, Err(SdpError::SrtpRequired)),
            (Required, &avp_crypto, Ok(Some(3))),
            (Required, &savp, Ok(Some(3))),
            (Required, &savp_bad, Err(SdpError::NoCommonCryptoSuite)),
            (Off, &savp_bad, Err(SdpError::SrtpOff)),
        ];
        for (policy, media, expected) in cases {
            let mut l = local(4000);
            l.srtp = policy;
            l.crypto = ours.clone();
            let got = answer(&offer_with(media), &l);
            match (&got, &expected) {
                (Ok((a, n)), Ok(Some(tag))) => {
                    let (ours, theirs) = n.srtp.as_ref().expect("srtp");
                    assert_eq!((ours.tag, theirs.tag), (*tag, *tag));
                    assert_eq!(ours.key, [1; 16]);
                    assert_eq!(theirs, &theirs80);
                    let text = a.to_string();
                    assert!(text.contains(&format!("a=crypto:{ours}\r\n")), "{text}");
                    assert_eq!(a.media[0].proto, offer_with(media).media[0].proto);
                }
                (Ok((a, n)), Ok(None)) => {
                    assert!(n.srtp.is_none());
                    assert!(!a.to_string().contains("crypto"));
                }
                (Err(e), Err(x)) => assert_eq!(e, x),
                _ => panic!("{policy:?} {media:?}: got {got:?}, expected {expected:?}"),
            }
        }
        let mut l = local(4000);
        l.srtp = Required;
        assert_eq!(
            answer(&offer_with(&savp), &l),
            Err(SdpError::MissingLocalKey)
        );
        assert_eq!(SdpError::MissingLocalKey.status_code(), 500);
    }

    #[test]
    fn refused_streams_keep_their_place() {
        let o = offer_with(
            "m=video 5002 RTP/AVP 96 97\r\na=rtpmap:96 H264/90000\r\n\
             m=audio 5004 UDP/TLS/RTP/SAVPF 111\r\n\
             m=audio 5000 RTP/AVP 0\r\nm=audio 5006 RTP/AVP 8\r\nm=image 0 udptl t38\r\n",
        );
        let (a, n) = answer(&o, &local(4000)).unwrap();
        assert_eq!(n.remote_rtp.port(), 5000);
        let lines: Vec<String> = a
            .media
            .iter()
            .map(|m| m.to_string().lines().next().unwrap().to_owned())
            .collect();
        assert_eq!(
            lines,
            [
                "m=video 0 RTP/AVP 96 97",
                "m=audio 0 UDP/TLS/RTP/SAVPF 111",
                "m=audio 4000 RTP/AVP 0",
                "m=audio 0 RTP/AVP 8",
                "m=image 0 udptl t38",
            ]
        );
        let webrtc = offer_with("m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n");
        let e = answer(&webrtc, &local(4000)).unwrap_err();
        assert_eq!(
            e,
            SdpError::UnsupportedTransport("UDP/TLS/RTP/SAVPF".into())
        );
        assert_eq!(e.warning().unwrap().0, 302);
        let video = offer_with("m=video 5002 RTP/AVP 96\r\n");
        assert_eq!(answer(&video, &local(4000)), Err(SdpError::NoAudioStream));
        assert_eq!(SdpError::NoAudioStream.warning().unwrap().0, 304);
        let no_c = SessionDescription::parse("v=0\r\no=- 1 1 IN IP4 a\r\nm=audio 1 RTP/AVP 0\r\n");
        assert_eq!(
            answer(&no_c.unwrap(), &local(4000)),
            Err(SdpError::NoConnectionAddress)
        );
    }

    #[test]
    fn two_tincans_agree() {
        let mut alice = local(4000);
        alice.srtp = SrtpPolicy::Optional;
        alice.crypto = vec![
            key(1, CryptoSuite::AesCm128HmacSha1_80, 1),
            key(2, CryptoSuite::AesCm128HmacSha1_32, 2),
        ];
        let mut bob = LocalMedia::new("2001:db8::2".parse().unwrap(), 6000);
        bob.codecs = vec![CodecKind::Pcmu, CodecKind::Opus];
        bob.srtp = SrtpPolicy::Required;
        bob.crypto = vec![key(9, CryptoSuite::AesCm128HmacSha1_32, 7)];
        bob.rtcp_mux = false;
        let o = SessionDescription::parse(&offer(&alice).to_string()).unwrap();
        let (a, at_bob) = answer(&o, &bob).unwrap();
        let a = SessionDescription::parse(&a.to_string()).unwrap();
        let at_alice = apply_answer(&alice, &a).unwrap();
        // Bob honours Alice's order: Opus at her payload type, with telephone-event/48000.
        assert_eq!((at_bob.codec, at_bob.payload_type), (CodecKind::Opus, 111));
        assert_eq!(
            (at_alice.codec, at_alice.payload_type),
            (CodecKind::Opus, 111)
        );
        assert_eq!(at_bob.telephone_event_payload_type, Some(102));
        assert_eq!(at_alice.telephone_event_payload_type, Some(102));
        let (bob_ours, bob_theirs) = at_bob.srtp.clone().unwrap();
        let (alice_ours, alice_theirs) = at_alice.srtp.clone().unwrap();
        assert_eq!(bob_ours, alice_theirs);
        assert_eq!(bob_theirs, alice_ours);
        assert_eq!(alice_ours.tag, 2);
        assert!(!at_alice.rtcp_mux && !at_bob.rtcp_mux);
        assert_eq!(at_alice.remote_rtp, "[2001:db8::2]:6000".parse().unwrap());
        assert_eq!(at_bob.remote_rtcp, Some("192.0.2.1:4001".parse().unwrap()));
        let config = at_alice.session_config(5, 6);
        assert_eq!(config.srtp, at_alice.srtp);
        assert_eq!((config.local_ssrc, config.seed), (5, 6));
        assert_eq!(config.telephone_event_payload_type, Some(102));
    }

    #[test]
    fn apply_answer_refusals() {
        let mut l = local(4000);
        l.srtp = SrtpPolicy::Optional;
        l.crypto = vec![key(1, CryptoSuite::AesCm128HmacSha1_80, 1)];
        let answer_with = |m: &str| apply_answer(&l, &offer_with(m));
        assert_eq!(
            answer_with("m=audio 0 RTP/AVP 0\r\n"),
            Err(SdpError::Rejected)
        );
        assert_eq!(
            answer_with("m=audio 5000 RTP/AVP 18\r\n"),
            Err(SdpError::NoCommonCodec)
        );
        let wrong_tag = key(2, CryptoSuite::AesCm128HmacSha1_80, 5);
        assert_eq!(
            answer_with(&format!(
                "m=audio 5000 RTP/AVP 0\r\na=crypto:{wrong_tag}\r\n"
            )),
            Err(SdpError::CryptoMismatch)
        );
        // Best effort: a plain answer is plain RTP.
        let n = answer_with("m=audio 5000 RTP/AVP 0 101\r\na=sendonly\r\n").unwrap();
        assert!(n.srtp.is_none());
        assert_eq!(n.telephone_event_payload_type, None);
        assert_eq!(n.direction, Direction::RecvOnly);
        assert_eq!(
            answer_with("m=audio 5000 RTP/SAVP 0\r\n"),
            Err(SdpError::SrtpRequired)
        );
        l.srtp = SrtpPolicy::Off;
        let n = apply_answer(
            &l,
            &offer_with("m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 opus/48000/2\r\n"),
        )
        .unwrap();
        assert_eq!((n.codec, n.payload_type), (CodecKind::Opus, 96));
        assert_eq!(
            apply_answer(&l, &offer_with("m=video 5000 RTP/AVP 0\r\n")),
            Err(SdpError::NoAudioStream)
        );
    }
}
