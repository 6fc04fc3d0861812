//! ICE in SDP, RFC 8839: `a=ice-ufrag`, `a=ice-pwd`, `a=ice-lite`, `a=candidate`, and the
//! default candidate in `c=`/`m=`.
//!
//! ```
//! use tincan_media::sdp::ice::{read_ice, IceSupport};
//! use tincan_media::sdp::SessionDescription;
//!
//! let offer = SessionDescription::parse(
//!     "v=0\r\no=- 1 1 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.3\r\nt=0 0\r\n\
//!      a=ice-lite\r\nm=audio 45664 RTP/AVP 0\r\na=ice-ufrag:8hhY\r\n\
//!      a=ice-pwd:asd88fgpdd777uzjYhagZg\r\n\
//!      a=candidate:1 1 UDP 2130706431 192.0.2.3 45664 typ host\r\n\
//!      a=candidate:this line is garbage\r\n",
//! )
//! .unwrap();
//! let IceSupport::Ice(remote) = read_ice(&offer, &offer.media[0]) else { panic!() };
//! assert!(remote.lite);
//! assert_eq!(remote.candidates.len(), 1);
//! ```

use super::description::{Attribute, Connection, MediaDescription, SessionDescription};
use crate::ice::{Candidate, Credentials, RemoteIce};

/// What the peer's description says about ICE for one media stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceSupport {
    /// No (usable) `a=ice-ufrag`/`a=ice-pwd`: the peer does not do ICE; media goes to
    /// `c=`/`m=` as without ICE.
    None,
    /// ICE attributes, but `c=`/`m=` match no candidate (RFC 8839 §4.2.3: an ALG rewrote the
    /// address, "ice-mismatch"): treat the peer as not doing ICE.
    Mismatch,
    /// The peer does ICE.
    Ice(RemoteIce),
}

/// Reads the ICE attributes of `media` (media level first, then session level). Candidate
/// lines that do not parse, or that Tincan's agent cannot use (TCP, FQDN), are skipped.
pub fn read_ice(session: &SessionDescription, media: &MediaDescription) -> IceSupport {
    let attribute = |name: &str| media.attribute(name).or_else(|| session.attribute(name));
    let (Some(ufrag), Some(pwd)) = (attribute("ice-ufrag"), attribute("ice-pwd")) else {
        return IceSupport::None;
    };
    let Some(credentials) = Credentials::new(ufrag.trim(), pwd.trim()) else {
        return IceSupport::None;
    };
    let lite = session
        .attributes
        .iter()
        .any(|a| a.name.eq_ignore_ascii_case("ice-lite"));
    let candidates: Vec<Candidate> = media
        .attributes_named("candidate")
        .filter_map(|value| Candidate::parse(value).ok())
        .collect();
    let default = session
        .connection_for(media)
        .and_then(Connection::ip)
        .map(|ip| std::net::SocketAddr::new(ip, media.port));
    let matches = default.is_some_and(|d| candidates.iter().any(|c| c.address == d));
    if !matches {
        return IceSupport::Mismatch;
    }
    IceSupport::Ice(RemoteIce {
        credentials,
        lite,
        candidates,
    })
}

/// Writes our ICE attributes into `media` of `session`: `a=ice-ufrag`, `a=ice-pwd`, one
/// `a=candidate` per candidate, and the default candidate in `m=` and the media's `c=`
/// (RFC 8839 §4.2.1.2), so a peer without ICE still reaches us.
pub fn write_ice(
    media: &mut MediaDescription,
    credentials: &Credentials,
    candidates: &[Candidate],
    default: &Candidate,
) {
    media.port = default.address.port();
    media.connection = Some(Connection::new(default.address.ip()));
    media
        .attributes
        .push(Attribute::new("ice-ufrag", credentials.ufrag.clone()));
    media
        .attributes
        .push(Attribute::new("ice-pwd", credentials.pwd.clone()));
    for candidate in candidates {
        media
            .attributes
            .push(Attribute::new("candidate", candidate.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(extra_session: &str, c: &str, port: u16, extra_media: &str) -> SessionDescription {
        SessionDescription::parse(&format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 {c}\r\nt=0 0\r\n{extra_session}\
             m=audio {port} RTP/AVP 0\r\n{extra_media}"
        ))
        .unwrap()
    }

    const ICE: &str = "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
                       a=candidate:1 1 UDP 2130706431 10.0.0.1 4000 typ host\r\n\
                       a=candidate:2 1 UDP 1694498815 192.0.2.1 5000 typ srflx raddr 10.0.0.1 rport 4000\r\n";

    #[test]
    fn no_ice_attributes_means_no_ice() {
        let s = sdp("", "10.0.0.1", 4000, "");
        assert_eq!(read_ice(&s, &s.media[0]), IceSupport::None);
        let s = sdp(
            "",
            "10.0.0.1",
            4000,
            "a=ice-ufrag:ab\r\na=ice-pwd:short\r\n",
        );
        assert_eq!(read_ice(&s, &s.media[0]), IceSupport::None);
    }

    #[test]
    fn default_candidate_must_match() {
        let s = sdp("", "192.0.2.1", 5000, ICE);
        let IceSupport::Ice(remote) = read_ice(&s, &s.media[0]) else {
            panic!("ice expected");
        };
        assert!(!remote.lite);
        assert_eq!(remote.candidates.len(), 2);
        let s = sdp("", "198.51.100.9", 5000, ICE);
        assert_eq!(read_ice(&s, &s.media[0]), IceSupport::Mismatch);
    }

    #[test]
    fn bad_candidates_are_skipped() {
        let extra = format!(
            "{ICE}a=candidate:\r\na=candidate:1 1 TCP 1 10.0.0.1 9 typ host\r\n\
             a=candidate:\u{0}\u{ff} x\r\na=candidate:1 1 UDP 1 10.0.0.1 99999 typ host\r\n"
        );
        let s = sdp("a=ice-lite\r\n", "10.0.0.1", 4000, &extra);
        let IceSupport::Ice(remote) = read_ice(&s, &s.media[0]) else {
            panic!("ice expected");
        };
        assert!(remote.lite);
        assert_eq!(remote.candidates.len(), 2);
    }

    #[test]
    fn written_attributes_read_back() {
        let mut s = sdp("", "10.0.0.1", 4000, "");
        let credentials = Credentials::new("wxyz", "abcdefghijklmnopqrstuv").unwrap();
        let host = Candidate::host("10.0.0.1:4000".parse().unwrap(), 65535);
        let srflx = Candidate::server_reflexive(
            "192.0.2.1:5000".parse().unwrap(),
            "10.0.0.1:4000".parse().unwrap(),
            65535,
        );
        write_ice(
            &mut s.media[0],
            &credentials,
            &[host.clone(), srflx.clone()],
            &srflx,
        );
        let text = s.to_string();
        assert!(text.contains("m=audio 5000 "), "{text}");
        let reparsed = SessionDescription::parse(&text).unwrap();
        let IceSupport::Ice(remote) = read_ice(&reparsed, &reparsed.media[0]) else {
            panic!("ice expected: {text}");
        };
        assert_eq!(remote.credentials, credentials);
        assert_eq!(remote.candidates, vec![host, srflx]);
    }
}
