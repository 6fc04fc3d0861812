//! The whole failover story in virtual time: resolve, try targets in health order, fail over
//! on a black hole (budget), a refusal (ICMP) and a 503 with Retry-After, skip the failed
//! target on the next request, probe it when its cool-off ends, and fail back.
#![allow(clippy::disallowed_methods)] // tests pick a virtual epoch

#[path = "resolve-common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{FakeDns, rng, run};
use tincan_sip::resolve::{
    AttemptOutcome, Destination, FailoverDecision, FailoverPolicy, Resolution, ResolveConfig,
    ResolvedTarget, TargetHealth, TargetKey,
};

/// How a simulated server behaves.
#[derive(Clone, Copy)]
enum Server {
    BlackHole,
    Refuses,
    Busy(u64),
    Ok,
}

/// Send one request: try targets in health order until one gives a final answer. Returns the
/// port that answered and the virtual time spent.
fn request(
    now: Instant,
    targets: &[ResolvedTarget],
    health: &mut TargetHealth,
    policy: &FailoverPolicy,
    server: impl Fn(u16) -> Server,
) -> (u16, Duration) {
    let mut t = now;
    for target in health.order(targets, now) {
        let key = TargetKey::of(&target);
        let (outcome, took) = match server(target.addr.port()) {
            Server::BlackHole => (AttemptOutcome::Timeout, policy.budget(true)),
            Server::Refuses => (AttemptOutcome::Unreachable, Duration::from_millis(1)),
            Server::Busy(secs) => (
                AttemptOutcome::Response {
                    status: 503,
                    retry_after: Some(Duration::from_secs(secs)),
                },
                Duration::from_millis(10),
            ),
            Server::Ok => (
                AttemptOutcome::Response {
                    status: 200,
                    retry_after: None,
                },
                Duration::from_millis(10),
            ),
        };
        t += took;
        if health.report(t, key, outcome, policy) == FailoverDecision::Done {
            return (target.addr.port(), t - now);
        }
    }
    panic!("no target answered");
}

fn targets() -> Vec<ResolvedTarget> {
    let mut dns = FakeDns::new();
    dns.srv("_sip._udp.failover.test", 10, 0, 5060, "dead.failover.test")
        .srv(
            "_sip._udp.failover.test",
            20,
            0,
            5062,
            "alive.failover.test",
        )
        .a("dead.failover.test", [127, 0, 0, 3])
        .a("alive.failover.test", [127, 0, 0, 2]);
    let dest = Destination::parse("sip:failover.test;transport=udp").unwrap();
    run(
        Resolution::new(dest, ResolveConfig::default(), &mut rng(1)),
        &dns,
    )
    .unwrap()
    .targets
}

#[test]
fn black_holed_primary_costs_one_budget_then_nothing_until_it_recovers() {
    let t0 = Instant::now();
    let ts = targets();
    let policy = FailoverPolicy::default();
    let mut health = TargetHealth::default();
    let mut primary = Server::BlackHole;
    let servers = |p: &Server| {
        let p = *p;
        move |port: u16| if port == 5060 { p } else { Server::Ok }
    };

    let (port, took) = request(t0, &ts, &mut health, &policy, servers(&primary));
    println!("black hole: failed over in {took:?} (RFC 3261 Timer F would be 32 s)");
    assert_eq!(port, 5062);
    assert_eq!(took, policy.interactive_budget + Duration::from_millis(10));

    // The next request goes straight to the healthy target.
    let (port, took) = request(
        t0 + Duration::from_secs(10),
        &ts,
        &mut health,
        &policy,
        servers(&primary),
    );
    assert_eq!((port, took), (5062, Duration::from_millis(10)));

    // Cool-off over at 4 s + 30 s: a probe is due; the primary still does not answer.
    let down_at = t0 + policy.interactive_budget;
    assert!(
        health
            .due_probes(down_at + Duration::from_secs(29))
            .is_empty()
    );
    let due = health.due_probes(down_at + Duration::from_secs(30));
    assert_eq!(due, [TargetKey::of(&ts[0])]);
    let probe_end = down_at + Duration::from_secs(30) + policy.probe_budget;
    health.report(probe_end, due[0], AttemptOutcome::Timeout, &policy);

    // The primary comes back; the next probe (after a doubled, 60 s cool-off) finds it.
    primary = Server::Ok;
    let probe_at = probe_end + Duration::from_secs(60);
    let due = health.due_probes(probe_at);
    assert_eq!(due, [TargetKey::of(&ts[0])]);
    let outcome = AttemptOutcome::Response {
        status: 200,
        retry_after: None,
    };
    health.report(probe_at, due[0], outcome, &policy);
    let failback = probe_at - down_at;
    println!("black hole: failed back {failback:?} after the failure");

    let (port, _) = request(
        probe_at + Duration::from_secs(1),
        &ts,
        &mut health,
        &policy,
        servers(&primary),
    );
    assert_eq!(port, 5060, "failed back to the priority-10 target");
}

#[test]
fn refused_primary_fails_over_at_once() {
    let t0 = Instant::now();
    let ts = targets();
    let policy = FailoverPolicy::default();
    let mut health = TargetHealth::default();
    let (port, took) = request(t0, &ts, &mut health, &policy, |p| {
        if p == 5060 {
            Server::Refuses
        } else {
            Server::Ok
        }
    });
    println!("refused: failed over in {took:?}");
    assert_eq!((port, took), (5062, Duration::from_millis(11)));
}

#[test]
fn busy_primary_is_skipped_exactly_for_its_retry_after() {
    let t0 = Instant::now();
    let ts = targets();
    let policy = FailoverPolicy::default();
    let mut health = TargetHealth::default();
    let busy = |p: u16| {
        if p == 5060 {
            Server::Busy(20)
        } else {
            Server::Ok
        }
    };
    let (port, took) = request(t0, &ts, &mut health, &policy, busy);
    println!("503 Retry-After 20: failed over in {took:?}");
    assert_eq!(port, 5062);
    let marked = t0 + Duration::from_millis(10);
    // Skipped until exactly 20 s after the 503, then tried first again.
    let ok = |_: u16| Server::Ok;
    let just_before = marked + Duration::from_secs(20) - Duration::from_millis(1);
    assert_eq!(request(just_before, &ts, &mut health, &policy, ok).0, 5062);
    assert_eq!(
        request(
            marked + Duration::from_secs(20),
            &ts,
            &mut health,
            &policy,
            ok
        )
        .0,
        5060
    );
}
