//! Reliable provisional responses (RFC 3262) in the phone core, in virtual time on the seeded
//! Sim network: a caller configured with `prack = "required"` sends `Require: 100rel`; the
//! callee's phone rings with a reliable 180 (RSeq, `Require: 100rel`) instead of refusing
//! with 420, the caller PRACKs it once, and the call connects when the callee answers late;
//! on a lossy network the calls still connect. A peer's reliable 183 with SDP is PRACKed and
//! starts early media, unless its `P-Early-Media` (RFC 5009) says `inactive`.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use phone_sim::{NetConfig, Sim};
use tincan::phone::{CallEvent, CallParams, MediaCommand, PhoneConfig};
use tincan_sip::dialog::PrackPolicy;
use tincan_sip::message::{HeaderName, Message, response_to};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn phone(sim: &mut Sim, addr: &str, user: &str, prack: PrackPolicy) -> usize {
    let config = PhoneConfig {
        user: user.to_owned(),
        prack,
        ..PhoneConfig::default()
    };
    sim.add_phone_with(addr, config)
}

/// The whole messages a node sent whose first line starts with `prefix`.
fn messages(sim: &Sim, node: usize, prefix: &str) -> Vec<(Duration, Message)> {
    sim.nodes[node]
        .sent_messages
        .iter()
        .filter(|(_, _, b)| b.starts_with(prefix.as_bytes()))
        .map(|(t, _, b)| {
            (
                *t,
                Message::parse(b.clone()).expect("our own messages parse"),
            )
        })
        .collect()
}

#[test]
fn a_caller_requiring_100rel_gets_a_reliable_180_and_the_late_answer_connects() {
    let mut sim = Sim::new(3, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", PrackPolicy::Required);
    let bob = phone(&mut sim, BOB, "bob", PrackPolicy::Supported);
    let a = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
        })
        .expect("a callable uri");
    let limit = sim.elapsed() + secs(2.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()));
    let invite = &messages(&sim, alice, "INVITE")[0].1;
    assert_eq!(invite.header(HeaderName::Require), Some("100rel"));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.ring(now, b)).expect("ringing");
    sim.run_for(secs(3.0));

    assert!(messages(&sim, bob, "SIP/2.0 420").is_empty());
    let ringing = messages(&sim, bob, "SIP/2.0 180");
    assert_eq!(ringing.len(), 1, "PRACKed before any copy");
    assert_eq!(ringing[0].1.header(HeaderName::Require), Some("100rel"));
    let rseq = ringing[0].1.header(HeaderName::RSeq).expect("an RSeq");
    let pracks = messages(&sim, alice, "PRACK");
    assert_eq!(pracks.len(), 1);
    assert_eq!(
        pracks[0].1.header(HeaderName::RAck),
        Some(format!("{rseq} 1 INVITE").as_str())
    );
    assert!(
        sim.call_events(alice)
            .iter()
            .any(|(_, c, e)| *c == a && matches!(e, CallEvent::Progress { status: 180, .. }))
    );

    // Answered three seconds later: the call comes up.
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(2.0));
    assert!(sim.answered(alice, a) && sim.answered(bob, b));
    assert_eq!(messages(&sim, bob, "SIP/2.0 180").len(), 1);
}

#[test]
fn reliable_ringing_connects_over_a_lossy_network() {
    let mut connected = 0;
    for seed in 0..8 {
        let mut sim = Sim::new(40 + seed, NetConfig::lossy(0.2));
        let alice = phone(&mut sim, ALICE, "alice", PrackPolicy::Required);
        let bob = phone(&mut sim, BOB, "bob", PrackPolicy::Required);
        let a = sim
            .act(alice, |c, now| {
                c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
            })
            .expect("a callable uri");
        let limit = sim.elapsed() + secs(20.0);
        if !sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()) {
            continue;
        }
        let b = sim.incoming(bob)[0];
        sim.act(bob, |c, now| c.ring(now, b)).expect("ringing");
        sim.run_for(secs(2.0));
        let _ = sim.act(bob, |c, now| c.accept(now, b));
        sim.run_for(secs(40.0));
        if sim.answered(alice, a) && sim.answered(bob, b) {
            connected += 1;
        } else {
            // Every copy of something lost for 32 s: both sides must have ended cleanly.
            assert!(
                sim.ended(bob, b).is_some(),
                "seed {seed}: {:?}",
                sim.call_events(bob)
            );
        }
    }
    assert!(connected >= 6, "{connected} of 8 calls connected");
}

/// Alice calls Bob's address; a hand-made reliable 183 with SDP (and `p_early_media`, if
/// any) comes back from there. Returns the simulation, Alice's node and whether her phone
/// started early media.
fn reliable_183(p_early_media: Option<&str>) -> (Sim, usize, bool) {
    let mut sim = Sim::new(9, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", PrackPolicy::Supported);
    let bob = phone(&mut sim, BOB, "bob", PrackPolicy::Supported);
    let a = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
        })
        .expect("a callable uri");
    let limit = sim.elapsed() + secs(2.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()));
    let invite = messages(&sim, alice, "INVITE")[0].1.clone();
    let mut r = response_to(&invite, 183, None);
    r.set_to_tag("early1");
    r.push_header(HeaderName::Contact, &format!("<sip:bob@{BOB}>"));
    r.push_header(HeaderName::Require, "100rel");
    r.push_header(HeaderName::RSeq, "7");
    if let Some(v) = p_early_media {
        r.push_header_named("P-Early-Media", v);
    }
    r.set_body(
        Some("application/sdp"),
        Bytes::from_static(
            b"v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
              m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ),
    );
    let to = ALICE.parse().expect("an address");
    sim.inject(bob, to, r.to_bytes());
    sim.run_for(secs(1.0));

    let pracks = messages(&sim, alice, "PRACK");
    assert_eq!(pracks.len(), 1);
    let cseq = invite.cseq().and_then(Result::ok).expect("a CSeq").seq;
    assert_eq!(
        pracks[0].1.header(HeaderName::RAck),
        Some(format!("7 {cseq} INVITE").as_str())
    );
    assert!(
        sim.call_events(alice)
            .iter()
            .any(|(_, c, e)| *c == a && matches!(e, CallEvent::Progress { status: 183, .. }))
    );
    let started = sim
        .phone(alice)
        .media
        .iter()
        .any(|(_, m)| matches!(m, MediaCommand::Start { call, .. } if *call == a));
    (sim, alice, started)
}

#[test]
fn a_reliable_183_with_sdp_is_pracked_and_starts_early_media() {
    let (_, _, started) = reliable_183(None);
    assert!(started);
    let (_, _, started) = reliable_183(Some("sendrecv"));
    assert!(started);
}

#[test]
fn p_early_media_inactive_keeps_the_local_ringback() {
    let (_, _, started) = reliable_183(Some("inactive"));
    assert!(!started);
    let (_, _, started) = reliable_183(Some("gated, recvonly"));
    assert!(!started);
}

/// A PCMU SDP at 127.0.0.1:`port`.
fn pcmu_at(owner: &str, port: u16) -> String {
    format!(
        "v=0\r\no={owner} 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// Whether the phone `node` started or moved the media of `call` to `rtp`.
fn media_at(sim: &Sim, node: usize, call: tincan::phone::CallId, rtp: SocketAddr) -> bool {
    sim.phone(node).media.iter().any(|(_, m)| match m {
        MediaCommand::Start { call: c, config } | MediaCommand::Reconfigure { call: c, config } => {
            *c == call && config.remote_rtp == rtp
        }
        MediaCommand::SetRemote {
            call: c, rtp: r, ..
        } => *c == call && *r == rtp,
        _ => false,
    })
}

/// Alice calls Bob with an INVITE without SDP (a late offer); returns once Bob has it.
fn call_with_a_late_offer(sim: &mut Sim, alice: usize, bob: usize) -> tincan::phone::CallId {
    let params = CallParams {
        late_offer: true,
        ..CallParams::default()
    };
    let a = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), params)
        })
        .expect("a callable uri");
    let limit = sim.elapsed() + secs(2.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()));
    a
}

#[test]
fn a_late_offer_in_a_reliable_183_is_answered_in_the_prack_and_the_media_follows_it() {
    let mut sim = Sim::new(11, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", PrackPolicy::Supported);
    let bob = phone(&mut sim, BOB, "bob", PrackPolicy::Supported);
    let a = call_with_a_late_offer(&mut sim, alice, bob);
    let invite = messages(&sim, alice, "INVITE")[0].1.clone();
    assert!(invite.body().is_empty(), "a late offer");

    // The callee's reliable 183 carries the offer (RFC 3262 §5).
    let offer = pcmu_at("bob", 40002);
    let mut r = response_to(&invite, 183, None);
    r.set_to_tag("early1");
    r.push_header(HeaderName::Contact, &format!("<sip:bob@{BOB}>"));
    r.push_header(HeaderName::Require, "100rel");
    r.push_header(HeaderName::RSeq, "7");
    r.set_body(Some("application/sdp"), Bytes::from(offer.clone()));
    let to: SocketAddr = ALICE.parse().expect("an address");
    sim.inject(bob, to, r.to_bytes());
    sim.run_for(secs(1.0));

    let pracks = messages(&sim, alice, "PRACK");
    assert_eq!(pracks.len(), 1);
    let answer = std::str::from_utf8(pracks[0].1.body()).expect("text");
    assert!(answer.contains("m=audio "), "the PRACK answers: {answer:?}");
    assert!(answer.contains("RTP/AVP 0"), "{answer}");
    let peer: SocketAddr = "127.0.0.1:40002".parse().expect("an address");
    assert!(
        media_at(&sim, alice, a, peer),
        "{:?}",
        sim.phone(alice).media
    );

    // The 200 repeats the 183's SDP: acknowledged without SDP, the media stays.
    let media_before = sim.phone(alice).media.len();
    let mut ok = response_to(&invite, 200, None);
    ok.set_to_tag("early1");
    ok.push_header(HeaderName::Contact, &format!("<sip:bob@{BOB}>"));
    ok.set_body(Some("application/sdp"), Bytes::from(offer));
    sim.inject(bob, to, ok.to_bytes());
    sim.run_for(secs(1.0));
    let acks = messages(&sim, alice, "ACK");
    assert_eq!(acks.len(), 1);
    assert!(acks[0].1.body().is_empty(), "no answer in the ACK");
    assert!(
        sim.phone(alice).media[media_before..]
            .iter()
            .all(|(_, m)| !matches!(
                m,
                MediaCommand::Start { .. } | MediaCommand::Reconfigure { .. }
            )),
        "{:?}",
        &sim.phone(alice).media[media_before..]
    );
    assert!(sim.answered(alice, a) && sim.ended(alice, a).is_none());
}

#[test]
fn an_offer_in_a_prack_is_answered_in_its_200_and_the_media_moves() {
    let mut sim = Sim::new(12, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", PrackPolicy::Required);
    let bob = phone(&mut sim, BOB, "bob", PrackPolicy::Supported);
    let a = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
        })
        .expect("a callable uri");
    let limit = sim.elapsed() + secs(2.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.ring(now, b)).expect("ringing");
    sim.run_for(secs(1.0));
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(2.0));
    assert!(sim.answered(alice, a) && sim.answered(bob, b));

    // The offer/answer of the INVITE is done (Bob's 200): a PRACK of his reliable 180 may
    // offer anew (RFC 3262 §5): Alice's PRACK again, with the next CSeq and an offer.
    let prack = messages(&sim, alice, "PRACK")[0].1.clone();
    let offer = pcmu_at("alice", 41002);
    let text = format!(
        "PRACK {} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {ALICE};branch=z9hG4bK-prack-offer\r\n\
         Max-Forwards: 70\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 20 PRACK\r\nRAck: {}\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        prack.uri().expect("a request"),
        prack.header(HeaderName::From).expect("From"),
        prack.header(HeaderName::To).expect("To"),
        prack.header(HeaderName::CallId).expect("Call-ID"),
        prack.header(HeaderName::RAck).expect("RAck"),
        offer.len()
    );
    let to: SocketAddr = BOB.parse().expect("an address");
    sim.inject(alice, to, Bytes::from(text));
    sim.run_for(secs(1.0));

    let answered = messages(&sim, bob, "SIP/2.0 200")
        .into_iter()
        .find(|(_, m)| m.header(HeaderName::CSeq) == Some("20 PRACK"))
        .expect("the PRACK's 200");
    assert!(!answered.1.body().is_empty(), "the 200 carries our answer");
    let moved: SocketAddr = "127.0.0.1:41002".parse().expect("an address");
    assert!(media_at(&sim, bob, b, moved), "{:?}", sim.phone(bob).media);
    assert!(sim.ended(alice, a).is_none() && sim.ended(bob, b).is_none());
}

#[test]
fn a_late_offer_requiring_100rel_gets_our_offer_in_the_200_and_the_answer_in_the_ack() {
    let mut sim = Sim::new(13, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", PrackPolicy::Required);
    let bob = phone(&mut sim, BOB, "bob", PrackPolicy::Supported);
    let a = call_with_a_late_offer(&mut sim, alice, bob);
    let b = sim.incoming(bob)[0];
    // RFC 3262 §5: a reliable 18x to an INVITE without SDP must offer; the phone rings
    // without SDP, so it sends none and offers in its 200 instead.
    sim.act(bob, |c, now| c.ring(now, b)).expect("ringing");
    sim.run_for(secs(1.0));
    assert!(messages(&sim, bob, "SIP/2.0 18").is_empty());
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(2.0));

    let ok = &messages(&sim, bob, "SIP/2.0 200")[0].1;
    assert!(!ok.body().is_empty(), "the 200 offers");
    let acks = messages(&sim, alice, "ACK");
    assert_eq!(acks.len(), 1);
    assert!(!acks[0].1.body().is_empty(), "the ACK answers");
    assert!(sim.answered(alice, a) && sim.answered(bob, b));
    let started = |node| {
        sim.phone(node)
            .media
            .iter()
            .any(|(_, m)| matches!(m, MediaCommand::Start { .. }))
    };
    assert!(started(alice) && started(bob));
}
