//! The target health table in virtual time: exponential cool-off with a cap, Retry-After
//! honoured exactly, ordering (healthy first, nothing dropped), probes and recovery.
#![allow(clippy::disallowed_methods)] // tests pick a virtual epoch

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tincan_sip::resolve::{
    AddressStep, FailureCause, HealthConfig, ResolvedTarget, TargetHealth, TargetKey, TargetSource,
    TargetStatus, Transport,
};

fn target(port: u16, priority: u16) -> ResolvedTarget {
    ResolvedTarget {
        transport: Transport::Udp,
        addr: SocketAddr::from(([192, 0, 2, 1], port)),
        host: "example.test".into(),
        priority,
        weight: 0,
        source: TargetSource {
            naptr: None,
            srv: None,
            address: AddressStep::Literal,
        },
    }
}

fn ports(ts: &[ResolvedTarget]) -> Vec<u16> {
    ts.iter().map(|t| t.addr.port()).collect()
}

const S: fn(u64) -> Duration = Duration::from_secs;

#[test]
fn cooloff_doubles_from_30_s_up_to_30_min() {
    let t0 = Instant::now();
    let mut h = TargetHealth::default();
    let k = TargetKey::of(&target(5060, 10));
    let mut now = t0;
    let mut seen = Vec::new();
    for _ in 0..9 {
        let until = h.mark_failed(now, k, FailureCause::Timeout);
        seen.push((until - now).as_secs());
        now = until;
    }
    assert_eq!(seen, [30, 60, 120, 240, 480, 960, 1800, 1800, 1800]);
}

#[test]
fn retry_after_is_respected_exactly() {
    let t0 = Instant::now();
    let mut h = TargetHealth::default();
    let k = TargetKey::of(&target(5060, 10));
    let until = h.mark_failed(
        t0,
        k,
        FailureCause::ServiceUnavailable {
            retry_after: Some(S(7)),
        },
    );
    assert_eq!(until, t0 + S(7));
    assert!(h.is_down(t0 + S(7) - Duration::from_millis(1), k));
    assert!(!h.is_down(t0 + S(7), k));
    // A 503 without Retry-After counts like any failure.
    let until = h.mark_failed(
        t0,
        k,
        FailureCause::ServiceUnavailable { retry_after: None },
    );
    assert_eq!(until, t0 + S(60));
    // An absurd Retry-After is capped.
    let until = h.mark_failed(
        t0,
        k,
        FailureCause::ServiceUnavailable {
            retry_after: Some(S(86_400)),
        },
    );
    assert_eq!(until, t0 + HealthConfig::default().max_retry_after);
}

#[test]
fn order_puts_healthy_first_and_keeps_everything() {
    let t0 = Instant::now();
    let mut h = TargetHealth::default();
    let ts = [target(1, 10), target(2, 10), target(3, 20), target(4, 30)];
    h.mark_failed(t0, TargetKey::of(&ts[0]), FailureCause::Unreachable);
    h.mark_failed(
        t0 + S(10),
        TargetKey::of(&ts[2]),
        FailureCause::TransportError,
    );
    assert_eq!(ports(&h.order(&ts, t0 + S(15))), [2, 4, 1, 3]);
    // All down: still every target, soonest recovery first.
    h.mark_failed(t0 + S(12), TargetKey::of(&ts[1]), FailureCause::Timeout);
    h.mark_failed(t0 + S(14), TargetKey::of(&ts[3]), FailureCause::Timeout);
    assert_eq!(ports(&h.order(&ts, t0 + S(15))), [1, 3, 2, 4]);
    // As cool-offs end (1 at 30 s, 3 at 40 s, 2 at 42 s, 4 at 44 s) targets rejoin in RFC order.
    assert_eq!(ports(&h.order(&ts, t0 + S(30))), [1, 3, 2, 4]);
    assert_eq!(ports(&h.order(&ts, t0 + S(41))), [1, 3, 2, 4]);
    assert_eq!(ports(&h.order(&ts, t0 + S(42))), [1, 2, 3, 4]);
}

#[test]
fn probes_are_due_once_per_cooloff_and_success_restores() {
    let t0 = Instant::now();
    let mut h = TargetHealth::default();
    let k = TargetKey::of(&target(5060, 10));
    h.mark_failed(t0, k, FailureCause::Timeout);
    assert_eq!(h.poll_timeout(), Some(t0 + S(30)));
    assert!(h.due_probes(t0 + S(29)).is_empty());
    assert_eq!(h.due_probes(t0 + S(30)), [k]);
    assert!(h.due_probes(t0 + S(31)).is_empty(), "already handed out");
    assert!(matches!(
        h.status(t0 + S(31), k),
        TargetStatus::Probation { failures: 1, .. }
    ));
    assert_eq!(h.poll_timeout(), None);
    // The probe fails: the next cool-off is twice as long.
    assert_eq!(
        h.mark_failed(t0 + S(34), k, FailureCause::Timeout),
        t0 + S(94)
    );
    assert_eq!(h.due_probes(t0 + S(94)), [k]);
    // The probe succeeds: the target is healthy and the backoff starts over.
    h.mark_ok(k);
    assert_eq!(h.status(t0 + S(95), k), TargetStatus::Up);
    assert!(h.failed(t0 + S(95)).is_empty());
    assert_eq!(
        h.mark_failed(t0 + S(100), k, FailureCause::Timeout),
        t0 + S(130)
    );
}

#[test]
fn the_cap_and_initial_cooloff_are_configurable() {
    let t0 = Instant::now();
    let mut cfg = HealthConfig::default();
    cfg.initial_cooloff = S(5);
    cfg.max_cooloff = S(12);
    let mut h = TargetHealth::new(cfg);
    let k = TargetKey::of(&target(5060, 10));
    let d: Vec<u64> = (0..4)
        .map(|_| (h.mark_failed(t0, k, FailureCause::Unreachable) - t0).as_secs())
        .collect();
    assert_eq!(d, [5, 10, 12, 12]);
}

#[test]
fn report_marks_and_decides_in_one_step() {
    use tincan_sip::resolve::{AttemptOutcome, FailoverDecision, FailoverPolicy};
    let t0 = Instant::now();
    let p = FailoverPolicy::default();
    let mut h = TargetHealth::default();
    let ts = [target(1, 10), target(2, 20)];
    let k1 = TargetKey::of(&ts[0]);
    let d = h.report(t0, k1, AttemptOutcome::Timeout, &p);
    assert_eq!(d, FailoverDecision::TryNext(FailureCause::Timeout));
    // The next request goes straight to the healthy target.
    assert_eq!(ports(&h.order(&ts, t0 + S(1))), [2, 1]);
    let outcome = AttemptOutcome::Response {
        status: 403,
        retry_after: None,
    };
    assert_eq!(
        h.report(t0 + S(40), k1, outcome, &p),
        FailoverDecision::Done
    );
    assert_eq!(h.status(t0 + S(40), k1), TargetStatus::Up);
}

/// Every Contact a phone sent a BYE to is a target: a stream of strangers' calls must not
/// grow the tables for ever. Past the bound the failure whose cool-off ended first goes, and
/// the newest failure is kept.
#[test]
fn the_tables_are_bounded_and_keep_the_newest() {
    let t0 = Instant::now();
    let mut h = TargetHealth::default();
    let n = tincan_sip::resolve::health::MAX_TARGETS + 1000;
    let key = |i: usize| TargetKey {
        transport: Transport::Udp,
        addr: SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 5060)),
    };
    for i in 0..n {
        let now = t0 + Duration::from_millis(i as u64);
        h.record_rtt(key(i), Duration::from_millis(20));
        h.mark_failed(now, key(i), FailureCause::Timeout);
    }
    let sizes = h.table_sizes();
    assert!(
        sizes
            .iter()
            .all(|(_, len)| *len <= tincan_sip::resolve::health::MAX_TARGETS),
        "{sizes:?}"
    );
    let now = t0 + Duration::from_millis(n as u64);
    assert!(h.is_down(now, key(n - 1)), "the newest failure is kept");
    assert_eq!(h.rtt(key(n - 1)), Some(Duration::from_millis(20)));
    assert!(
        !h.is_down(now, key(0)),
        "the oldest failure made room for the newer ones"
    );
}
