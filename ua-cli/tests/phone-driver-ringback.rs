//! Ring-back (issue 14 point 6): an outgoing call whose callee rings (180 without SDP) plays
//! a 425 Hz ring-back on its own sink until the answer, then the peer's audio; early media
//! (183 with SDP, from a hand-written UAS on a UDP socket) replaces it; a call refused while
//! ringing lets its sink go; `ringback(None)` plays nothing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{CallEvent, CallId, PhoneEvent};
use tincan_media::device::{AudioSink, DeviceError, NullSink, ToneSource};
use tincan_media::tones::goertzel_power;

/// Every frame a sink was given, and whether it was dropped.
#[derive(Clone, Default)]
struct Recorded {
    frames: Arc<Mutex<Vec<Vec<i16>>>>,
    dropped: Arc<AtomicBool>,
}

struct Capture(Recorded);

impl AudioSink for Capture {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        self.0.frames.lock().unwrap().push(frame.to_vec());
        Ok(())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.0.dropped.store(true, Ordering::SeqCst);
    }
}

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Heard {
    Ringback,
    Peer,
    Other,
}

fn heard(frame: &[i16]) -> Heard {
    let (ringback, peer) = (goertzel_power(frame, 425.0), goertzel_power(frame, 1000.0));
    if ringback > 1e-3 && ringback > 10.0 * peer {
        Heard::Ringback
    } else if peer > 1e-3 && peer > 10.0 * ringback {
        Heard::Peer
    } else {
        Heard::Other
    }
}

impl Recorded {
    fn count(&self, what: Heard) -> usize {
        let frames = self.frames.lock().unwrap();
        frames.iter().filter(|f| heard(f) == what).count()
    }

    fn len(&self) -> usize {
        self.frames.lock().unwrap().len()
    }

    /// Waits (up to 20 s: a loaded machine) until `ok` holds.
    async fn wait(&self, what: &str, ok: impl Fn(&Recorded) -> bool) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while !ok(self) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: the sink holds {} frames", self.len()));
    }
}

/// Waits for an event of `phone` that `want` accepts (at most 20 s).
async fn wait_for<T>(phone: &mut Phone, mut want: impl FnMut(&PhoneEvent) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ev = tokio::time::timeout_at(deadline, phone.next_event())
            .await
            .expect("the event came in time")
            .expect("the phone runs");
        if let Some(v) = want(&ev) {
            return v;
        }
    }
}

fn udp_addr(phone: &Phone) -> SocketAddr {
    phone
        .local_addresses()
        .iter()
        .find(|(t, _)| t.as_str() == "udp")
        .map(|(_, a)| *a)
        .expect("a udp socket")
}

/// Alice (built by `alice`) calls Bob, who rings (180 without SDP); returns both, the
/// call's id at Bob and what Alice's sink records.
async fn ringing_call(
    alice: tincan::phone::driver::PhoneBuilder,
) -> (Phone, Phone, CallId, Recorded) {
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let alice = alice.bind(bind).start().await.unwrap();
    let mut bob = Phone::builder().bind(bind).start().await.unwrap();
    let recorded = Recorded::default();
    let options = CallOptions {
        sink: Box::new(Capture(recorded.clone())),
        ..CallOptions::default()
    };
    alice
        .call(&format!("sip:bob@{}", udp_addr(&bob)), options)
        .await
        .unwrap();
    let incoming = wait_for(&mut bob, |e| match e {
        PhoneEvent::Incoming(i) => Some(i.call),
        _ => None,
    })
    .await;
    bob.ring(incoming).await.unwrap();
    (alice, bob, incoming, recorded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_hears_ringback_while_the_callee_rings_then_the_peer() {
    let (mut alice, bob, incoming, recorded) = ringing_call(Phone::builder()).await;
    // Half a second of the tone's first second.
    recorded
        .wait("ring-back", |r| r.count(Heard::Ringback) >= 25)
        .await;
    assert_eq!(recorded.count(Heard::Peer), 0);
    bob.accept(
        incoming,
        Box::new(ToneSource::new(1000.0, -12.0)),
        Box::new(NullSink::new()),
    )
    .await
    .unwrap();
    wait_for(&mut alice, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Answered { .. },
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    recorded
        .wait("the peer's audio", |r| r.count(Heard::Peer) >= 50)
        .await;
    let frames = recorded.frames.lock().unwrap().clone();
    let kinds: Vec<Heard> = frames.iter().map(|f| heard(f)).collect();
    let first_peer = kinds.iter().position(|&k| k == Heard::Peer).unwrap();
    assert!(
        kinds[..first_peer]
            .iter()
            .filter(|&&k| k == Heard::Ringback)
            .count()
            >= 25
    );
    assert!(
        !kinds[first_peer..].contains(&Heard::Ringback),
        "ring-back after the answer: {kinds:?}"
    );
    assert!(!recorded.dropped.load(Ordering::SeqCst));
    alice.shutdown().await;
    bob.shutdown().await;
    assert!(recorded.dropped.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ringback_stops_and_the_sink_is_let_go_when_the_call_is_refused() {
    let (mut alice, bob, incoming, recorded) = ringing_call(Phone::builder()).await;
    recorded
        .wait("ring-back", |r| r.count(Heard::Ringback) >= 5)
        .await;
    bob.reject(incoming, 486).await.unwrap();
    wait_for(&mut alice, |e| match e {
        PhoneEvent::Call {
            event: CallEvent::Ended(_),
            ..
        } => Some(()),
        _ => None,
    })
    .await;
    recorded
        .wait("the sink dropped", |r| r.dropped.load(Ordering::SeqCst))
        .await;
    let n = recorded.len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorded.len(), n);
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ringback_when_turned_off() {
    let (alice, bob, incoming, recorded) = ringing_call(Phone::builder().ringback(None)).await;
    // Bob's 180 has reached Alice once Bob answers after it and the peer is heard.
    tokio::time::sleep(Duration::from_millis(500)).await;
    bob.accept(
        incoming,
        Box::new(ToneSource::new(1000.0, -12.0)),
        Box::new(NullSink::new()),
    )
    .await
    .unwrap();
    recorded
        .wait("the peer's audio", |r| r.count(Heard::Peer) >= 10)
        .await;
    assert_eq!(recorded.count(Heard::Ringback), 0);
    alice.shutdown().await;
    bob.shutdown().await;
}

/// A SIP request as the hand-written UAS reads it.
struct Request {
    method: String,
    /// Via, From, To, Call-ID, CSeq lines, as received.
    headers: Vec<String>,
    body: String,
}

fn parse(datagram: &[u8]) -> Option<Request> {
    let text = std::str::from_utf8(datagram).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let method = lines.next()?.split(' ').next()?.to_owned();
    let headers = lines
        .filter(|l| {
            let name = l
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            matches!(
                name.as_str(),
                "via" | "v" | "from" | "f" | "to" | "t" | "call-id" | "i" | "cseq"
            )
        })
        .map(str::to_owned)
        .collect();
    Some(Request {
        method,
        headers,
        body: body.to_owned(),
    })
}

/// A response to `req`: its Via, From, Call-ID, CSeq, its To with our tag, a Contact.
fn response(req: &Request, status: &str, contact: SocketAddr, sdp: Option<&str>) -> Vec<u8> {
    let mut out = format!("SIP/2.0 {status}\r\n");
    for h in &req.headers {
        let name = h
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if (name == "to" || name == "t") && !h.contains(";tag=") {
            out.push_str(&format!("{h};tag=uas1\r\n"));
        } else {
            out.push_str(h);
            out.push_str("\r\n");
        }
    }
    out.push_str(&format!("Contact: <sip:bob@{contact}>\r\n"));
    match sdp {
        Some(sdp) => out.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )),
        None => out.push_str("Content-Length: 0\r\n\r\n"),
    }
    out.into_bytes()
}

/// The RTP address of an SDP offer (`c=` and `m=audio`).
fn rtp_address(sdp: &str) -> SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("a c= line")
        .trim();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .expect("an m=audio line");
    format!("{ip}:{port}").parse().expect("an address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_media_replaces_ringback() {
    use tincan_media::codec::CodecKind;
    use tincan_media::driver::{MediaPorts, PortRange};
    use tincan_media::session::SessionConfig;
    use tokio::net::UdpSocket;

    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let alice = Phone::builder().bind(bind).start().await.unwrap();
    let uas = UdpSocket::bind(bind).await.unwrap();
    let uas_addr = uas.local_addr().unwrap();
    let recorded = Recorded::default();
    let options = CallOptions {
        sink: Box::new(Capture(recorded.clone())),
        ..CallOptions::default()
    };
    let call = alice
        .call(&format!("sip:bob@{uas_addr}"), options)
        .await
        .unwrap();
    let mut buf = vec![0u8; 65_536];
    let recv = async |buf: &mut Vec<u8>| {
        let (n, from) = tokio::time::timeout(Duration::from_secs(20), uas.recv_from(buf))
            .await
            .expect("a request in time")
            .unwrap();
        (parse(&buf[..n]).expect("a SIP request"), from)
    };
    let (invite, alice_sip) = recv(&mut buf).await;
    assert_eq!(invite.method, "INVITE");
    let alice_rtp = rtp_address(&invite.body);
    uas.send_to(&response(&invite, "180 Ringing", uas_addr, None), alice_sip)
        .await
        .unwrap();
    recorded
        .wait("ring-back", |r| r.count(Heard::Ringback) >= 25)
        .await;

    // Early media: a 183 whose SDP answers with PCMU, and a 1000 Hz tone sent at once.
    let ports = MediaPorts::bind("127.0.0.1".parse().unwrap(), PortRange::Any, false)
        .await
        .unwrap();
    let sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ports.rtp_addr().port()
    );
    let media = tincan_media::driver::spawn(
        ports,
        SessionConfig::new(0x5eed, CodecKind::Pcmu, 0, alice_rtp),
        Box::new(ToneSource::new(1000.0, -12.0)),
        Box::new(NullSink::new()),
    )
    .unwrap();
    uas.send_to(
        &response(&invite, "183 Session Progress", uas_addr, Some(&sdp)),
        alice_sip,
    )
    .await
    .unwrap();
    recorded
        .wait("the early media", |r| r.count(Heard::Peer) >= 50)
        .await;
    let kinds: Vec<Heard> = recorded
        .frames
        .lock()
        .unwrap()
        .iter()
        .map(|f| heard(f))
        .collect();
    let first_peer = kinds.iter().position(|&k| k == Heard::Peer).unwrap();
    assert!(
        !kinds[first_peer..].contains(&Heard::Ringback),
        "ring-back during early media: {kinds:?}"
    );

    // Alice gives up: CANCEL, 200 to it, 487 to the INVITE, its ACK.
    alice.hangup(call).await.unwrap();
    loop {
        let (req, from) = recv(&mut buf).await;
        match req.method.as_str() {
            "CANCEL" => {
                uas.send_to(&response(&req, "200 OK", uas_addr, None), from)
                    .await
                    .unwrap();
                uas.send_to(
                    &response(&invite, "487 Request Terminated", uas_addr, None),
                    from,
                )
                .await
                .unwrap();
            }
            "ACK" => break,
            _ => {}
        }
    }
    media.stop().await;
    alice.shutdown().await;
    assert!(recorded.dropped.load(Ordering::SeqCst));
}
