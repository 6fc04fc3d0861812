//! Session timers (RFC 4028) and UPDATE (RFC 3311) in the phone core, in virtual time on the
//! seeded Sim network: a call is refreshed by UPDATE every half interval and ends
//! `session_expired` at the callee when the refreshes stop; a 422 to the INVITE is retried
//! with the callee's Min-SE; an UPDATE with an offer moves the media to the peer's new RTP
//! address.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use phone_sim::{NetConfig, Sim};
use tincan::phone::{CallEvent, CallId, CallParams, EndReason, MediaCommand, PhoneConfig};
use tincan_sip::dialog::SessionTimerConfig;
use tincan_sip::message::{HeaderName, Message};

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn phone(sim: &mut Sim, addr: &str, user: &str, interval: u32, min_se: u32) -> usize {
    let config = PhoneConfig {
        user: user.to_owned(),
        session_timer: Some(SessionTimerConfig { interval, min_se }),
        ..PhoneConfig::default()
    };
    sim.add_phone_with(addr, config)
}

/// Alice calls Bob, who answers: (Alice's call, Bob's call).
fn connect(sim: &mut Sim, alice: usize, bob: usize) -> (CallId, CallId) {
    let a = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
        })
        .expect("a callable uri");
    let limit = sim.elapsed() + secs(2.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(1.0));
    assert!(sim.answered(alice, a) && sim.answered(bob, b));
    (a, b)
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
fn refreshed_by_update_then_ended_when_the_refreshes_stop() {
    let mut sim = Sim::new(7, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", 90, 90);
    let bob = phone(&mut sim, BOB, "bob", 1800, 90);
    let (a, b) = connect(&mut sim, alice, bob);
    let invite = &messages(&sim, alice, "INVITE")[0].1;
    assert_eq!(invite.header(HeaderName::SessionExpires), Some("90"));
    let ok = &messages(&sim, bob, "SIP/2.0 200")[0].1;
    assert_eq!(
        ok.header(HeaderName::SessionExpires),
        Some("90;refresher=uac")
    );

    sim.run_until(secs(140.0));
    let updates: Vec<Duration> = messages(&sim, alice, "UPDATE")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(updates.len(), 3, "{updates:?}");
    for (i, t) in updates.iter().enumerate() {
        // Every 45 s (plus the round trips).
        let due = 45.0 * (i + 1) as f64;
        assert!((due..due + 1.0).contains(&t.as_secs_f64()), "{updates:?}");
    }
    assert_eq!(messages(&sim, bob, "SIP/2.0 200").len(), 4);
    assert!(sim.ended(alice, a).is_none() && sim.ended(bob, b).is_none());

    // Alice drops off the network: Bob hangs up 60 s (90 - min(32, 30)) after her last
    // refresh, and says why.
    let last = updates[2];
    sim.nodes[alice].online = false;
    sim.run_until(secs(260.0));
    let (at, reason) = sim.ended(bob, b).expect("bob's call ended");
    assert_eq!(reason, EndReason::SessionExpired);
    let expected = last + secs(60.0);
    assert!(
        at >= expected && at < expected + secs(0.5),
        "ended at {at:?}, last refresh {last:?}"
    );
    assert_eq!(EndReason::SessionExpired.as_str(), "session_expired");
    // The BYE goes then (and is retransmitted into the void).
    assert_eq!(messages(&sim, bob, "BYE")[0].0, at);
}

#[test]
fn a_422_to_the_invite_is_retried_with_the_larger_interval() {
    let mut sim = Sim::new(8, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", 90, 90);
    let bob = phone(&mut sim, BOB, "bob", 1800, 300);
    let (a, _b) = connect(&mut sim, alice, bob);
    let r422 = messages(&sim, bob, "SIP/2.0 422");
    assert_eq!(r422.len(), 1);
    assert_eq!(r422[0].1.header(HeaderName::MinSe), Some("300"));
    let invites = messages(&sim, alice, "INVITE");
    assert_eq!(invites.len(), 2);
    assert_eq!(invites[1].1.header(HeaderName::SessionExpires), Some("300"));
    // One call, one Calling event: the retry is the same INVITE's.
    let calling = sim
        .call_events(alice)
        .into_iter()
        .filter(|(_, c, e)| *c == a && matches!(e, CallEvent::Calling { .. }))
        .count();
    assert_eq!(calling, 1);
}

#[test]
fn an_update_with_an_offer_moves_the_media_to_the_peers_new_address() {
    let mut sim = Sim::new(9, NetConfig::perfect());
    let alice = phone(&mut sim, ALICE, "alice", 1800, 90);
    let bob = phone(&mut sim, BOB, "bob", 1800, 90);
    let (a, b) = connect(&mut sim, alice, bob);

    // Bob's side of the dialog, written by hand: an UPDATE offering RTP on a new port.
    let invite = &messages(&sim, alice, "INVITE")[0].1;
    let ok = &messages(&sim, bob, "SIP/2.0 200")[0].1;
    let contact = invite.header(HeaderName::Contact).unwrap();
    let target = contact.trim_start_matches('<').trim_end_matches('>');
    let sdp = "v=0\r\no=bob 7 9 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 41234 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
               a=sendrecv\r\n";
    let update = format!(
        "UPDATE {target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {BOB};branch=z9hG4bK-update-1\r\n\
         Max-Forwards: 70\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 20 UPDATE\r\n\
         Contact: <sip:bob@{BOB}>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        ok.header(HeaderName::To).unwrap(),
        invite.header(HeaderName::From).unwrap(),
        invite.header(HeaderName::CallId).unwrap(),
        sdp.len()
    );
    let before = sim.phone(alice).media.len();
    let to: SocketAddr = ALICE.parse().unwrap();
    sim.inject(bob, to, Bytes::from(update));
    sim.run_for(secs(1.0));

    let answered = messages(&sim, alice, "SIP/2.0 200")
        .into_iter()
        .find(|(_, m)| m.header(HeaderName::CSeq) == Some("20 UPDATE"))
        .expect("the UPDATE's 200");
    assert!(!answered.1.body().is_empty(), "the 200 carries our answer");
    let moved: SocketAddr = "127.0.0.1:41234".parse().unwrap();
    let new_remote = sim.phone(alice).media[before..].iter().any(|(_, m)| {
        match m {
            MediaCommand::SetRemote { call, rtp, .. } => *call == a && *rtp == moved,
            // Our answer may also change the codec (the peer's offer has fewer).
            MediaCommand::Reconfigure { call, config } => *call == a && config.remote_rtp == moved,
            _ => false,
        }
    });
    assert!(new_remote, "{:?}", &sim.phone(alice).media[before..]);
    assert!(sim.ended(alice, a).is_none() && sim.ended(bob, b).is_none());
}
