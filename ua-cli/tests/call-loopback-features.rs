//! Two Tincan phones on loopback: DTMF both ways (RFC 4733, and SIP INFO when telephone-event
//! is off), hold and resume, a codec change by re-INVITE, hang-up by the callee.

use std::time::Duration;

use tincan::call::{Call, CallEvent, CallOptions, Phone, PhoneConfig};
use tincan_media::codec::CodecKind;
use tincan_media::device::{NullSink, ToneSource};

fn config(user: &str, telephone_event: bool) -> PhoneConfig {
    PhoneConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        user: user.into(),
        telephone_event,
        ..PhoneConfig::default()
    }
}

/// Waits for the first event `want` accepts, failing after 10 s.
async fn wait_for(call: &mut Call, what: &str, want: impl Fn(&CallEvent) -> bool) -> CallEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let ev = tokio::time::timeout_at(deadline, call.next_event())
            .await
            .unwrap_or_else(|_| panic!("no {what} within 10 s"))
            .unwrap_or_else(|| panic!("the call ended before {what}"));
        if want(&ev) {
            return ev;
        }
    }
}

async fn connect(telephone_event: bool) -> (Phone, Phone, Call, Call) {
    let alice = Phone::start(config("alice", telephone_event))
        .await
        .unwrap();
    let mut bob = Phone::start(config("bob", telephone_event)).await.unwrap();
    let bob_addr = bob.local_address().unwrap();
    let options = CallOptions {
        source: Box::new(ToneSource::new(440.0, -12.0)),
        sink: Box::new(NullSink::new()),
        ..CallOptions::default()
    };
    let mut caller = alice
        .call(&format!("sip:bob@{bob_addr}"), options)
        .await
        .unwrap();
    let incoming = tokio::time::timeout(Duration::from_secs(5), bob.next_incoming())
        .await
        .unwrap()
        .unwrap();
    assert!(incoming.from.contains("alice"), "{}", incoming.from);
    let mut callee = incoming.accept(
        Box::new(ToneSource::new(660.0, -12.0)),
        Box::new(NullSink::new()),
    );
    wait_for(&mut caller, "answer", |e| {
        matches!(e, CallEvent::Answered { .. })
    })
    .await;
    wait_for(&mut callee, "answer", |e| {
        matches!(e, CallEvent::Answered { .. })
    })
    .await;
    (alice, bob, caller, callee)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_hold_resume_codec_change_and_callee_hangup() {
    let (alice, bob, mut caller, mut callee) = connect(true).await;

    caller.send_dtmf("1#");
    for key in ['1', '#'] {
        let ev = wait_for(&mut callee, "dtmf", |e| matches!(e, CallEvent::Dtmf { .. })).await;
        let CallEvent::Dtmf { digit, via } = ev else {
            unreachable!()
        };
        assert_eq!((digit, via), (key, "rfc4733"));
    }
    callee.send_dtmf("7");
    let ev = wait_for(&mut caller, "dtmf", |e| matches!(e, CallEvent::Dtmf { .. })).await;
    assert!(
        matches!(
            ev,
            CallEvent::Dtmf {
                digit: '7',
                via: "rfc4733"
            }
        ),
        "{ev:?}"
    );

    caller.hold();
    wait_for(&mut caller, "hold", |e| {
        matches!(e, CallEvent::Hold { by_peer: false })
    })
    .await;
    wait_for(&mut callee, "held by peer", |e| {
        matches!(e, CallEvent::Hold { by_peer: true })
    })
    .await;
    caller.resume();
    wait_for(&mut caller, "resume", |e| {
        matches!(e, CallEvent::Resumed { by_peer: false })
    })
    .await;
    wait_for(&mut callee, "resumed by peer", |e| {
        matches!(e, CallEvent::Resumed { by_peer: true })
    })
    .await;

    caller.change_codec(CodecKind::Pcmu);
    for call in [&mut caller, &mut callee] {
        let ev = wait_for(call, "codec change", |e| {
            matches!(e, CallEvent::CodecChanged { .. })
        })
        .await;
        assert!(
            matches!(&ev, CallEvent::CodecChanged { codec, .. } if codec == "pcmu"),
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

    callee.hangup();
    let ev = wait_for(&mut callee, "end", |e| matches!(e, CallEvent::Ended { .. })).await;
    assert!(
        matches!(&ev, CallEvent::Ended { reason, answered: true, .. } if reason == "local_hangup"),
        "{ev:?}"
    );
    let ev = wait_for(&mut caller, "end", |e| matches!(e, CallEvent::Ended { .. })).await;
    assert!(
        matches!(&ev, CallEvent::Ended { reason, answered: true, .. } if reason == "remote_hangup"),
        "{ev:?}"
    );
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_goes_in_sip_info_without_telephone_event() {
    let (alice, bob, mut caller, mut callee) = connect(false).await;
    caller.send_dtmf("5");
    let ev = wait_for(&mut callee, "dtmf", |e| matches!(e, CallEvent::Dtmf { .. })).await;
    assert!(
        matches!(
            ev,
            CallEvent::Dtmf {
                digit: '5',
                via: "info"
            }
        ),
        "{ev:?}"
    );
    callee.send_dtmf("*");
    let ev = wait_for(&mut caller, "dtmf", |e| matches!(e, CallEvent::Dtmf { .. })).await;
    assert!(
        matches!(
            ev,
            CallEvent::Dtmf {
                digit: '*',
                via: "info"
            }
        ),
        "{ev:?}"
    );
    caller.hangup();
    wait_for(&mut callee, "end", |e| matches!(e, CallEvent::Ended { .. })).await;
    alice.shutdown().await;
    bob.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_callee_fails_with_a_clear_error_and_no_panic() {
    let alice = Phone::start(config("alice", true)).await.unwrap();
    // A bad URI is refused before anything is sent.
    assert!(
        alice
            .call("mailto:bob@example.com", CallOptions::default())
            .await
            .is_err()
    );
    // Nobody listens on this port: the call ends (ICMP or timeout) without answering.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    drop(socket);
    let mut call = alice
        .call(
            &format!("sip:nobody@127.0.0.1:{port}"),
            CallOptions::default(),
        )
        .await
        .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            match call.next_event().await {
                Some(e @ CallEvent::Ended { .. }) => return e,
                Some(_) => continue,
                None => panic!("no end event"),
            }
        }
    })
    .await
    .expect("the call ends");
    assert!(
        matches!(
            &ev,
            CallEvent::Ended {
                answered: false,
                ..
            }
        ),
        "{ev:?}"
    );
    alice.shutdown().await;
}

/// A peer that answers and then goes silent (no RTP, no BYE: its BYE was lost, or it
/// crashed): the call hangs up by itself after `rtp_timeout_hangup` with `media_timeout`,
/// and the BYE goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_hung_up_after_the_rtp_timeout() {
    use tincan_sip::message::{HeaderName, Message, response_to};
    let peer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let alice = Phone::start(PhoneConfig {
        rtp_timeout_hangup: Some(Duration::from_secs(2)),
        ..config("alice", true)
    })
    .await
    .unwrap();
    let mut call = alice
        .call(&format!("sip:bob@{peer_addr}"), CallOptions::default())
        .await
        .unwrap();
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
    let ev = wait_for(&mut call, "end", |e| matches!(e, CallEvent::Ended { .. })).await;
    assert!(
        matches!(&ev, CallEvent::Ended { reason, answered: true, .. } if reason == "media_timeout"),
        "{ev:?}"
    );
    let methods = fake_peer.await.unwrap();
    assert_eq!(methods.first().map(String::as_str), Some("INVITE"));
    assert_eq!(
        methods.last().map(String::as_str),
        Some("BYE"),
        "{methods:?}"
    );
    alice.shutdown().await;
}

/// Late offer (RFC 3264 §5 in RFC 3261 §13.2.1): the INVITE carries no SDP, the callee offers in
/// its 200 and the caller answers in the ACK; media then flows both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_offer_is_answered_in_the_ack() {
    let alice = Phone::start(config("alice", true)).await.unwrap();
    let mut bob = Phone::start(config("bob", true)).await.unwrap();
    let bob_addr = bob.local_address().unwrap();
    let options = CallOptions {
        source: Box::new(ToneSource::new(440.0, -12.0)),
        late_offer: true,
        ..CallOptions::default()
    };
    let mut caller = alice
        .call(&format!("sip:bob@{bob_addr}"), options)
        .await
        .unwrap();
    let incoming = tokio::time::timeout(Duration::from_secs(5), bob.next_incoming())
        .await
        .unwrap()
        .unwrap();
    let mut callee = incoming.accept(
        Box::new(ToneSource::new(660.0, -12.0)),
        Box::new(NullSink::new()),
    );
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
    caller.hangup();
    wait_for(&mut callee, "end", |e| matches!(e, CallEvent::Ended { .. })).await;
    alice.shutdown().await;
    bob.shutdown().await;
}

/// BYE glare: both sides hang up at the same moment, so each BYE crosses the other's. Both
/// calls end at once (`local_hangup`; the callee `remote_hangup` when its ACK was still on its
/// way), each BYE gets its answer (200, or 481 for a dialog the
/// other side already ended) instead of waiting out Timer F, and both phones shut down well
/// within their grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_sides_hang_up_at_once() {
    for round in 0..5 {
        let (alice, bob, mut caller, mut callee) = connect(true).await;
        caller.hangup();
        callee.hangup();
        for (call, who) in [(&mut caller, "caller"), (&mut callee, "callee")] {
            let ev = wait_for(call, "end", |e| matches!(e, CallEvent::Ended { .. })).await;
            // The callee may hang up before the caller's ACK reached it: it must then wait for
            // the ACK before its BYE (RFC 3261 §15), and the caller's BYE ends its call first.
            let ok = |reason: &str| {
                reason == "local_hangup" || who == "callee" && reason == "remote_hangup"
            };
            assert!(
                matches!(&ev, CallEvent::Ended { reason, answered: true, .. } if ok(reason)),
                "round {round}, {who}: {ev:?}"
            );
        }
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(10), async {
            alice.shutdown().await;
            bob.shutdown().await;
        })
        .await
        .unwrap_or_else(|_| panic!("round {round}: the phones did not shut down"));
        // Each BYE was answered: no transaction was left for the shutdown to wait out (its
        // grace is 4 s; Timer F would be 32 s).
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "round {round}: shutdown took {:?}",
            started.elapsed()
        );
    }
}
