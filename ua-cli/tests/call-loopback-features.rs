//! Two Tincan phones on loopback: DTMF both ways (RFC 4733, and SIP INFO when telephone-event
//! is off), hold and resume, a codec change by re-INVITE, hang-up by the callee.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{CallEvent, CallId, DtmfVia, EndReason, PhoneConfig, PhoneEvent};
use tincan_media::codec::CodecKind;
use tincan_media::device::{NullSink, ToneSource};
use tincan_sip::driver::{Direction, Tracer};
use tincan_sip::message::{Message, Method};
use tincan_sip::resolve::AttemptFailure;

fn config(user: &str, telephone_event: bool) -> PhoneConfig {
    PhoneConfig {
        user: user.into(),
        telephone_event,
        ..PhoneConfig::default()
    }
}

async fn start(config: PhoneConfig) -> Phone {
    Phone::builder()
        .config(config)
        .bind("127.0.0.1:0".parse().unwrap())
        .start()
        .await
        .unwrap()
}

/// Every SIP message a phone sent or received, in order (see [`start_traced`]).
type Trace = Arc<Mutex<Vec<(Direction, Message)>>>;

/// [`start`], with a SIP trace of the phone.
async fn start_traced(config: PhoneConfig) -> (Phone, Trace) {
    let trace = Trace::default();
    let log = trace.clone();
    let phone = Phone::builder()
        .config(config)
        .bind("127.0.0.1:0".parse().unwrap())
        .sip_trace(Tracer::new(move |r| {
            if let Ok(m) = Message::parse(bytes::Bytes::copy_from_slice(r.payload)) {
                log.lock()
                    .expect("no test thread panics holding the trace")
                    .push((r.direction, m));
            }
        }))
        .start()
        .await
        .unwrap();
    (phone, trace)
}

/// The BYEs the phone of `trace` sent: their top Via branch and whether a final response to
/// that branch came back.
fn byes_sent(trace: &Trace) -> Vec<(String, bool)> {
    let trace = trace
        .lock()
        .expect("no test thread panics holding the trace");
    let branch = |m: &Message| {
        m.top_via()
            .and_then(Result::ok)
            .and_then(|v| v.branch().map(str::to_owned))
    };
    let is_bye = |m: &Message| {
        m.cseq()
            .and_then(Result::ok)
            .is_some_and(|c| c.method == Method::Bye)
    };
    let answered: Vec<String> = trace
        .iter()
        .filter(|(d, m)| *d == Direction::Received && m.status().is_some_and(|s| s >= 200))
        .filter(|(_, m)| is_bye(m))
        .filter_map(|(_, m)| branch(m))
        .collect();
    let mut byes: Vec<(String, bool)> = Vec::new();
    for (_, m) in trace
        .iter()
        .filter(|(d, m)| *d == Direction::Sent && m.method() == Some(&Method::Bye))
    {
        let b = branch(m).expect("our BYE has a Via branch");
        // a retransmission of a BYE already listed
        if byes.iter().all(|(seen, _)| *seen != b) {
            let got = answered.contains(&b);
            byes.push((b, got));
        }
    }
    byes
}

fn udp_addr(phone: &Phone) -> std::net::SocketAddr {
    phone.local_addresses()[0].1
}

/// One phone with its one call.
struct Side {
    phone: Phone,
    call: CallId,
}

impl Side {
    async fn next_event(&mut self) -> Option<CallEvent> {
        loop {
            match self.phone.next_event().await? {
                PhoneEvent::Call { call, event } if call == self.call => return Some(event),
                _ => continue,
            }
        }
    }
    /// Hangs up (a call the peer's BYE has just ended is no error: both hung up at once).
    async fn hangup(&self) {
        let _ = self.phone.hangup(self.call).await;
    }
    async fn hold(&self) {
        self.phone.hold(self.call).await.unwrap();
    }
    async fn resume(&self) {
        self.phone.resume(self.call).await.unwrap();
    }
    async fn send_dtmf(&self, digits: &str) {
        self.phone.send_dtmf(self.call, digits).await.unwrap();
    }
    async fn change_codec(&self, codec: CodecKind) {
        self.phone.change_codec(self.call, codec).await.unwrap();
    }
    async fn shutdown(self) {
        self.phone.shutdown().await;
    }
}

fn ended(e: &CallEvent, reason: EndReason) -> bool {
    matches!(e, CallEvent::Ended(end) if end.answered && end.reason == reason)
}

/// Waits for the first event `want` accepts, failing after 10 s.
async fn wait_for(call: &mut Side, what: &str, want: impl Fn(&CallEvent) -> bool) -> CallEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, call.next_event())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 10 s"))
            .unwrap_or_else(|| panic!("the phone stopped before {what}"));
        if want(&ev) {
            return ev;
        }
    }
}

async fn connect(telephone_event: bool) -> (Side, Side) {
    let (caller, callee, _, _) = connect_traced(telephone_event).await;
    (caller, callee)
}

/// [`connect`], with the SIP traces of the caller and the callee.
async fn connect_traced(telephone_event: bool) -> (Side, Side, Trace, Trace) {
    let (alice, alice_trace) = start_traced(config("alice", telephone_event)).await;
    let (mut bob, bob_trace) = start_traced(config("bob", telephone_event)).await;
    let bob_addr = udp_addr(&bob);
    let options = CallOptions {
        source: Box::new(ToneSource::new(440.0, -12.0)),
        sink: Box::new(NullSink::new()),
        ..CallOptions::default()
    };
    let call = alice
        .call(&format!("sip:bob@{bob_addr}"), options)
        .await
        .unwrap();
    let incoming = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(PhoneEvent::Incoming(i)) = bob.next_event().await {
                return i;
            }
        }
    })
    .await
    .unwrap();
    assert!(incoming.from.contains("alice"), "{}", incoming.from);
    bob.accept(
        incoming.call,
        Box::new(ToneSource::new(660.0, -12.0)),
        Box::new(NullSink::new()),
    )
    .await
    .unwrap();
    let mut caller = Side { phone: alice, call };
    let mut callee = Side {
        phone: bob,
        call: incoming.call,
    };
    wait_for(&mut caller, "answer", |e| {
        matches!(e, CallEvent::Answered { .. })
    })
    .await;
    wait_for(&mut callee, "answer", |e| {
        matches!(e, CallEvent::Answered { .. })
    })
    .await;
    (caller, callee, alice_trace, bob_trace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_hold_resume_codec_change_and_callee_hangup() {
    let (mut caller, mut callee) = connect(true).await;

    caller.send_dtmf("1#").await;
    for key in ['1', '#'] {
        let ev = wait_for(&mut callee, "dtmf", |e| matches!(e, CallEvent::Dtmf { .. })).await;
        let CallEvent::Dtmf { digit, via } = ev else {
            unreachable!()
        };
        assert_eq!((digit, via), (key, DtmfVia::Rfc4733));
    }
    callee.send_dtmf("7").await;
    let ev = wait_for(&mut caller, "dtmf", |e| matches!(e, CallEvent::Dtmf { .. })).await;
    assert!(
        matches!(
            ev,
            CallEvent::Dtmf {
                digit: '7',
                via: DtmfVia::Rfc4733
            }
        ),
        "{ev:?}"
    );

    caller.hold().await;
    wait_for(&mut caller, "hold", |e| {
        matches!(e, CallEvent::Hold { by_peer: false })
    })
    .await;
    wait_for(&mut callee, "held by peer", |e| {
        matches!(e, CallEvent::Hold { by_peer: true })
    })
    .await;
    caller.resume().await;
    wait_for(&mut caller, "resume", |e| {
        matches!(e, CallEvent::Resumed { by_peer: false })
    })
    .await;
    wait_for(&mut callee, "resumed by peer", |e| {
        matches!(e, CallEvent::Resumed { by_peer: true })
    })
    .await;

    caller.change_codec(CodecKind::Pcmu).await;
    for call in [&mut caller, &mut callee] {
        let ev = wait_for(call, "codec change", |e| {
            matches!(e, CallEvent::CodecChanged { .. })
        })
        .await;
        assert!(
            matches!(&ev, CallEvent::CodecChanged { codec, .. } if *codec == CodecKind::Pcmu),
            "{ev:?}"
        );
    }
    // Audio keeps flowing with the new codec.
    wait_for(
        &mut caller,
        "quality",
        |e| matches!(e, CallEvent::Quality(q) if q.packets_received > 5),
    )
    .await;

    callee.hangup().await;
    let ev = wait_for(&mut callee, "end", |e| matches!(e, CallEvent::Ended(_))).await;
    assert!(ended(&ev, EndReason::LocalHangup), "{ev:?}");
    let ev = wait_for(&mut caller, "end", |e| matches!(e, CallEvent::Ended(_))).await;
    assert!(ended(&ev, EndReason::RemoteHangup), "{ev:?}");
    caller.shutdown().await;
    callee.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_goes_in_sip_info_without_telephone_event() {
    let (mut caller, mut callee) = connect(false).await;
    caller.send_dtmf("5").await;
    let ev = wait_for(&mut callee, "dtmf", |e| matches!(e, CallEvent::Dtmf { .. })).await;
    assert!(
        matches!(
            ev,
            CallEvent::Dtmf {
                digit: '5',
                via: DtmfVia::Info
            }
        ),
        "{ev:?}"
    );
    callee.send_dtmf("*").await;
    let ev = wait_for(&mut caller, "dtmf", |e| matches!(e, CallEvent::Dtmf { .. })).await;
    assert!(
        matches!(
            ev,
            CallEvent::Dtmf {
                digit: '*',
                via: DtmfVia::Info
            }
        ),
        "{ev:?}"
    );
    caller.hangup().await;
    wait_for(&mut callee, "end", |e| matches!(e, CallEvent::Ended(_))).await;
    caller.shutdown().await;
    callee.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_callee_fails_with_a_clear_error_and_no_panic() {
    let alice = start(config("alice", true)).await;
    // A bad URI is refused before anything is sent.
    assert!(
        alice
            .call("mailto:bob@example.com", CallOptions::default())
            .await
            .is_err()
    );
    // Nobody listens on this port: the loopback answers the INVITE with ICMP port
    // unreachable, and the call ends `unreachable` on that (RFC 3261 §18.4), not on Timer B.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    drop(socket);
    let call = alice
        .call(
            &format!("sip:nobody@127.0.0.1:{port}"),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let mut call = Side { phone: alice, call };
    // A generous bound only: what is checked is the reason below.
    let ev = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match call.next_event().await {
                Some(e @ CallEvent::Ended(_)) => return e,
                Some(_) => continue,
                None => panic!("no end event"),
            }
        }
    })
    .await
    .expect("the call ends");
    let CallEvent::Ended(end) = &ev else {
        unreachable!("the loop returns only an Ended event")
    };
    assert!(
        !end.answered && end.reason == EndReason::Unreachable,
        "{ev:?}"
    );
    // The one target tried failed by the ICMP error (not by a timeout: Timer B, or the
    // failover budget), and the error says so.
    let target: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert_eq!(end.tried.len(), 1, "{ev:?}");
    assert_eq!(end.tried[0].target.addr, target, "{ev:?}");
    assert_eq!(end.tried[0].why, AttemptFailure::Unreachable, "{ev:?}");
    eprintln!("the call ended: {}", end.tried[0]);
    call.shutdown().await;
}

/// A peer that answers and then goes silent (no RTP, no BYE: its BYE was lost, or it
/// crashed): the call hangs up by itself after `rtp_timeout_hangup` with `media_timeout`,
/// and the BYE goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_hung_up_after_the_rtp_timeout() {
    use tincan_sip::message::{HeaderName, Message, response_to};
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let alice = start(PhoneConfig {
        rtp_timeout_hangup: Some(Duration::from_secs(2)),
        ..config("alice", true)
    })
    .await;
    let call = alice
        .call(&format!("sip:bob@{peer_addr}"), CallOptions::default())
        .await
        .unwrap();
    let mut call = Side { phone: alice, call };
    let fake_peer = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut methods = Vec::new();
        loop {
            let Ok(Ok((n, from))) =
                tokio::time::timeout(Duration::from_secs(15), peer.recv_from(&mut buf)).await
            else {
                return methods;
            };
            let Ok(msg) = Message::parse(bytes::Bytes::copy_from_slice(&buf[..n])) else {
                continue;
            };
            let Some(method) = msg.method().cloned() else {
                continue;
            };
            methods.push(method.as_str().to_owned());
            match method.as_str() {
                "INVITE" => {
                    let sdp = format!(
                        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
                        peer_addr.port() + 2
                    );
                    let mut ok = response_to(&msg, 200, None);
                    ok.set_to_tag("silent");
                    ok.push_header(HeaderName::Contact, &format!("<sip:bob@{peer_addr}>"));
                    ok.set_body(Some("application/sdp"), bytes::Bytes::from(sdp));
                    let len = ok.body().len().to_string();
                    ok.set_header(HeaderName::ContentLength, &len);
                    peer.send_to(&ok.to_bytes(), from).await.unwrap();
                }
                "BYE" => {
                    let ok = response_to(&msg, 200, None);
                    peer.send_to(&ok.to_bytes(), from).await.unwrap();
                    return methods;
                }
                _ => {}
            }
        }
    });
    wait_for(&mut call, "answer", |e| {
        matches!(e, CallEvent::Answered { .. })
    })
    .await;
    let ev = wait_for(&mut call, "end", |e| matches!(e, CallEvent::Ended(_))).await;
    assert!(ended(&ev, EndReason::MediaTimeout), "{ev:?}");
    let methods = fake_peer.await.unwrap();
    assert_eq!(methods.first().map(String::as_str), Some("INVITE"));
    assert_eq!(
        methods.last().map(String::as_str),
        Some("BYE"),
        "{methods:?}"
    );
    call.shutdown().await;
}

/// Late offer (RFC 3264 §5 in RFC 3261 §13.2.1): the INVITE carries no SDP, the callee offers in
/// its 200 and the caller answers in the ACK; media then flows both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_offer_is_answered_in_the_ack() {
    let alice = start(config("alice", true)).await;
    let mut bob = start(config("bob", true)).await;
    let bob_addr = udp_addr(&bob);
    let options = CallOptions {
        source: Box::new(ToneSource::new(440.0, -12.0)),
        params: tincan::phone::CallParams {
            late_offer: true,
            ..Default::default()
        },
        ..CallOptions::default()
    };
    let call = alice
        .call(&format!("sip:bob@{bob_addr}"), options)
        .await
        .unwrap();
    let incoming = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(PhoneEvent::Incoming(i)) = bob.next_event().await {
                return i;
            }
        }
    })
    .await
    .unwrap();
    bob.accept(
        incoming.call,
        Box::new(ToneSource::new(660.0, -12.0)),
        Box::new(NullSink::new()),
    )
    .await
    .unwrap();
    let mut caller = Side { phone: alice, call };
    let mut callee = Side {
        phone: bob,
        call: incoming.call,
    };
    wait_for(&mut caller, "answer", |e| {
        matches!(e, CallEvent::Answered { .. })
    })
    .await;
    wait_for(&mut callee, "answer from the ACK", |e| {
        matches!(e, CallEvent::Answered { .. })
    })
    .await;
    for call in [&mut caller, &mut callee] {
        wait_for(
            call,
            "media",
            |e| matches!(e, CallEvent::Quality(q) if q.packets_received > 20),
        )
        .await;
    }
    caller.hangup().await;
    wait_for(&mut callee, "end", |e| matches!(e, CallEvent::Ended(_))).await;
    caller.shutdown().await;
    callee.shutdown().await;
}

/// BYE glare: both sides hang up at the same moment, so each BYE crosses the other's. Both
/// calls end at once (`local_hangup`; the callee `remote_hangup` when its ACK was still on its
/// way), each BYE gets its answer (200, or 481 for a dialog the
/// other side already ended) instead of waiting out Timer F (the SIP traces show a final
/// response to every BYE sent), and both phones shut down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_hang_up_at_once() {
    for round in 0..5 {
        let (mut caller, mut callee, caller_trace, callee_trace) = connect_traced(true).await;
        caller.hangup().await;
        callee.hangup().await;
        for (call, who) in [(&mut caller, "caller"), (&mut callee, "callee")] {
            let ev = wait_for(call, "end", |e| matches!(e, CallEvent::Ended(_))).await;
            // The callee may hang up before the caller's ACK reached it: it must then wait for
            // the ACK before its BYE (RFC 3261 §15), and the caller's BYE ends its call first.
            let ok = |reason: EndReason| {
                reason == EndReason::LocalHangup
                    || who == "callee" && reason == EndReason::RemoteHangup
            };
            assert!(
                matches!(&ev, CallEvent::Ended(end) if end.answered && ok(end.reason)),
                "round {round}, {who}: {ev:?}"
            );
        }
        // A generous bound: a shutdown waiting out a transaction takes its 4 s grace at most.
        tokio::time::timeout(Duration::from_secs(10), async {
            caller.shutdown().await;
            callee.shutdown().await;
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: the phones did not shut down"));
        // Each BYE was answered: no transaction was left for the shutdown to wait out.
        let caller_byes = byes_sent(&caller_trace);
        let callee_byes = byes_sent(&callee_trace);
        eprintln!("round {round}: caller's BYEs {caller_byes:?}, callee's {callee_byes:?}");
        assert!(
            !caller_byes.is_empty(),
            "round {round}: the caller sent no BYE"
        );
        for (branch, answered) in caller_byes.iter().chain(&callee_byes) {
            assert!(
                answered,
                "round {round}: the BYE {branch} got no final response"
            );
        }
    }
}
