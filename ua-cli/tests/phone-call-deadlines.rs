//! Every call ends even when the peer vanishes without a word (issue 19, finding 3), in
//! virtual time: a held call (held by us or by the peer) whose media session reports neither
//! RTP nor RTCP for the hold timeout is hung up (`media_timeout`), and a call whose ACK never comes ends at Timer H
//! (`ack_timeout`, RFC 3261 §13.3.1.4).

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, Sim};
use tincan::phone::{CallEvent, CallId, CallParams, CallWarning, EndReason};
use tincan_media::session::MediaEvent;

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// Alice calls Bob and Bob answers: (alice's call, bob's call).
fn answered_call(sim: &mut Sim, alice: usize, bob: usize) -> (CallId, CallId) {
    let a = sim
        .act(alice, |c, now| {
            c.call(now, &format!("sip:bob@{BOB}"), CallParams::default())
        })
        .expect("a callable uri");
    let limit = sim.elapsed() + secs(1.0);
    assert!(sim.run_until_with(limit, |s| !s.incoming(bob).is_empty()));
    let b = sim.incoming(bob)[0];
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    (a, b)
}

/// Alice holds the call; Bob vanishes (its BYE, if any, is lost). Alice's media reports the
/// hold timeout (no RTP, no RTCP): the call is hung up as `media_timeout`, with a warning.
/// The phone core ignored every media timeout while held, so such a call lasted forever.
#[test]
fn a_held_call_whose_peer_vanished_ends_as_media_timeout() {
    let mut sim = Sim::new(3, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let (a, _) = answered_call(&mut sim, alice, bob);
    sim.run_for(secs(1.0));
    assert!(sim.answered(alice, a));
    sim.act(alice, |c, now| c.hold(now, a)).expect("hold");
    sim.run_for(secs(1.0));
    sim.nodes[bob].online = false;
    sim.run_for(secs(300.0));
    let timeout = MediaEvent::Timeout {
        silent_for: secs(300.0),
        hold_timeout: true,
    };
    sim.act(alice, |c, now| c.handle_media_event(now, a, timeout));
    sim.run_for(secs(40.0));
    let warned = sim.call_events(alice).into_iter().any(|(_, c, e)| {
        c == a
            && matches!(
                e,
                CallEvent::Warning(CallWarning::NoMedia { rtcp_too: true, .. })
            )
    });
    assert!(warned, "{:?}", sim.call_events(alice));
    assert_eq!(
        sim.ended(alice, a).map(|e| e.1),
        Some(EndReason::MediaTimeout)
    );
    let byes = sim.sent(alice, "BYE");
    assert!(!byes.is_empty(), "alice sent a BYE");
}

/// Bob holds the call and vanishes: Alice's RTP timeout (no audio while held by the peer) is
/// only a warning; the hold timeout after it (neither RTP nor RTCP) ends the call.
#[test]
fn a_call_held_by_a_peer_that_vanished_ends_at_the_hold_timeout() {
    let mut sim = Sim::new(5, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let (a, b) = answered_call(&mut sim, alice, bob);
    sim.run_for(secs(1.0));
    sim.act(bob, |c, now| c.hold(now, b)).expect("hold");
    sim.run_for(secs(1.0));
    sim.nodes[bob].online = false;
    sim.run_for(secs(30.0));
    let rtp_timeout = MediaEvent::Timeout {
        silent_for: secs(30.0),
        hold_timeout: false,
    };
    sim.act(alice, |c, now| c.handle_media_event(now, a, rtp_timeout));
    sim.run_for(secs(270.0));
    assert_eq!(
        sim.ended(alice, a),
        None,
        "held by the peer: no audio is expected"
    );
    let hold_timeout = MediaEvent::Timeout {
        silent_for: secs(300.0),
        hold_timeout: true,
    };
    sim.act(alice, |c, now| c.handle_media_event(now, a, hold_timeout));
    sim.run_for(secs(40.0));
    assert_eq!(
        sim.ended(alice, a).map(|e| e.1),
        Some(EndReason::MediaTimeout)
    );
}

/// Bob answers but Alice vanishes at once: the 200 is never acknowledged. Bob retransmits it
/// (Timer G) and gives up at Timer H, 64*T1 = 32 s: the call ends `ack_timeout`.
#[test]
fn a_call_whose_ack_never_comes_ends_at_timer_h() {
    let mut sim = Sim::new(4, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let (_, b) = answered_call(&mut sim, alice, bob);
    let answered_at = sim.elapsed();
    sim.nodes[alice].online = false;
    sim.run_for(secs(60.0));
    let (at, reason) = sim.ended(bob, b).expect("bob's call ended");
    assert_eq!(reason, EndReason::AckTimeout);
    let after = at - answered_at;
    assert!(after >= secs(32.0) && after < secs(33.0), "{after:?}");
    assert_eq!(sim.core(bob).calls().count(), 0);
}
