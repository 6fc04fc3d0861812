//! Issue 19, finding 1: RTP hijack, on loopback with real sockets. A Tincan phone calls a
//! peer (this test: plain SIP and RTP over UDP sockets) that answers RTP/AVP (no SRTP, the
//! default `--srtp optional` then sends plain RTP). While the call runs, a stranger's socket
//! sprays RTP with the negotiated payload type at the phone's media port: one packet right
//! after the answer, then 200 packets a second with a steady SSRC, and bursts of 30. The
//! peer must receive every RTP packet the phone sent and the stranger nothing at all.
//!
//! And a peer behind a NAT (its RTP comes from another port than its SDP says) is still
//! followed after latching probation, with a `media_moved` warning.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{CallEvent, CallId, CallWarning, EndReason, PhoneConfig, PhoneEvent};
use tincan_media::codec::CodecKind;
use tincan_media::rtp::RtpPacket;
use tincan_sip::message::{HeaderName, Message, response_to};
use tokio::net::UdpSocket;

/// The peer's SIP side: answers the INVITE with 200 and an RTP/AVP PCMU answer whose media
/// address is `sdp_rtp`, answers the BYE; returns the phone's RTP address from the offer.
async fn answer_calls(
    sip: UdpSocket,
    sdp_rtp: SocketAddr,
    offer_rtp: tokio::sync::oneshot::Sender<SocketAddr>,
) {
    let mut offer_rtp = Some(offer_rtp);
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok(Ok((n, from))) =
            tokio::time::timeout(Duration::from_secs(30), sip.recv_from(&mut buf)).await
        else {
            return;
        };
        let Ok(msg) = Message::parse(bytes::Bytes::copy_from_slice(&buf[..n])) else {
            continue;
        };
        let Some(method) = msg.method().map(|m| m.as_str().to_owned()) else {
            continue;
        };
        match method.as_str() {
            "INVITE" => {
                let offer = String::from_utf8_lossy(msg.body()).into_owned();
                if let (Some(tx), Some(addr)) = (offer_rtp.take(), media_address(&offer)) {
                    let _ = tx.send(addr);
                }
                let sdp = format!(
                    "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
                     m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
                    ip = sdp_rtp.ip(),
                    port = sdp_rtp.port()
                );
                let mut ok = response_to(&msg, 200, None);
                ok.set_to_tag("peer");
                ok.push_header(
                    HeaderName::Contact,
                    &format!("<sip:bob@{}>", sip.local_addr().expect("bound")),
                );
                ok.set_body(Some("application/sdp"), bytes::Bytes::from(sdp));
                let len = ok.body().len().to_string();
                ok.set_header(HeaderName::ContentLength, &len);
                sip.send_to(&ok.to_bytes(), from)
                    .await
                    .expect("loopback send");
            }
            "BYE" => {
                let ok = response_to(&msg, 200, None);
                sip.send_to(&ok.to_bytes(), from)
                    .await
                    .expect("loopback send");
                return;
            }
            _ => {}
        }
    }
}

/// The `c=` and `m=audio` of an SDP body.
fn media_address(sdp: &str) -> Option<SocketAddr> {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .trim()
        .to_owned();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split(' ')
        .next()?
        .to_owned();
    format!("{ip}:{port}").parse().ok()
}

/// Counts RTP packets (not RTCP) arriving at a socket until `stop`.
fn count_rtp(socket: Arc<UdpSocket>, stop: Arc<AtomicBool>) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok(Ok((n, _))) =
                tokio::time::timeout(Duration::from_millis(50), socket.recv_from(&mut buf)).await
                && !tincan_media::rtp::is_rtcp(&buf[..n])
            {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    count
}

/// Everything (RTP or RTCP) arriving at a socket until `stop`.
fn count_all(socket: Arc<UdpSocket>, stop: Arc<AtomicBool>) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(50), socket.recv_from(&mut buf)).await
            {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    count
}

fn pcmu(ssrc: u32, sequence: u16) -> Vec<u8> {
    RtpPacket {
        payload_type: 0,
        marker: false,
        sequence,
        timestamp: u32::from(sequence) * 160,
        ssrc,
        payload: vec![0xFF; 160].into(),
    }
    .to_bytes()
}

/// Sends a PCMU stream every 20 ms from `socket` to `to` until `stop`.
fn send_stream(socket: Arc<UdpSocket>, to: SocketAddr, ssrc: u32, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        let mut seq = 1u16;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let _ = socket.send_to(&pcmu(ssrc, seq), to).await;
            seq = seq.wrapping_add(1);
        }
    });
}

async fn next_call_event(phone: &mut Phone, call: CallId, what: &str) -> CallEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout_at(deadline, phone.next_event()).await {
            Ok(Some(PhoneEvent::Call { call: c, event })) if c == call => return event,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the phone stopped before {what}"),
            Err(_) => panic!("no {what} within 15 s"),
        }
    }
}

struct Setup {
    phone: Phone,
    call: CallId,
    /// The phone's RTP address (from its offer).
    phone_rtp: SocketAddr,
    warnings: Vec<CallWarning>,
}

/// A phone calls the peer whose SDP names `sdp_rtp`; returns once the call is answered.
async fn call_peer(sdp_rtp: SocketAddr) -> Setup {
    let sip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sip_addr = sip.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(answer_calls(sip, sdp_rtp, tx));
    let mut phone = Phone::builder()
        .config(PhoneConfig {
            user: "alice".into(),
            codecs: vec![CodecKind::Pcmu],
            ..PhoneConfig::default()
        })
        .bind("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap();
    let call = phone
        .call(&format!("sip:bob@{sip_addr}"), CallOptions::default())
        .await
        .unwrap();
    let phone_rtp = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("an INVITE within 10 s")
        .expect("an offer with a media address");
    let mut warnings = Vec::new();
    loop {
        match next_call_event(&mut phone, call, "the answer").await {
            CallEvent::Answered { remote_rtp, .. } => {
                assert_eq!(remote_rtp, sdp_rtp);
                break;
            }
            CallEvent::Warning(w) => warnings.push(w),
            CallEvent::Ended(end) => panic!("ended before the answer: {end:?}"),
            _ => {}
        }
    }
    Setup {
        phone,
        call,
        phone_rtp,
        warnings,
    }
}

/// Hangs up and returns the phone's RTP packets sent, from the final figures.
async fn hang_up(setup: &mut Setup) -> u64 {
    setup.phone.hangup(setup.call).await.unwrap();
    loop {
        match next_call_event(&mut setup.phone, setup.call, "the end").await {
            CallEvent::Ended(end) => {
                assert_eq!(end.reason, EndReason::LocalHangup, "{end:?}");
                return end.quality.packets_sent;
            }
            CallEvent::Warning(w) => setup.warnings.push(w),
            _ => {}
        }
    }
}

/// Waits until `count` reaches `want` (the phone's last packets still in the socket's queue),
/// failing after 10 s.
async fn wait_count(count: &AtomicU64, want: u64, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count.load(Ordering::Relaxed) < want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {} of {want} packets",
            count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_spraying_rtp_gets_none_of_the_calls_audio() {
    let peer_rtp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let stranger = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let mut setup = call_peer(peer_rtp.local_addr().unwrap()).await;
    let at_peer = count_rtp(peer_rtp.clone(), stop.clone());
    let at_stranger = count_all(stranger.clone(), stop.clone());
    let target = setup.phone_rtp;
    // The stranger: one packet at once, then 200/s with a steady SSRC and a burst of 30
    // every 100 ms, for 3 s.
    stranger.send_to(&pcmu(0x666, 1), target).await.unwrap();
    let spray = {
        let stranger = stranger.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let mut seq = 2u16;
            for k in 0..600 {
                tick.tick().await;
                let n = if k % 20 == 0 { 30 } else { 1 };
                for _ in 0..n {
                    let _ = stranger.send_to(&pcmu(0x666, seq), target).await;
                    seq = seq.wrapping_add(1);
                }
            }
        })
    };
    send_stream(peer_rtp.clone(), target, 0xB0B, stop.clone());
    spray.await.unwrap();
    let sent = hang_up(&mut setup).await;
    assert!(sent >= 100, "3 s of audio: {sent} packets");
    wait_count(&at_peer, sent, "the peer").await;
    stop.store(true, Ordering::Relaxed);
    assert_eq!(
        at_peer.load(Ordering::Relaxed),
        sent,
        "every packet at the peer"
    );
    assert_eq!(
        at_stranger.load(Ordering::Relaxed),
        0,
        "nothing at the stranger"
    );
    assert!(
        !setup
            .warnings
            .iter()
            .any(|w| matches!(w, CallWarning::MediaMoved { .. })),
        "{:?}",
        setup.warnings
    );
    setup.phone.shutdown().await;
}

/// The peer's SDP names one port but its RTP comes from another (a NAT): the phone's RTP
/// moves there after probation (10 packets) and the call warns `media_moved`; every packet
/// went to one of the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_behind_a_nat_is_followed_after_probation() {
    let sdp_rtp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let nat_rtp = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let mut setup = call_peer(sdp_rtp.local_addr().unwrap()).await;
    let at_sdp = count_rtp(sdp_rtp.clone(), stop.clone());
    let at_nat = count_rtp(nat_rtp.clone(), stop.clone());
    send_stream(nat_rtp.clone(), setup.phone_rtp, 0xB0B, stop.clone());
    let nat_addr = nat_rtp.local_addr().unwrap();
    loop {
        match next_call_event(&mut setup.phone, setup.call, "the move").await {
            CallEvent::Warning(CallWarning::MediaMoved { to, .. }) => {
                assert_eq!(to, nat_addr);
                break;
            }
            CallEvent::Ended(end) => panic!("ended: {end:?}"),
            _ => {}
        }
    }
    // A second of audio after the move.
    let moved_at = at_nat.load(Ordering::Relaxed);
    wait_count(&at_nat, moved_at + 50, "after the move").await;
    let sent = hang_up(&mut setup).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while at_sdp.load(Ordering::Relaxed) + at_nat.load(Ordering::Relaxed) < sent {
        assert!(tokio::time::Instant::now() < deadline, "packets missing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (before, after) = (
        at_sdp.load(Ordering::Relaxed),
        at_nat.load(Ordering::Relaxed),
    );
    assert_eq!(before + after, sent);
    assert!(after >= 50, "{before} before the move, {after} after");
    setup.phone.shutdown().await;
}
