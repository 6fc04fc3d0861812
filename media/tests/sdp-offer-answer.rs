//! SDP offer/answer against what real peers send: baresip 1.0.0's offers (captured from
//! `baresip -e "/dial ..."` with `mediaenc` unset, `srtp` and `srtp-mand`), sipp's default
//! offer and the lab's sipp UAS answer, a PJSIP-style offer with video, `a=rtcp`, `b=` lines
//! and several crypto suites, a Linphone-style `RTP/SAVP` offer with rtcp-mux and
//! telephone-event at three rates, an IPv6 one, an RFC 2543 hold. Every sample and every answer
//! round-trips parse -> print -> parse; random and mutated SDP never panics.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use proptest::prelude::*;
use tincan_media::codec::{CodecKind, FRAME_SAMPLES};
use tincan_media::sdp::{self, LocalMedia, SdpError, SessionDescription, SrtpPolicy};
use tincan_media::session::{Direction, MediaSession};
use tincan_media::srtp::{CryptoAttribute, CryptoSuite};

/// baresip 1.0.0, default account (opus at the dynamic payload type 96).
const BARESIP: &str = "v=0\r\n\
o=- 3256787195 184900807 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
a=tool:baresip 1.0.0\r\n\
m=audio 20068 RTP/AVP 96 0 8 101\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1;maxaveragebitrate=28000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=rtcp-rsize\r\n\
a=ssrc:1012232964 cname:sip:tincan@127.0.0.1\r\n\
a=minptime:20\r\n\
a=ptime:20\r\n";

/// baresip 1.0.0 with `mediaenc=srtp`: SDES on RTP/AVP (best effort).
const BARESIP_SDES: &str = "v=0\r\n\
o=- 2272426523 1007461572 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
a=tool:baresip 1.0.0\r\n\
m=audio 20012 RTP/AVP 96 0 8 101\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1;maxaveragebitrate=28000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=rtcp-rsize\r\n\
a=ssrc:4001192806 cname:sip:tincan@127.0.0.1\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:M6A2DDy+W91bcksVTo8cSFvInK19SmOCQHAqxGXf\r\n\
a=minptime:20\r\n\
a=ptime:20\r\n";

/// sipp's built-in UAC offer (`m=audio [media_port] RTP/AVP 0`), as kamailio relays it with
/// nathelper's marker.
const SIPP: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=nortpproxy:yes\r\n";

/// The lab's sipp UAS answer (`shared/lab/sipp/uas_pcmu_opus_bye.xml`).
const SIPP_UAS_ANSWER: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 16000 RTP/AVP 0 111 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:101 telephone-event/8000\r\n";

/// PJSIP style: session `b=`, `a=X-nat`, media-level `c=`, `b=TIAS`, `a=rtcp` with an address,
/// an AES-256 key first (not ours), and a video stream.
const PJSIP: &str = "v=0\r\n\
o=- 3880263150 3880263151 IN IP4 192.0.2.10\r\n\
s=pjmedia\r\n\
b=AS:84\r\n\
t=0 0\r\n\
a=X-nat:0\r\n\
m=audio 4000 RTP/AVP 96 8 0 101\r\n\
c=IN IP4 192.0.2.10\r\n\
b=AS:64\r\n\
b=TIAS:64000\r\n\
a=rtcp:4001 IN IP4 192.0.2.10\r\n\
a=sendrecv\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ssrc:1234567 cname:4b3c2a1d\r\n\
a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:Aw4ZJC86RVBbZnF8h5KdqLO+ydTf6vUACxYhLDdCTVhjbnmEj5qlsLvG0dzn8g==\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:BRIfLDlGU2BteoeUoa67yNXi7/wJFiMwPUpXZHF+\r\n\
a=crypto:3 AES_CM_128_HMAC_SHA1_32 inline:CiQ+WHKMpsDa9A4oQlx2kKrE3vgSLEZgepSuyOL8\r\n\
m=video 4002 RTP/AVP 97\r\n\
c=IN IP4 192.0.2.10\r\n\
b=TIAS:256000\r\n\
a=rtcp:4003 IN IP4 192.0.2.10\r\n\
a=sendrecv\r\n\
a=rtpmap:97 H264/90000\r\n\
a=fmtp:97 profile-level-id=42e01e; packetization-mode=1\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:DzZdhKvS+SBHbpW84woxWH+mzfQbQmmQt94FLFN6\r\n";

/// Linphone style: RTP/SAVP, rtcp-mux, RTCP feedback, telephone-event at three rates,
/// ptime and maxptime, a video stream.
const LINPHONE: &str = "v=0\r\n\
o=alice 1234 5678 IN IP4 192.0.2.20\r\n\
s=Talk\r\n\
c=IN IP4 192.0.2.20\r\n\
t=0 0\r\n\
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics\r\n\
a=record:off\r\n\
m=audio 7078 RTP/SAVP 96 97 98 0 8 101 99 100\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 useinbandfec=1\r\n\
a=rtpmap:97 speex/16000\r\n\
a=fmtp:97 vbr=on\r\n\
a=rtpmap:98 speex/8000\r\n\
a=fmtp:98 vbr=on\r\n\
a=rtpmap:101 telephone-event/48000\r\n\
a=rtpmap:99 telephone-event/16000\r\n\
a=rtpmap:100 telephone-event/8000\r\n\
a=ptime:20\r\n\
a=maxptime:40\r\n\
a=rtcp-mux\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:FEh8sOQYTIC06BxQhLjsIFSIvPAkWIzA9ChckMT4\r\n\
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:DzZdhKvS+SBHbpW84woxWH+mzfQbQmmQt94FLFN6\r\n\
a=rtcp-fb:* trr-int 1000\r\n\
a=rtcp-fb:* ccm tmmbr\r\n\
m=video 9078 RTP/SAVP 96 97\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:97 H264/90000\r\n\
a=fmtp:97 profile-level-id=42801F\r\n\
a=rtcp-mux\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:FEh8sOQYTIC06BxQhLjsIFSIvPAkWIzA9ChckMT4\r\n";

/// IPv6, 30 ms packets.
const IPV6: &str = "v=0\r\n\
o=- 20518 0 IN IP6 ::1\r\n\
s=-\r\n\
c=IN IP6 ::1\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 8 0 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:30\r\n\
a=sendrecv\r\n";

/// An RFC 2543 hold re-INVITE (old gateways): `c=0.0.0.0` and no direction attribute.
const OLD_HOLD: &str = "v=0\r\n\
o=CiscoSystemsSIP-GW-UserAgent 4970 5680 IN IP4 198.51.100.3\r\n\
s=SIP Call\r\n\
c=IN IP4 0.0.0.0\r\n\
t=0 0\r\n\
m=audio 18500 RTP/AVP 0 101\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n";

const SAMPLES: [&str; 8] = [
    BARESIP,
    BARESIP_SDES,
    SIPP,
    SIPP_UAS_ANSWER,
    PJSIP,
    LINPHONE,
    IPV6,
    OLD_HOLD,
];

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(text).expect("a real peer's sdp parses")
}

fn key(tag: u32, suite: CryptoSuite, fill: u8) -> CryptoAttribute {
    CryptoAttribute::generate(tag, suite, |b| b.fill(fill))
}

fn local() -> LocalMedia {
    let mut l = LocalMedia::new("127.0.0.1".parse().unwrap(), 4000);
    l.session_id = 99;
    l.session_version = 1;
    l
}

fn srtp_local(policy: SrtpPolicy) -> LocalMedia {
    let mut l = local();
    l.srtp = policy;
    l.crypto = vec![
        key(1, CryptoSuite::AesCm128HmacSha1_80, 0x11),
        key(2, CryptoSuite::AesCm128HmacSha1_32, 0x22),
    ];
    l
}

/// Answers `offer`, checks the answer round-trips and keeps the offer's m= lines.
fn answer(offer: &str, local: &LocalMedia) -> Result<(String, sdp::Negotiated), SdpError> {
    let offer = parse(offer);
    let (answer, negotiated) = sdp::answer(&offer, local)?;
    let text = answer.to_string();
    assert_eq!(parse(&text), answer, "answer round-trips");
    assert_eq!(answer.media.len(), offer.media.len());
    for (a, o) in answer.media.iter().zip(&offer.media) {
        assert_eq!((&a.media, &a.proto), (&o.media, &o.proto));
        if a.port == 0 {
            assert_eq!(a.formats, o.formats);
        }
    }
    Ok((text, negotiated))
}

#[test]
fn every_sample_round_trips() {
    for sample in SAMPLES {
        let d = parse(sample);
        let printed = d.to_string();
        assert_eq!(parse(&printed), d);
        assert_eq!(parse(&printed).to_string(), printed);
        // The samples are in RFC order already: printing changes nothing.
        assert_eq!(printed, sample);
        // Bare LF as some peers send it.
        assert_eq!(parse(&sample.replace("\r\n", "\n")), d);
    }
}

#[test]
fn baresip_offer() {
    let (text, n) = answer(BARESIP, &local()).expect("acceptable");
    assert_eq!((n.codec, n.payload_type), (CodecKind::Opus, 96));
    assert_eq!(n.telephone_event_payload_type, Some(101));
    assert_eq!(n.ptime, Duration::from_millis(20));
    assert_eq!(n.remote_rtp, "127.0.0.1:20068".parse().unwrap());
    assert_eq!(n.remote_rtcp, Some("127.0.0.1:20069".parse().unwrap()));
    assert!(!n.rtcp_mux && n.srtp.is_none());
    assert_eq!(n.direction, Direction::SendRecv);
    assert_eq!(
        text,
        "v=0\r\no=tincan 99 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 4000 RTP/AVP 96 101\r\n\
         a=rtpmap:96 opus/48000/2\r\na=fmtp:96 minptime=10;useinbandfec=1\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n\
         a=ptime:20\r\na=sendrecv\r\n"
    );
    // Preferring G.711 locally does not override the offerer's order.
    let mut l = local();
    l.codecs = vec![CodecKind::Pcma, CodecKind::Pcmu];
    assert_eq!(answer(BARESIP, &l).unwrap().1.codec, CodecKind::Pcmu);
}

#[test]
fn baresip_sdes_on_rtp_avp() {
    let theirs = CryptoAttribute::parse(
        "1 AES_CM_128_HMAC_SHA1_80 inline:M6A2DDy+W91bcksVTo8cSFvInK19SmOCQHAqxGXf",
    )
    .unwrap();
    for policy in [SrtpPolicy::Optional, SrtpPolicy::Required] {
        let (text, n) = answer(BARESIP_SDES, &srtp_local(policy)).expect("acceptable");
        let (ours, t) = n.srtp.expect("srtp");
        assert_eq!(t, theirs);
        assert_eq!(
            (ours.tag, ours.suite, ours.key),
            (1, CryptoSuite::AesCm128HmacSha1_80, [0x11; 16])
        );
        assert!(text.contains("m=audio 4000 RTP/AVP 96 101\r\n"));
        assert!(text.contains(&format!("a=crypto:{ours}\r\n")));
        assert_eq!(text.matches("a=crypto").count(), 1);
    }
    // Off: plain RTP, which baresip accepts as the best-effort fallback.
    let (text, n) = answer(BARESIP_SDES, &srtp_local(SrtpPolicy::Off)).expect("acceptable");
    assert!(n.srtp.is_none() && !text.contains("crypto"));
}

#[test]
fn baresip_srtp_mandatory() {
    let savp = BARESIP_SDES.replace("RTP/AVP", "RTP/SAVP");
    let e = answer(&savp, &srtp_local(SrtpPolicy::Off)).unwrap_err();
    assert_eq!(e, SdpError::SrtpOff);
    assert_eq!(
        (e.status_code(), e.warning()),
        (488, Some((302, "Incompatible transport protocol")))
    );
    let (text, n) = answer(&savp, &srtp_local(SrtpPolicy::Optional)).unwrap();
    assert!(text.contains("m=audio 4000 RTP/SAVP 96 101\r\n"));
    assert!(n.srtp.is_some());
    // Our required policy against plain baresip.
    let e = answer(BARESIP, &srtp_local(SrtpPolicy::Required)).unwrap_err();
    assert_eq!(e, SdpError::SrtpRequired);
}

#[test]
fn sipp_offer_and_answer() {
    let (text, n) = answer(SIPP, &local()).expect("acceptable");
    assert_eq!(
        (n.codec, n.payload_type, n.telephone_event_payload_type),
        (CodecKind::Pcmu, 0, None)
    );
    assert!(text.contains("m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"));
    let mut opus_only = local();
    opus_only.codecs = vec![CodecKind::Opus];
    let e = answer(SIPP, &opus_only).unwrap_err();
    assert_eq!(e, SdpError::NoCommonCodec);
    assert_eq!(e.warning(), Some((305, "Incompatible media format")));

    // Our offer answered by the lab's sipp UAS: the answer's first common codec wins.
    let n = sdp::apply_answer(&local(), &parse(SIPP_UAS_ANSWER)).expect("usable");
    assert_eq!((n.codec, n.payload_type), (CodecKind::Pcmu, 0));
    assert_eq!(n.telephone_event_payload_type, Some(101));
    assert_eq!(n.remote_rtp, "127.0.0.1:16000".parse().unwrap());
    assert_eq!(n.remote_rtcp, Some("127.0.0.1:16001".parse().unwrap()));
    assert!(!n.rtcp_mux);
}

#[test]
fn pjsip_offer_with_video_and_crypto_suites() {
    let (text, n) = answer(PJSIP, &srtp_local(SrtpPolicy::Optional)).expect("acceptable");
    assert_eq!((n.codec, n.payload_type), (CodecKind::Opus, 96));
    // The AES-256 line is skipped: tag 2 is the first suite we have.
    let (ours, theirs) = n.srtp.expect("srtp");
    assert_eq!((ours.tag, theirs.tag), (2, 2));
    assert_eq!(ours.suite, CryptoSuite::AesCm128HmacSha1_80);
    assert_eq!(n.remote_rtp, "192.0.2.10:4000".parse().unwrap());
    assert_eq!(n.remote_rtcp, Some("192.0.2.10:4001".parse().unwrap()));
    assert!(text.contains("m=video 0 RTP/AVP 97\r\n"), "{text}");
    assert!(text.ends_with("m=video 0 RTP/AVP 97\r\n"));
    // Only a 32-bit-tag key on our side: PJSIP's third line.
    let mut l = srtp_local(SrtpPolicy::Required);
    l.crypto.remove(0);
    let (ours, theirs) = answer(PJSIP, &l).unwrap().1.srtp.unwrap();
    assert_eq!(
        (ours.tag, theirs.tag, ours.suite),
        (3, 3, CryptoSuite::AesCm128HmacSha1_32)
    );
}

#[test]
fn linphone_savp_offer() {
    let (text, n) = answer(LINPHONE, &srtp_local(SrtpPolicy::Required)).expect("acceptable");
    assert_eq!((n.codec, n.payload_type), (CodecKind::Opus, 96));
    assert_eq!(
        n.telephone_event_payload_type,
        Some(101),
        "telephone-event/48000 with opus"
    );
    assert!(n.rtcp_mux);
    assert_eq!(n.remote_rtcp, None);
    assert!(text.contains("m=audio 4000 RTP/SAVP 96 101\r\n"));
    assert!(text.contains("a=rtpmap:101 telephone-event/48000\r\n"));
    assert!(text.contains("a=rtcp-mux\r\n"));
    assert!(text.contains("m=video 0 RTP/SAVP 96 97\r\n"));
    // G.711 only: telephone-event/8000 at 100, the offer's ptime within maxptime.
    let mut l = srtp_local(SrtpPolicy::Optional);
    l.codecs = vec![CodecKind::Pcmu];
    let n = answer(LINPHONE, &l).unwrap().1;
    assert_eq!(
        (n.payload_type, n.telephone_event_payload_type),
        (0, Some(100))
    );
    assert_eq!(n.ptime, Duration::from_millis(20));
    let (ours, _) = n.srtp.unwrap();
    assert_eq!(ours.tag, 1);
    assert_eq!(answer(LINPHONE, &local()).unwrap_err(), SdpError::SrtpOff);
}

#[test]
fn ipv6_offer() {
    let mut l = LocalMedia::new("::1".parse().unwrap(), 4000);
    l.ptime = Duration::from_millis(30);
    let (text, n) = answer(IPV6, &l).expect("acceptable");
    assert_eq!((n.codec, n.payload_type), (CodecKind::Pcma, 8));
    assert_eq!(n.remote_rtp, "[::1]:49170".parse().unwrap());
    assert_eq!(n.remote_rtcp, Some("[::1]:49171".parse().unwrap()));
    assert_eq!(n.ptime, Duration::from_millis(30));
    assert!(text.contains("o=tincan 0 0 IN IP6 ::1\r\n"));
    assert!(text.contains("c=IN IP6 ::1\r\n"));
    assert!(text.contains("a=ptime:30\r\n"));
    assert_eq!(n.session_config(1, 2).ptime, Duration::from_millis(30));
}

#[test]
fn old_style_hold_and_resume() {
    let (text, n) = answer(OLD_HOLD, &local()).expect("acceptable");
    assert!(n.remote_on_hold);
    assert_eq!(n.remote_direction, Direction::SendOnly);
    assert_eq!(n.direction, Direction::RecvOnly);
    assert!(text.ends_with("a=recvonly\r\n"));
    // The resume: a real address again.
    let resume = OLD_HOLD.replace("0.0.0.0", "198.51.100.3");
    let n = answer(&resume, &local()).unwrap().1;
    assert!(!n.remote_on_hold);
    assert_eq!(n.direction, Direction::SendRecv);
    // Our own hold (RFC 3264 §8.4): sendonly offered, recvonly answered.
    let mut holding = local();
    holding.direction = Direction::SendOnly;
    holding.session_version = 2;
    let offer = sdp::offer(&holding);
    assert!(offer.to_string().ends_with("a=sendonly\r\n"));
    let their_answer = SIPP.replace("a=nortpproxy:yes", "a=recvonly");
    let n = sdp::apply_answer(&holding, &parse(&their_answer)).unwrap();
    assert_eq!(n.direction, Direction::SendOnly);
    assert!(!n.remote_on_hold);
}

/// Offer -> answer -> apply between two Tincans, then a media session on each side from the
/// negotiated configuration: an SRTP-protected Opus packet goes through.
#[test]
fn negotiated_configs_make_working_sessions() {
    let alice = srtp_local(SrtpPolicy::Optional);
    let mut bob = LocalMedia::new("127.0.0.1".parse().unwrap(), 6000);
    bob.srtp = SrtpPolicy::Required;
    bob.crypto = vec![key(7, CryptoSuite::AesCm128HmacSha1_32, 0x33)];
    let offer = parse(&sdp::offer(&alice).to_string());
    let (answer, at_bob) = sdp::answer(&offer, &bob).unwrap();
    let at_alice = sdp::apply_answer(&alice, &parse(&answer.to_string())).unwrap();
    assert!(at_alice.rtcp_mux && at_bob.rtcp_mux);
    let now = Instant::now();
    let mut a = MediaSession::new(at_alice.session_config(0xA, 1), now).unwrap();
    let mut b = MediaSession::new(at_bob.session_config(0xB, 2), now).unwrap();
    a.send_frame(now, &[3000; FRAME_SAMPLES]).unwrap();
    let t = a.poll_transmit().expect("one packet");
    assert_eq!(t.to, "127.0.0.1:6000".parse().unwrap());
    b.handle_packet(now, "127.0.0.1:4000".parse().unwrap(), t.kind, &t.bytes);
    let stats = b.stats();
    assert_eq!((stats.packets_received, stats.srtp_rejected), (1, 0));
}

/// Lines real SDP is made of, for mutations that reach deep into the parser and offer/answer.
fn sdp_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("v=0".to_owned()),
        Just("o=- 1 1 IN IP4 127.0.0.1".to_owned()),
        Just("c=IN IP4 0.0.0.0".to_owned()),
        Just("c=IN IP6 ::1".to_owned()),
        Just("c=IN IP4 example.com".to_owned()),
        Just("m=audio 0 RTP/AVP 0".to_owned()),
        Just("m=audio 65535 RTP/SAVP 96 0".to_owned()),
        Just("m=video 1 RTP/AVP 97".to_owned()),
        Just("a=rtpmap:96 opus/48000".to_owned()),
        Just("a=rtpmap:0 telephone-event/8000".to_owned()),
        Just("a=rtpmap:101 telephone-event/".to_owned()),
        Just("a=rtcp:65535 IN IP4 x".to_owned()),
        Just("a=rtcp-mux".to_owned()),
        Just("a=ptime:99999999999999999999".to_owned()),
        Just("a=maxptime:-10".to_owned()),
        Just("a=inactive".to_owned()),
        Just(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:M6A2DDy+W91bcksVTo8cSFvInK19SmOCQHAqxGXf"
                .to_owned()
        ),
        Just("a=crypto:x".to_owned()),
        "[a-z]=[ -~]{0,40}",
        "[ -~]{0,60}",
    ]
}

fn exercise(text: &str) {
    if let Ok(d) = SessionDescription::parse(text) {
        let printed = d.to_string();
        let again = SessionDescription::parse(&printed).expect("our own output parses");
        assert_eq!(again, d);
        for l in [
            local(),
            srtp_local(SrtpPolicy::Optional),
            srtp_local(SrtpPolicy::Required),
        ] {
            if let Ok((answer, n)) = sdp::answer(&d, &l) {
                assert!(SessionDescription::parse(&answer.to_string()).is_ok());
                let _ = n.session_config(1, 1);
            }
            let _ = sdp::apply_answer(&l, &d);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        exercise(&text);
        exercise(&format!("v=0\r\n{text}"));
    }

    #[test]
    fn mutated_samples_never_panic(
        sample in 0..SAMPLES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0..3u8, sdp_line()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut lines: Vec<String> = SAMPLES[sample].lines().map(str::to_owned).collect();
        for (at, op, line) in edits {
            let i = at.index(lines.len() + 1);
            match op {
                0 => lines.insert(i, line),
                1 if i < lines.len() => { lines.remove(i); }
                _ if i < lines.len() => lines[i] = line,
                _ => {}
            }
        }
        let text = lines.join("\r\n");
        exercise(&text);
        let mut end = cut.index(text.len() + 1);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        exercise(&text[..end]);
    }
}
