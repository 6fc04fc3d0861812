//! Forking (RFC 3261 §13.2.2.4, RFC 6026): one INVITE reaches several phones. Every
//! provisional with a new To tag is an early dialog; the first 2xx wins and is reported once;
//! a 2xx from any other fork is ACKed and its dialog ended with a BYE, whether it comes while
//! the INVITE transaction lives (Accepted) or after (a stray 2xx).

mod util;

use bytes::Bytes;
use tincan_sip::dialog::{EndReason, InviteSession, Output, SessionEvent, SessionState};
use tincan_sip::endpoint::EndpointConfig;
use tincan_sip::message::{HeaderName, Message, Method, Uri, response_to};
use tincan_sip::transport::Transport;
use util::ua::{OnInvite, Phone, header, run, sdp, secs, sent};
use util::{NetConfig, Sim};

/// A fork's response to the INVITE: its To tag and Contact, and an SDP body for a 2xx.
fn fork_response(invite: &Message, status: u16, fork: &str) -> Message {
    let mut r = response_to(invite, status, None);
    r.set_to_tag(fork);
    r.push_header(
        HeaderName::Contact,
        &format!("<sip:bob@{fork}.example.com>"),
    );
    if status == 200 {
        let body = sdp(fork, 1, "sendrecv");
        r.set_body(Some("application/sdp"), body.clone());
        r.set_header(HeaderName::ContentLength, &body.len().to_string());
    }
    r
}

fn outputs(s: &mut InviteSession) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

fn events(s: &mut InviteSession) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

#[test]
fn first_2xx_wins_at_session_level() {
    let mut sim = Sim::new(1, NetConfig::perfect());
    sim.add_node("127.0.0.1:5060", Transport::Udp, EndpointConfig::default());
    let now = sim.now;
    let mut phone = Phone::new(&sim, 0, "alice");
    let config = phone.config();
    let uri = Uri::parse("sip:bob@example.com").unwrap().into_owned();
    let to = tincan_sip::message::typed::NameAddr::new(uri.clone());
    let mut s = InviteSession::outgoing(config, uri, to, &[], Some(sdp("alice", 1, "sendrecv")));
    let Some(Output::Request {
        request: invite, ..
    }) = s.poll_output()
    else {
        panic!("the INVITE first");
    };

    for fork in ["fa", "fb"] {
        s.on_response(now, &fork_response(&invite, 180, fork));
    }
    assert_eq!(s.state(), SessionState::Early);
    let progress = events(&mut s);
    assert_eq!(progress.len(), 2);
    assert!(
        progress
            .iter()
            .all(|e| matches!(e, SessionEvent::Progress { status: 180, .. }))
    );
    // Both early dialogs match their forks' in-dialog requests.
    assert!(outputs(&mut s).is_empty());

    // Fork A answers first: it wins.
    s.on_response(now, &fork_response(&invite, 200, "fa"));
    assert_eq!(s.state(), SessionState::Confirmed);
    assert_eq!(s.dialog_id().unwrap().remote_tag, "fa");
    let ev = events(&mut s);
    assert!(
        matches!(&ev[..], [SessionEvent::Answered { body: Some(b), offer: false }] if b.starts_with(b"v=0")),
        "{ev:?}"
    );
    let out = outputs(&mut s);
    let [Output::Ack { ack, next_hop }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(next_hop.to_string(), "sip:bob@fa.example.com");
    assert!(ack.to().unwrap().unwrap().tag() == Some("fa"));

    // Fork B's 2xx: ACK and BYE on B's dialog, no second answer.
    s.on_response(now, &fork_response(&invite, 200, "fb"));
    assert!(events(&mut s).is_empty(), "answered once");
    let out = outputs(&mut s);
    let [
        Output::Ack {
            ack,
            next_hop: ack_hop,
        },
        Output::Request {
            request: bye,
            next_hop,
        },
    ] = &out[..]
    else {
        panic!("{out:?}")
    };
    assert_eq!(ack_hop.to_string(), "sip:bob@fb.example.com");
    assert_eq!(next_hop.to_string(), "sip:bob@fb.example.com");
    assert_eq!(ack.to().unwrap().unwrap().tag(), Some("fb"));
    assert_eq!(ack.cseq().unwrap().unwrap().seq, 1);
    assert_eq!(bye.method(), Some(&Method::Bye));
    assert_eq!(bye.to().unwrap().unwrap().tag(), Some("fb"));
    assert_eq!(bye.uri().unwrap().to_string(), "sip:bob@fb.example.com");
    // Fork B answers its BYE 200: that ends fork B's dialog, not the call.
    let mut bye_ok = response_to(bye, 200, None);
    bye_ok.set_header(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbye");
    s.on_response(now, &bye_ok);
    assert!(events(&mut s).is_empty());
    // The winner's call goes on.
    assert_eq!(s.state(), SessionState::Confirmed);
    assert_eq!(s.dialog_id().unwrap().remote_tag, "fa");

    // Fork A's 2xx again (our ACK was lost): the same ACK again, nothing else.
    s.on_response(now, &fork_response(&invite, 200, "fa"));
    assert!(events(&mut s).is_empty());
    let out = outputs(&mut s);
    let [Output::Ack { ack: again, .. }] = &out[..] else {
        panic!("{out:?}")
    };
    assert_eq!(again.to_string(), ack_to_string(&out, 0));
    // A late 180 from a fork changes nothing.
    s.on_response(now, &fork_response(&invite, 180, "fc"));
    assert_eq!(s.state(), SessionState::Confirmed);
}

fn ack_to_string(out: &[Output], i: usize) -> String {
    match &out[i] {
        Output::Ack { ack, .. } => ack.to_string(),
        o => panic!("{o:?}"),
    }
}

/// Alice (node 0) calls Bob; the INVITE also reaches nodes 2 and 3 as if a proxy forked it:
/// the test copies Alice's INVITE to them (same branch, responses go back by its Via).
#[test]
fn forked_invite_over_the_network() {
    let mut sim = Sim::new(4, NetConfig::perfect());
    let config = EndpointConfig::default();
    for addr in [
        "127.0.0.1:5060",
        "127.0.0.1:5070",
        "127.0.0.1:5080",
        "127.0.0.1:5090",
    ] {
        sim.add_node(addr, Transport::Udp, config.clone());
    }
    let mut phones = vec![
        Phone::new(&sim, 0, "alice"),
        Phone::new(&sim, 1, "bob"),
        Phone::new(&sim, 2, "bob2"),
        Phone::new(&sim, 3, "bob3"),
    ];
    for p in &mut phones[1..] {
        p.on_invite = OnInvite::Ring;
    }
    let a = phones[0].dial(&mut sim, 1, "bob", Some(sdp("alice", 1, "sendrecv")));
    sim.drain();
    let invite: Bytes = sim.nodes[0].wire[0].2.clone();
    assert!(invite.starts_with(b"INVITE "));
    sim.inject(0, 2, invite.clone());
    sim.inject(0, 3, invite);
    run(&mut sim, &mut phones, secs(1.0));
    assert_eq!(phones[0].session(a).state(), SessionState::Early);
    let progress = phones[0]
        .events_of(a)
        .into_iter()
        .filter(|(t, e)| *t == 0.02 && matches!(e, SessionEvent::Progress { status: 180, .. }))
        .count();
    assert_eq!(progress, 3, "a 180 from every fork");

    // Bob answers at 1 s, Bob2 at 1.5 s (the INVITE transaction is in Accepted, RFC 6026),
    // Bob3 at 40 s, after Timer M (33.01 s) ended it: a stray 2xx.
    phones[1].act(&mut sim, 0, |s| s.accept(Some(sdp("bob", 1, "sendrecv"))));
    run(&mut sim, &mut phones, secs(1.5));
    phones[2].act(&mut sim, 0, |s| s.accept(Some(sdp("bob2", 1, "sendrecv"))));
    run(&mut sim, &mut phones, secs(40.0));
    assert_eq!(sim.nodes[0].ep.transaction_count(), 0, "Timer M ran");
    phones[3].act(&mut sim, 0, |s| s.accept(Some(sdp("bob3", 1, "sendrecv"))));
    run(&mut sim, &mut phones, secs(45.0));

    // Alice: answered once, by Bob; her call is up with Bob.
    let answered: Vec<f64> = phones[0]
        .events_of(a)
        .into_iter()
        .filter(|(_, e)| matches!(e, SessionEvent::Answered { .. }))
        .map(|(t, _)| t)
        .collect();
    assert_eq!(answered, [1.01]);
    assert_eq!(
        phones[0].session(a).state(),
        SessionState::Confirmed,
        "{:?}\n{:#?}",
        phones[0].events,
        sim.trace
    );
    assert_eq!(
        phones[0].session(a).dialog_id().unwrap().remote_tag,
        "bob-1"
    );
    assert!(phones[0].ends(a).is_empty());

    // On the wire: an ACK to each 2xx, a BYE to each losing fork, each to that fork's node.
    let acks: Vec<(f64, Option<usize>)> = sim.nodes[0]
        .wire
        .iter()
        .filter(|(_, _, b)| b.starts_with(b"ACK "))
        .map(|(t, to, _)| (t.as_secs_f64(), *to))
        .collect();
    assert_eq!(acks, [(1.01, Some(1)), (1.51, Some(2)), (40.01, Some(3))]);
    let byes: Vec<(f64, Option<usize>)> = sim.nodes[0]
        .wire
        .iter()
        .filter(|(_, _, b)| b.starts_with(b"BYE "))
        .map(|(t, to, _)| (t.as_secs_f64(), *to))
        .collect();
    assert_eq!(byes, [(1.51, Some(2)), (40.01, Some(3))]);
    for (_, bye) in sent(&sim, 0, "BYE") {
        assert_eq!(header(&bye, "CSeq"), Some("2 BYE"));
    }

    // Bob's call is up; Bob2's and Bob3's were confirmed by the ACK and ended by the BYE.
    assert_eq!(phones[1].session(0).state(), SessionState::Confirmed);
    assert!(phones[1].ends(0).is_empty());
    assert_eq!(phones[2].ends(0), [(1.52, EndReason::RemoteHangup)]);
    assert_eq!(phones[3].ends(0), [(40.02, EndReason::RemoteHangup)]);
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}
