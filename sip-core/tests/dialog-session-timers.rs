//! Session timers (RFC 4028) between two sessions on the seeded Sim network, in virtual time:
//! the caller asks for a 90 s interval and refreshes the call by UPDATE every 45 s (§7.4);
//! when its refreshes stop reaching the callee, the callee hangs up at the interval minus
//! min(32 s, interval/3) after the last one (§10). A 422 makes the caller ask again with the
//! callee's Min-SE (§7.4); a peer that refuses UPDATE is refreshed by a re-INVITE with the
//! same SDP.

mod util;

use tincan_sip::dialog::{EndReason, Refresher, SessionEvent, SessionTimerConfig};
use tincan_sip::endpoint::EndpointConfig;
use tincan_sip::message::Method;
use tincan_sip::transport::Transport;
use util::ua::{Phone, alice_and_bob, answer_direction, connected, header, run, sdp, secs, sent};
use util::{NetConfig, Sim};

fn timer(interval: u32, min_se: u32) -> Option<SessionTimerConfig> {
    Some(SessionTimerConfig { interval, min_se })
}

fn ms(t: f64) -> u64 {
    (t * 1000.0).round() as u64
}

/// (time in ms, first line) of the requests node `node` sent with this method.
fn requests(sim: &Sim, node: usize, method: &str) -> Vec<(u64, String)> {
    sent(sim, node, method)
        .into_iter()
        .map(|(t, m)| (ms(t), m))
        .collect()
}

#[test]
fn refreshed_three_times_then_a_missed_refresh_ends_the_call() {
    let (mut sim, mut phones) = alice_and_bob(40, NetConfig::perfect());
    for p in &mut phones {
        p.session_timer = timer(90, 90);
    }
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));

    // The INVITE asks for 90 s; Bob lets Alice refresh (she knows timers).
    let invite = &sent(&sim, 0, "INVITE")[0].1;
    assert_eq!(header(invite, "Supported"), Some("timer, 100rel, replaces"));
    assert_eq!(header(invite, "Session-Expires"), Some("90"));
    assert_eq!(header(invite, "Min-SE"), Some("90"));
    let ok = &sent(&sim, 1, "SIP/2.0 200")[0].1;
    assert_eq!(header(ok, "Session-Expires"), Some("90;refresher=uac"));
    assert_eq!(header(ok, "Require"), Some("timer"));
    assert!(header(ok, "Allow").is_some_and(|a| a.contains("UPDATE")));
    let alice_timer = phones[0].session(a).session_timer().unwrap();
    assert_eq!(
        (alice_timer.interval, alice_timer.refresher),
        (90, Refresher::Us)
    );
    let bob_timer = phones[1].session(b).session_timer().unwrap();
    assert_eq!(
        (bob_timer.interval, bob_timer.refresher),
        (90, Refresher::Peer)
    );

    // Three refreshes, each half an interval after the 200 of the one before: Alice got
    // the INVITE's 200 at 20 ms, each UPDATE's 200 20 ms after she sent it.
    run(&mut sim, &mut phones, secs(140.0));
    let updates = requests(&sim, 0, "UPDATE");
    let times: Vec<u64> = updates.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [45_020, 90_040, 135_060]);
    for (_, m) in &updates {
        assert_eq!(header(m, "Session-Expires"), Some("90;refresher=uac"));
        assert_eq!(header(m, "Content-Length"), Some("0"));
    }
    let refreshed = |events: Vec<(f64, SessionEvent)>| {
        events
            .into_iter()
            .filter(|(_, e)| matches!(e, SessionEvent::Refreshed { .. }))
            .count()
    };
    // The call's start, then three refreshes.
    assert_eq!(refreshed(phones[0].events_of(a)), 4);
    assert_eq!(refreshed(phones[1].events_of(b)), 4);
    assert!(phones[0].ends(a).is_empty() && phones[1].ends(b).is_empty());

    // From now on Alice's refreshes are lost. Bob took the last one at 135.07 s: he hangs up
    // at 135.07 + 90 - min(32, 90/3) = 195.07 s.
    sim.drop_if = Some(Box::new(|from, _, line| {
        from == 0 && line.starts_with("UPDATE")
    }));
    run(&mut sim, &mut phones, secs(260.0));
    assert_eq!(
        requests(&sim, 0, "UPDATE")[3].0,
        180_080,
        "the fourth refresh"
    );
    let byes = requests(&sim, 1, "BYE");
    assert_eq!(byes.len(), 1, "{byes:?}");
    assert_eq!(byes[0].0, 195_070);
    assert_eq!(phones[1].ends(b), [(195.07, EndReason::SessionExpired)]);
    assert_eq!(phones[0].ends(a), [(195.08, EndReason::RemoteHangup)]);
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}

#[test]
fn a_422_is_retried_with_the_larger_interval() {
    let (mut sim, mut phones) = alice_and_bob(41, NetConfig::perfect());
    phones[0].session_timer = timer(90, 90);
    phones[1].session_timer = timer(1800, 300);
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));

    let invites = sent(&sim, 0, "INVITE");
    assert_eq!(invites.len(), 2, "{invites:?}");
    assert_eq!(header(&invites[0].1, "Session-Expires"), Some("90"));
    let too_small = sent(&sim, 1, "SIP/2.0 422");
    assert_eq!(too_small.len(), 1);
    assert_eq!(header(&too_small[0].1, "Min-SE"), Some("300"));
    // The same call again, with the next CSeq and the interval Bob asked for.
    let retry = &invites[1].1;
    assert_eq!(header(retry, "CSeq"), Some("2 INVITE"));
    assert_eq!(header(retry, "Session-Expires"), Some("300"));
    assert_eq!(header(retry, "Min-SE"), Some("300"));
    assert_eq!(
        header(retry, "Call-ID"),
        header(&invites[0].1, "Call-ID"),
        "the same call"
    );
    assert_eq!(
        header(&sent(&sim, 1, "SIP/2.0 200")[0].1, "Session-Expires"),
        Some("300;refresher=uac")
    );
    assert_eq!(phones[0].session(a).session_timer().unwrap().interval, 300);
    assert_eq!(phones[1].session(b).session_timer().unwrap().interval, 300);

    // The refresh comes at 150 s, asking for 300 s too.
    run(&mut sim, &mut phones, secs(200.0));
    let updates = requests(&sim, 0, "UPDATE");
    assert_eq!(updates.len(), 1);
    assert!((150_000..150_100).contains(&updates[0].0), "{updates:?}");
    assert_eq!(
        header(&updates[0].1, "Session-Expires"),
        Some("300;refresher=uac")
    );
    assert!(phones[0].ends(a).is_empty() && phones[1].ends(b).is_empty());
}

#[test]
fn a_peer_refusing_update_is_refreshed_by_reinvite_with_the_same_sdp() {
    // Bob's endpoint does not take UPDATE (501); his 200 still lists it, so Alice tries it
    // once, then refreshes by re-INVITE with her SDP unchanged (same o= version).
    let mut sim = Sim::new(43, NetConfig::perfect());
    let config = EndpointConfig::default();
    let alice = sim.add_node("127.0.0.1:5060", Transport::Udp, config.clone());
    let mut bob_config = config;
    bob_config.methods.retain(|m| *m != Method::Update);
    let bob = sim.add_node("127.0.0.1:5070", Transport::Udp, bob_config);
    let mut phones = vec![
        Phone::new(&sim, alice, "alice"),
        Phone::new(&sim, bob, "bob"),
    ];
    for p in &mut phones {
        p.session_timer = timer(120, 90);
        p.answer_reinvites = Some(answer_direction);
    }
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    run(&mut sim, &mut phones, secs(200.0));

    let updates = requests(&sim, 0, "UPDATE");
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].0, 60_020);
    assert_eq!(sent(&sim, 1, "SIP/2.0 501").len(), 1);
    let reinvites: Vec<(u64, String)> = requests(&sim, 0, "INVITE")
        .into_iter()
        .filter(|(_, m)| header(m, "To").is_some_and(|t| t.contains(";tag=")))
        .collect();
    // At once after the 501, then 60 s after its 200.
    let times: Vec<u64> = reinvites.iter().map(|(t, _)| *t).collect();
    assert_eq!(times, [60_040, 120_060, 180_080]);
    let offer = sdp("alice", 1, "sendrecv");
    for (_, m) in &reinvites {
        assert!(m.ends_with(std::str::from_utf8(&offer).unwrap()), "{m}");
        assert_eq!(header(m, "Session-Expires"), Some("120;refresher=uac"));
    }
    assert!(phones[0].ends(a).is_empty() && phones[1].ends(b).is_empty());
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}

#[test]
fn the_callee_refreshes_a_caller_without_timers() {
    // Alice knows nothing of timers: Bob grants his own interval with refresher=uas (no
    // Require), and refreshes by UPDATE himself, from the ACK on.
    let (mut sim, mut phones) = alice_and_bob(44, NetConfig::perfect());
    phones[1].session_timer = timer(100, 90);
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    let invite = &sent(&sim, 0, "INVITE")[0].1;
    assert_eq!(header(invite, "Session-Expires"), None);
    let ok = &sent(&sim, 1, "SIP/2.0 200")[0].1;
    assert_eq!(header(ok, "Session-Expires"), Some("100;refresher=uas"));
    assert_eq!(header(ok, "Require"), None);
    run(&mut sim, &mut phones, secs(160.0));
    let updates: Vec<u64> = requests(&sim, 1, "UPDATE").iter().map(|u| u.0).collect();
    // Bob's timer starts with Alice's ACK at 30 ms.
    assert_eq!(updates, [50_030, 100_050, 150_070]);
    assert_eq!(sent(&sim, 0, "SIP/2.0 200").len(), 3);
    assert!(phones[0].ends(a).is_empty() && phones[1].ends(b).is_empty());
}

#[test]
fn a_refresh_asking_for_too_little_gets_422_with_min_se() {
    let (mut sim, mut phones) = alice_and_bob(45, NetConfig::perfect());
    for p in &mut phones {
        p.session_timer = timer(1800, 90);
    }
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    // An UPDATE of Alice's dialog, written by hand, asking for 30 s (RFC 4028 §8.1).
    let mut dialog = phones[0].session(a).dialog().unwrap().clone();
    let mut update = dialog.request(Method::Update);
    update.push_header(
        tincan_sip::message::HeaderName::SessionExpires,
        "30;refresher=uac",
    );
    let target = sim.target(1);
    sim.nodes[0]
        .ep
        .send_request(sim.now, update, target)
        .unwrap();
    run(&mut sim, &mut phones, secs(2.0));
    let r422 = sent(&sim, 1, "SIP/2.0 422");
    assert_eq!(r422.len(), 1);
    assert_eq!(header(&r422[0].1, "Min-SE"), Some("90"));
    // Nothing changed: Bob's timer is still the call's.
    let t = phones[1].session(b).session_timer().unwrap();
    assert_eq!((t.interval, t.refresher), (1800, Refresher::Peer));
}

#[test]
fn a_hold_reinvite_counts_as_a_refresh() {
    let (mut sim, mut phones) = alice_and_bob(46, NetConfig::perfect());
    for p in &mut phones {
        p.session_timer = timer(90, 90);
        p.answer_reinvites = Some(answer_direction);
    }
    let (a, _b) = connected(&mut sim, &mut phones, secs(1.0));
    run(&mut sim, &mut phones, secs(30.0));
    // Alice holds at 30 s: its 200 (at 30.02 s) restarts the timer, with its Session-Expires.
    phones[0]
        .act(&mut sim, a, |s| {
            s.reinvite(Some(sdp("alice", 2, "sendonly")))
        })
        .unwrap();
    run(&mut sim, &mut phones, secs(100.0));
    let reinvite = sent(&sim, 0, "INVITE")
        .into_iter()
        .find(|(_, m)| header(m, "CSeq") == Some("2 INVITE"))
        .unwrap();
    assert_eq!(
        header(&reinvite.1, "Session-Expires"),
        Some("90;refresher=uac")
    );
    let updates: Vec<u64> = requests(&sim, 0, "UPDATE").iter().map(|u| u.0).collect();
    assert_eq!(updates, [75_020]);
}
