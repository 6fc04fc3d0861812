//! The fleet test of issue 20, short form: kamailio's dispatcher (probing every member with
//! OPTIONS every second) in front of three members on loopback, each the IVR example of the
//! library (`ua-cli/examples/ivr.rs`); sipp places 120 calls at 15
//! calls/s through it, each pressing a digit (INFO dtmf-relay) and hanging up after 1 s.
//! After the 30th call one member is killed (SIGKILL); with [`DRAIN`], after the 70th
//! another is drained (SIGTERM: 503 to new INVITEs and OPTIONS, exit once its calls end).
//!
//! What must hold, from kamailio's log (which member got which call, and when a member was
//! marked down) and sipp's (which calls completed):
//! - the failed calls are among the calls the killed member held when it died (their
//!   callers see a timeout); a new call sent to the dead member before it is marked down
//!   fails over to another one after 2 s and does not fail;
//! - every failed call had been sent to the killed member before it was marked down: no call
//!   fails because of a member kamailio knows is down;
//! - kamailio sends the dead member no call after marking it down, and the others keep
//!   taking calls.
//!
//! It prints how long kamailio kept sending calls to the dead member and how many calls
//! each member took; the measurement over 1, 2 and 3 members is `scripts/bench-fleet.sh`
//! (docs/scale-out.md).

use std::collections::HashSet;
use std::time::Duration;

use tincan_interop_tests::fleet::{Fleet, FleetWhat, completed_calls, unix_now};
use tincan_interop_tests::{Sipp, require_peers, tincan_example};

/// Whether the test also drains a member (SIGTERM: it answers new INVITEs and OPTIONS 503
/// and exits when its calls have ended).
const DRAIN: bool = true;

/// Calls sipp places.
const CALLS: u64 = 120;
/// Calls per second: a debug build of a member takes tens of ms of CPU per call of this
/// shape, so 15 calls/s keep three of them under the 2 cores of a loaded CI machine.
const RATE: f64 = 15.0;
/// Calls dispatched before the kill.
const KILL_AFTER: usize = 30;
/// Calls dispatched before the drain.
const DRAIN_AFTER: usize = 70;

#[test]
fn killing_a_member_loses_at_most_its_calls_and_none_after_it_is_marked_down() {
    if !require_peers(&["kamailio", "sipp"]) {
        return;
    }
    tincan_example("ivr");
    let mut fleet = Fleet::start(3, Duration::from_secs(240)).expect("the fleet starts");
    let killed = fleet.members()[0].uri();
    let drained = fleet.members()[1].uri();

    let sipp = Sipp::lab_scenario("fleet_uac.xml")
        .remote(fleet.addr())
        .service("ivr")
        .calls(CALLS)
        .rate(RATE)
        .limit(CALLS)
        .arg("-trace_logs")
        .trace_err()
        .timeout(Duration::from_secs(150))
        .spawn()
        .expect("sipp starts");

    fleet
        .wait_dispatched(KILL_AFTER, Duration::from_secs(60))
        .expect("calls reach the fleet");
    let killed_at = unix_now();
    fleet.member(0).kill();

    let mut drained_at = None;
    if DRAIN {
        fleet
            .wait_dispatched(DRAIN_AFTER, Duration::from_secs(60))
            .expect("calls reach the fleet");
        drained_at = Some(unix_now());
        fleet.member(1).terminate();
    }

    let run = sipp.wait(Duration::from_secs(170));
    let down_at = fleet
        .wait_down(&killed, killed_at, Duration::from_secs(30))
        .expect("kamailio marks the killed member down");
    let log = fleet.log();

    let calls = log.calls();
    let completed = completed_calls(&run.logs());
    let failed: Vec<&str> = calls
        .iter()
        .copied()
        .filter(|c| !completed.contains(*c))
        .collect();
    let held = log.held_at(&killed, killed_at);
    let sent_to_dead: Vec<f64> = log
        .dispatched_to(&killed)
        .iter()
        .map(|e| e.at)
        .filter(|at| (killed_at..=down_at).contains(at))
        .collect();
    let last_sent = sent_to_dead.iter().copied().fold(killed_at, f64::max);
    let load = log.load_between(killed_at, f64::MAX);
    eprintln!(
        "fleet: {} calls, {} completed, {} failed (sipp: {}); the killed member held {held}; \
         kamailio sent it {} more calls during {:.2} s after the kill and marked it down \
         {:.2} s after the kill; calls per member after the kill: {load:?}",
        calls.len(),
        completed.len(),
        failed.len(),
        run.summary(),
        sent_to_dead.len(),
        last_sent - killed_at,
        down_at - killed_at,
    );
    let context = || format!("{}\n{}", run.summary(), run.errors());

    assert_eq!(calls.len() as u64, CALLS, "{}", context());
    assert_eq!(run.successful + run.failed, CALLS, "{}", context());
    assert_eq!(failed.len() as u64, run.failed, "{}", context());
    // Killing a member loses at most the calls it held: each failed call was up at the
    // killed member when it died (the log's times are kamailio's, the kill's the test's: a
    // tenth of a second covers the two clocks' reading). The calls sent to it after the kill
    // time out there and fail over to another member (`REDISPATCH`): they do not fail.
    let held_calls = log.calls_held_at(&killed, killed_at + 0.1);
    for call in &failed {
        assert!(
            held_calls.contains(*call),
            "call {call} failed but the killed member did not hold it when it died \
             ({} failed, {held} held, {} sent to it before it was marked down)\n{}",
            failed.len(),
            sent_to_dead.len(),
            context()
        );
    }
    // Every failed call had been sent to the killed member before it was marked down.
    let before_down: HashSet<&str> = log
        .entries
        .iter()
        .filter(|e| {
            matches!(e.what, FleetWhat::Dispatch | FleetWhat::Redispatch)
                && e.member == killed
                && e.at <= down_at
        })
        .filter_map(|e| e.call_id.as_deref())
        .collect();
    for call in &failed {
        assert!(
            before_down.contains(call),
            "call {call} failed but never went to the killed member before it was marked \
             down\n{}",
            context()
        );
    }
    // Nothing goes to the dead member once it is marked down; the others carry on.
    let after_down: Vec<_> = log
        .dispatched_to(&killed)
        .into_iter()
        .filter(|e| e.at > down_at)
        .collect();
    assert!(after_down.is_empty(), "sent after down: {after_down:?}");
    for member in &fleet.members()[1..] {
        let after_kill = log
            .dispatched_to(&member.uri())
            .iter()
            .filter(|e| e.at > down_at)
            .count();
        if DRAIN && member.uri() == drained {
            continue;
        }
        assert!(
            after_kill > 0,
            "{} took no call after the kill",
            member.uri()
        );
    }

    if let Some(drained_at) = drained_at {
        // The drained member refuses new calls (503: they fail over), finishes the calls it
        // has and exits; none of its calls fails.
        let member = fleet.member(1);
        member
            .peer()
            .wait(Duration::from_secs(30))
            .expect("the drained member exits once its calls have ended");
        let drained_calls: HashSet<&str> = log
            .dispatched_to(&drained)
            .iter()
            .filter_map(|e| e.call_id.as_deref())
            .collect();
        for call in &failed {
            assert!(
                !drained_calls.contains(call) || before_down.contains(call),
                "call {call} of the drained member failed\n{}",
                context()
            );
        }
        let down = log
            .down_after(&drained, drained_at)
            .expect("the drained member is marked down");
        eprintln!(
            "fleet: the drained member was marked down {:.2} s after SIGTERM",
            down - drained_at
        );
    }
}
