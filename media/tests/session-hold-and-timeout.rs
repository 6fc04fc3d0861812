//! Hold (RFC 3264 §8.4 directions) and the RTP timeout: a sendonly side stops playing, a
//! recvonly side stops sending; silence from the peer while receiving raises a timeout after
//! the configured time (virtual time), once; resuming media clears it. An RTCP BYE is
//! reported to the other side.
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::session::{Direction, MediaEvent, MediaSession, SessionConfig};
use util::{Impairment, Network, Pair, addr, rms};

fn pair() -> Pair {
    let t0 = Instant::now();
    let (a_addr, b_addr) = (addr("127.0.0.1:4000"), addr("127.0.0.1:5000"));
    let mut ca = SessionConfig::new(0xA, CodecKind::Pcmu, 0, b_addr);
    ca.rtp_timeout = Duration::from_secs(5);
    let mut cb = SessionConfig::new(0xB, CodecKind::Pcmu, 0, a_addr);
    cb.rtp_timeout = Duration::from_secs(5);
    let a = MediaSession::new(ca, t0).unwrap();
    let b = MediaSession::new(cb, t0).unwrap();
    Pair::new(
        t0,
        a,
        b,
        a_addr,
        b_addr,
        Network::new(2, Impairment::clean(Duration::from_millis(5))),
    )
}

fn timeouts(events: &[MediaEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, MediaEvent::Timeout { .. }))
        .count()
}

#[test]
fn hold_stops_sending_and_times_out_the_other_side() {
    let mut p = pair();
    p.run(1000);
    // A puts B on hold: A sendonly (music on hold), B recvonly.
    p.a.set_direction(Direction::SendOnly);
    p.b.set_direction(Direction::RecvOnly);
    p.played_a.clear();
    let sent_by_b = p.b.stats().packets_sent;
    p.run(8000);
    assert_eq!(p.b.stats().packets_sent, sent_by_b, "recvonly sends no rtp");
    assert_eq!(rms(&p.played_a), 0.0, "sendonly plays nothing");
    assert_eq!(timeouts(&p.events_a), 0, "sendonly expects no rtp");
    assert_eq!(timeouts(&p.events_b), 0, "b still receives a's audio");
    // Both inactive: no RTP at all, and nobody times out.
    p.a.set_direction(Direction::Inactive);
    p.b.set_direction(Direction::Inactive);
    p.run(8000);
    assert_eq!(timeouts(&p.events_a) + timeouts(&p.events_b), 0);
    // Resume.
    p.a.set_direction(Direction::SendRecv);
    p.b.set_direction(Direction::SendRecv);
    p.played_a.clear();
    p.run(2000);
    assert!(rms(&p.played_a[48_000..]) > 5000.0);
    // Resuming 17 s into the call (past the 5 s timeout) is no silence: the silence clock
    // starts again at the resume, not at the session's start.
    assert_eq!(timeouts(&p.events_a) + timeouts(&p.events_b), 0);
}

/// After a resume the silence clock starts at the resume: a peer that stays silent after it
/// times out `rtp_timeout` later, not at once.
#[test]
fn a_silent_peer_after_a_resume_times_out_after_the_timeout() {
    let mut p = pair();
    p.run(1000);
    p.a.set_direction(Direction::SendOnly);
    p.run(10_000);
    p.source_b = None;
    p.a.set_direction(Direction::SendRecv);
    p.run(4800);
    assert_eq!(timeouts(&p.events_a), 0, "not at the resume");
    p.run(400);
    assert_eq!(timeouts(&p.events_a), 1, "rtp_timeout after the resume");
}

#[test]
fn silent_peer_times_out_once_in_virtual_time() {
    let mut p = pair();
    p.run(1000);
    p.source_b = None; // B's microphone path stops: no more RTP from B.
    p.run(4900);
    assert_eq!(timeouts(&p.events_a), 0);
    p.run(200);
    let t: Vec<_> = p
        .events_a
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Timeout { silent_for, .. } => Some(*silent_for),
            _ => None,
        })
        .collect();
    assert_eq!(t.len(), 1);
    assert!(t[0] >= Duration::from_secs(5) && t[0] < Duration::from_millis(5100));
    p.run(10_000);
    assert_eq!(timeouts(&p.events_a), 1, "reported once");
}

#[test]
fn bye_reaches_the_peer() {
    let mut p = pair();
    p.run(500);
    let now = p.now;
    let final_stats = p.b.stop(now);
    assert!(final_stats.packets_sent > 20);
    p.run(100);
    assert!(p.events_a.contains(&MediaEvent::RemoteBye { ssrc: 0xB }));
    assert!(p.b.poll_timeout().is_none());
}

/// Runs a lone session (nobody sends it anything) through its timers until `until`,
/// returning its timeouts as (seconds since `t0`, silent_for, hold_timeout).
fn lone_timeouts(
    s: &mut MediaSession,
    t0: Instant,
    from: Instant,
    until: Duration,
) -> Vec<(f64, Duration, bool)> {
    let mut out = Vec::new();
    let mut now = from;
    while let Some(t) = s.poll_timeout() {
        if t > t0 + until {
            break;
        }
        now = now.max(t);
        s.handle_timeout(now);
        while s.poll_transmit().is_some() {}
        while let Some(e) = s.poll_event() {
            if let MediaEvent::Timeout {
                silent_for,
                hold_timeout,
            } = e
            {
                out.push((
                    now.duration_since(t0).as_secs_f64(),
                    silent_for,
                    hold_timeout,
                ));
            }
        }
    }
    out
}

/// Issue 19, finding 3: a peer that never sends a single RTP packet is as silent as one that
/// stopped: the clock starts at the session's start.
#[test]
fn a_peer_that_never_sends_times_out() {
    let t0 = Instant::now();
    let mut config = SessionConfig::new(0xA, CodecKind::Pcmu, 0, addr("127.0.0.1:5000"));
    config.rtp_timeout = Duration::from_secs(5);
    let mut s = MediaSession::new(config, t0).unwrap();
    let t = lone_timeouts(&mut s, t0, t0, Duration::from_secs(60));
    assert_eq!(t, [(5.0, Duration::from_secs(5), false)]);
}

/// Issue 19, finding 3: on hold RTP stops but RTCP goes on (RFC 3264 §8.4); a held call
/// whose peer sends neither (it is gone, its BYE lost) times out after the hold timeout
/// (5 min by default) instead of lasting forever.
#[test]
fn a_held_call_whose_peer_sends_nothing_times_out() {
    for direction in [Direction::SendOnly, Direction::Inactive] {
        let t0 = Instant::now();
        let mut config = SessionConfig::new(0xA, CodecKind::Pcmu, 0, addr("127.0.0.1:5000"));
        config.rtp_timeout = Duration::from_secs(5);
        let mut s = MediaSession::new(config, t0).unwrap();
        s.set_direction(direction);
        let t = lone_timeouts(&mut s, t0, t0, Duration::from_secs(1000));
        assert_eq!(t.len(), 1, "{direction:?}: {t:?}");
        // The clock starts at the first timer run after the change of direction (within 1 s).
        assert!((300.0..=301.0).contains(&t[0].0), "{direction:?}: {t:?}");
        assert_eq!(t[0].1, Duration::from_secs(300), "{direction:?}");
        assert!(t[0].2, "{direction:?}: the hold timeout");
    }
}

/// The peer holds us (we receive only) and vanishes: the RTP timeout is reported (the phone
/// ignores it while the peer holds the call), and the hold timeout after it ends the call.
#[test]
fn a_call_held_by_a_vanished_peer_still_times_out() {
    let t0 = Instant::now();
    let mut config = SessionConfig::new(0xA, CodecKind::Pcmu, 0, addr("127.0.0.1:5000"));
    config.rtp_timeout = Duration::from_secs(5);
    config.direction = Direction::RecvOnly;
    let mut s = MediaSession::new(config, t0).unwrap();
    let t = lone_timeouts(&mut s, t0, t0, Duration::from_secs(1000));
    assert_eq!(
        t,
        [
            (5.0, Duration::from_secs(5), false),
            (300.0, Duration::from_secs(300), true)
        ]
    );
}

/// A held call whose peer keeps sending RTCP stays up; when the peer vanishes it times out
/// `hold_timeout` after its last RTCP packet.
#[test]
fn a_held_call_lives_on_rtcp_and_ends_without_it() {
    let mut p = pair();
    p.a.set_direction(Direction::SendOnly);
    p.b.set_direction(Direction::RecvOnly);
    p.run(1000);
    let t0 = p.now;
    // A's hold timeout, 10 s, is above the RTCP interval (at most 7.5 s here).
    let mut config = SessionConfig::new(0xA, CodecKind::Pcmu, 0, p.b_addr);
    config.hold_timeout = Duration::from_secs(10);
    config.direction = Direction::SendOnly;
    p.a = MediaSession::new(config, t0).unwrap();
    p.run(40_000);
    assert_eq!(timeouts(&p.events_a), 0, "rtcp keeps a held call alive");
    // B vanishes: nothing from it any more. A times out 10 s after B's last RTCP packet.
    let gone = p.now;
    let t = lone_timeouts(&mut p.a, gone, gone, Duration::from_secs(60));
    assert_eq!(t.len(), 1, "{t:?}");
    assert!(t[0].0 <= 10.0, "{t:?}");
    assert!(t[0].1 >= Duration::from_secs(10) && t[0].1 < Duration::from_millis(10_100));
    assert!(t[0].2, "the hold timeout");
    assert!(
        p.a.poll_timeout().is_some(),
        "the session goes on (the phone hangs up)"
    );
}
