//! The failover machine in virtual time: simulated servers (black-holed, refusing, busy with
//! 503, answering after a delay) behind each target, and the exact time of every event.
//! A black-holed first target costs an INVITE 1 s (the old fixed budget: 4 s); a known RTT
//! stretches the budget to 4 x SRTT; 503, ICMP and transport errors move on at once; the last
//! target of a non-INVITE waits for Timer F.
#![allow(clippy::disallowed_methods)] // tests pick a virtual epoch

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tincan_sip::resolve::{
    AddressStep, AttemptFailure, Failover, FailoverConfig, FailoverEvent, FailureCause,
    RequestKind, ResolvedTarget, TargetHealth, TargetKey, TargetSource, TargetStatus, Transport,
};

const MS: Duration = Duration::from_millis(1);
/// Timer F = 64*T1 (RFC 3261 §17.1.2.2) with T1 = 500 ms.
const TIMER_F: Duration = Duration::from_secs(32);

/// How the server behind a target behaves.
#[derive(Clone)]
enum Server {
    /// Never answers; the transaction times out (Timer B/F) at 32 s.
    BlackHole,
    /// ICMP port unreachable after 1 ms.
    Refuses,
    /// The TCP connection is reset after 2 ms.
    Resets,
    /// These responses, each `(delay after the request, status, Retry-After in s)`.
    Answers(Vec<(u64, u16, Option<u64>)>),
}

fn target(port: u16) -> ResolvedTarget {
    ResolvedTarget {
        transport: Transport::Udp,
        addr: ([127, 0, 0, 1], port).into(),
        host: "failover.test".into(),
        priority: 0,
        weight: 0,
        source: TargetSource {
            naptr: None,
            srv: None,
            address: AddressStep::Literal,
        },
    }
}

fn key(port: u16) -> TargetKey {
    TargetKey::of(&target(port))
}

/// What a simulated server does at some time, for some attempt.
enum Input {
    Response(u16, Option<Duration>),
    Failure(AttemptFailure),
}

/// Runs `f` against the servers (by port) in virtual time from `t0`. The owner's side of the
/// contract: each Send starts a transaction, each Abandon stops it (pending responses of an
/// abandoned INVITE still arrive and are offered), and on a `401` the request is retried once
/// to the same target. Returns every event and every response handed to the TU, as
/// `"<ms> <what>"` lines.
fn run(
    t0: Instant,
    mut f: Failover,
    health: &mut TargetHealth,
    servers: &BTreeMap<u16, Server>,
    invite: bool,
) -> Vec<String> {
    let mut log = Vec::new();
    let mut now = t0;
    // (time, attempt) -> inputs, in time order.
    let mut pending: BTreeMap<(Instant, usize), Vec<Input>> = BTreeMap::new();
    let mut retried = false;
    loop {
        let at = |now: Instant| (now - t0).as_millis();
        while let Some(ev) = f.poll_event() {
            match &ev {
                FailoverEvent::Send { attempt, target } => {
                    log.push(format!("{} send {attempt} to {}", at(now), target.addr));
                    let mut add = |delay: u64, input| {
                        pending
                            .entry((now + Duration::from_millis(delay), *attempt))
                            .or_default()
                            .push(input)
                    };
                    match &servers[&target.addr.port()] {
                        Server::BlackHole => add(
                            TIMER_F.as_millis() as u64,
                            Input::Failure(AttemptFailure::Timeout),
                        ),
                        Server::Refuses => add(1, Input::Failure(AttemptFailure::Unreachable)),
                        Server::Resets => add(2, Input::Failure(AttemptFailure::TransportError)),
                        Server::Answers(list) => {
                            for (delay, status, ra) in list {
                                let ra = ra.map(Duration::from_secs);
                                add(*delay, Input::Response(*status, ra));
                            }
                        }
                    }
                }
                FailoverEvent::Abandon { attempt } => {
                    log.push(format!("{} abandon {attempt}", at(now)));
                    // A non-INVITE transaction is gone (Endpoint::abandon): nothing more
                    // arrives. An INVITE's responses still come (the owner would CANCEL).
                    if !invite {
                        pending.retain(|(_, n), _| n != attempt);
                    }
                }
                FailoverEvent::Exhausted { tried } => {
                    let tried: Vec<String> = tried.iter().map(ToString::to_string).collect();
                    log.push(format!("{} exhausted: {}", at(now), tried.join("; ")));
                }
                _ => unreachable!("no other event"),
            }
        }
        let next_input = pending.keys().next().map(|(t, _)| *t);
        let next = match (next_input, f.poll_timeout()) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => return log,
        };
        now = next;
        if f.poll_timeout().is_some_and(|d| d <= now) {
            f.handle_timeout(now, health);
            continue;
        }
        let ((_, attempt), inputs) = pending.pop_first().expect("an input is due");
        for input in inputs {
            match input {
                Input::Response(status, ra) => {
                    let to_tu = f.handle_response(now, attempt, status, ra, health);
                    let verdict = if to_tu { "to the TU" } else { "dropped" };
                    log.push(format!("{} {status} on {attempt} {verdict}", at(now)));
                    if to_tu && status == 401 && !retried {
                        retried = true;
                        f.retry_same(now, health).expect("a final response came");
                    }
                }
                Input::Failure(why) => f.handle_failure(now, attempt, why, health),
            }
        }
    }
}

fn servers_of(list: &[(u16, Server)]) -> BTreeMap<u16, Server> {
    list.iter().cloned().collect()
}

fn failover(t0: Instant, ports: &[u16], kind: RequestKind, health: &TargetHealth) -> Failover {
    let targets = ports.iter().map(|p| target(*p)).collect();
    Failover::new(t0, targets, kind, FailoverConfig::default(), health)
}

#[test]
fn a_black_holed_first_proxy_costs_an_invite_one_second() {
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    let servers = servers_of(&[
        (5060, Server::BlackHole),
        (
            5062,
            Server::Answers(vec![(30, 100, None), (2000, 200, None)]),
        ),
    ]);
    let f = failover(t0, &[5060, 5062], RequestKind::Invite, &health);
    assert_eq!(
        run(t0, f, &mut health, &servers, true),
        [
            "0 send 0 to 127.0.0.1:5060",
            "1000 abandon 0",
            "1000 send 1 to 127.0.0.1:5062",
            "1030 100 on 1 to the TU",
            "3000 200 on 1 to the TU",
        ]
    );
    assert!(health.is_down(t0 + 1000 * MS, key(5060)));
    assert_eq!(health.status(t0, key(5062)), TargetStatus::Up);
    assert_eq!(health.rtt(key(5062)), Some(30 * MS));
    assert_eq!(health.rtt(key(5060)), None);
}

#[test]
fn a_known_rtt_of_400_ms_gives_a_budget_of_1600_ms() {
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    health.record_rtt(key(5060), 400 * MS);
    let f = failover(t0, &[5060, 5062], RequestKind::Invite, &health);
    assert_eq!(f.poll_timeout(), Some(t0 + 1600 * MS));
    let servers = servers_of(&[
        (5060, Server::BlackHole),
        (
            5062,
            Server::Answers(vec![(10, 180, None), (20, 200, None)]),
        ),
    ]);
    assert_eq!(
        run(t0, f, &mut health, &servers, true),
        [
            "0 send 0 to 127.0.0.1:5060",
            "1600 abandon 0",
            "1600 send 1 to 127.0.0.1:5062",
            "1610 180 on 1 to the TU",
            "1620 200 on 1 to the TU",
        ]
    );
    // The same for a non-INVITE, and a slow answer within the budget is waited for.
    let mut health = TargetHealth::default();
    health.record_rtt(key(5060), 400 * MS);
    let f = failover(t0, &[5060, 5062], RequestKind::NonInvite, &health);
    let servers = servers_slow_first();
    assert_eq!(
        run(t0, f, &mut health, &servers, false),
        ["0 send 0 to 127.0.0.1:5060", "1500 200 on 0 to the TU"]
    );
    // 7/8 * 400 + 1/8 * 1500.
    assert_eq!(
        health.rtt(key(5060)),
        Some(537500 * Duration::from_micros(1))
    );
}

fn servers_slow_first() -> BTreeMap<u16, Server> {
    servers_of(&[
        (5060, Server::Answers(vec![(1500, 200, None)])),
        (5062, Server::Answers(vec![(10, 200, None)])),
    ])
}

#[test]
fn without_an_rtt_a_non_invite_gets_two_seconds() {
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    let f = failover(t0, &[5060, 5062], RequestKind::NonInvite, &health);
    let servers = servers_of(&[
        (5060, Server::BlackHole),
        (5062, Server::Answers(vec![(25, 200, None)])),
    ]);
    assert_eq!(
        run(t0, f, &mut health, &servers, false),
        [
            "0 send 0 to 127.0.0.1:5060",
            "2000 abandon 0",
            "2000 send 1 to 127.0.0.1:5062",
            "2025 200 on 1 to the TU",
        ]
    );
}

#[test]
fn a_503_with_retry_after_moves_on_at_once_and_cools_the_target_off_that_long() {
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    let f = failover(t0, &[5060, 5062], RequestKind::NonInvite, &health);
    let servers = servers_of(&[
        (5060, Server::Answers(vec![(15, 503, Some(20))])),
        (5062, Server::Answers(vec![(10, 200, None)])),
    ]);
    assert_eq!(
        run(t0, f, &mut health, &servers, false),
        [
            "0 send 0 to 127.0.0.1:5060",
            "15 503 on 0 dropped",
            "15 abandon 0",
            "15 send 1 to 127.0.0.1:5062",
            "25 200 on 1 to the TU",
        ]
    );
    let until = t0 + 15 * MS + Duration::from_secs(20);
    assert_eq!(
        health.status(t0 + 15 * MS, key(5060)),
        TargetStatus::Down {
            until,
            failures: 1,
            cause: FailureCause::ServiceUnavailable {
                retry_after: Some(Duration::from_secs(20))
            }
        }
    );
    assert!(health.is_down(until - MS, key(5060)));
    assert!(!health.is_down(until, key(5060)));
    // The next request starts with the healthy target.
    let f = failover(
        t0 + Duration::from_secs(1),
        &[5060, 5062],
        RequestKind::Invite,
        &health,
    );
    assert_eq!(f.current(), Some(&target(5062)));
}

#[test]
fn a_503_from_the_last_target_is_the_answer() {
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    let f = failover(t0, &[5060], RequestKind::Invite, &health);
    let servers = servers_of(&[(5060, Server::Answers(vec![(15, 503, Some(60))]))]);
    assert_eq!(
        run(t0, f, &mut health, &servers, true),
        ["0 send 0 to 127.0.0.1:5060", "15 503 on 0 to the TU"]
    );
    assert!(health.is_down(t0 + Duration::from_secs(59), key(5060)));
}

#[test]
fn icmp_and_transport_errors_move_on_at_once() {
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    let f = failover(t0, &[5060, 5061, 5062], RequestKind::Invite, &health);
    let servers = servers_of(&[
        (5060, Server::Refuses),
        (5061, Server::Resets),
        (
            5062,
            Server::Answers(vec![(10, 100, None), (500, 486, None)]),
        ),
    ]);
    assert_eq!(
        run(t0, f, &mut health, &servers, true),
        [
            "0 send 0 to 127.0.0.1:5060",
            "1 abandon 0",
            "1 send 1 to 127.0.0.1:5061",
            "3 abandon 1",
            "3 send 2 to 127.0.0.1:5062",
            "13 100 on 2 to the TU",
            "503 486 on 2 to the TU",
        ]
    );
    let cause = |port| match health.status(t0 + 10 * MS, key(port)) {
        TargetStatus::Down { cause, .. } => Some(cause),
        _ => None,
    };
    assert_eq!(cause(5060), Some(FailureCause::Unreachable));
    assert_eq!(cause(5061), Some(FailureCause::TransportError));
    assert_eq!(cause(5062), None);
}

#[test]
fn the_last_target_of_a_non_invite_waits_for_timer_f() {
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    let f = failover(t0, &[5060, 5062], RequestKind::NonInvite, &health);
    let servers = servers_of(&[(5060, Server::BlackHole), (5062, Server::BlackHole)]);
    assert_eq!(
        run(t0, f, &mut health, &servers, false),
        [
            "0 send 0 to 127.0.0.1:5060",
            "2000 abandon 0",
            "2000 send 1 to 127.0.0.1:5062",
            "34000 abandon 1",
            "34000 exhausted: udp:127.0.0.1:5060: no response in 2000 ms; \
             udp:127.0.0.1:5062: transaction timed out",
        ]
    );
    // A slow last registrar is waited for, however slow.
    let mut health = TargetHealth::default();
    let f = failover(t0, &[5060], RequestKind::NonInvite, &health);
    assert_eq!(f.poll_timeout(), None);
    let servers = servers_of(&[(5060, Server::Answers(vec![(9000, 200, None)]))]);
    assert_eq!(
        run(t0, f, &mut health, &servers, false),
        ["0 send 0 to 127.0.0.1:5060", "9000 200 on 0 to the TU"]
    );
}

#[test]
fn an_invite_with_no_answer_from_the_last_target_waits_for_timer_b() {
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    let f = failover(t0, &[5060, 5061, 5062], RequestKind::Invite, &health);
    let servers = servers_of(&[
        (5060, Server::BlackHole),
        (5061, Server::Answers(vec![(5, 503, None)])),
        (5062, Server::BlackHole),
    ]);
    assert_eq!(
        run(t0, f, &mut health, &servers, true),
        [
            "0 send 0 to 127.0.0.1:5060",
            "1000 abandon 0",
            "1000 send 1 to 127.0.0.1:5061",
            "1005 503 on 1 dropped",
            "1005 abandon 1",
            "1005 send 2 to 127.0.0.1:5062",
            "33005 abandon 2",
            "33005 exhausted: udp:127.0.0.1:5060: no response in 1000 ms; \
             udp:127.0.0.1:5061: 503 service unavailable; \
             udp:127.0.0.1:5062: transaction timed out",
        ]
    );
}

#[test]
fn a_late_answer_to_an_abandoned_invite_is_dropped_but_teaches_the_rtt() {
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    let f = failover(t0, &[5060, 5062], RequestKind::Invite, &health);
    let servers = servers_of(&[
        (
            5060,
            Server::Answers(vec![(1200, 100, None), (1300, 200, None)]),
        ),
        (
            5062,
            Server::Answers(vec![(10, 100, None), (400, 200, None)]),
        ),
    ]);
    assert_eq!(
        run(t0, f, &mut health, &servers, true),
        [
            "0 send 0 to 127.0.0.1:5060",
            "1000 abandon 0",
            "1000 send 1 to 127.0.0.1:5062",
            "1010 100 on 1 to the TU",
            "1200 100 on 0 dropped",
            "1300 200 on 0 dropped",
            "1400 200 on 1 to the TU",
        ]
    );
    // Slow but alive: back up, and the next INVITE gives it 4 x 1.2 s, capped at 4 s.
    assert_eq!(health.rtt(key(5060)), Some(1200 * MS));
    assert_eq!(health.status(t0, key(5060)), TargetStatus::Up);
    let f = failover(
        t0 + Duration::from_secs(2),
        &[5060, 5062],
        RequestKind::Invite,
        &health,
    );
    assert_eq!(f.poll_timeout(), Some(t0 + Duration::from_secs(6)));
}

#[test]
fn a_refusing_registrar_ends_the_request() {
    // 403 (a wrong password): the next registrar would say the same (RFC 3263 §4.3).
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    let mut f = failover(t0, &[5060, 5062], RequestKind::NonInvite, &health);
    let servers = servers_of(&[
        (5060, Server::Answers(vec![(20, 403, None)])),
        (5062, Server::Answers(vec![(10, 200, None)])),
    ]);
    f.poll_event();
    assert!(f.handle_response(t0 + 20 * MS, 0, 403, None, &mut health));
    assert!(f.is_done());
    assert_eq!(f.poll_event(), None);
    assert_eq!(f.poll_timeout(), None);
    assert_eq!(f.current(), Some(&target(5060)));
    let f = failover(t0, &[5060, 5062], RequestKind::NonInvite, &health);
    assert_eq!(
        run(t0, f, &mut health, &servers, false),
        ["0 send 0 to 127.0.0.1:5060", "20 403 on 0 to the TU"]
    );
}

#[test]
fn a_401_is_retried_with_credentials_at_the_same_target() {
    let t0 = Instant::now();
    let mut health = TargetHealth::default();
    let f = failover(t0, &[5060, 5062], RequestKind::NonInvite, &health);
    let servers = servers_of(&[
        (5060, Server::Answers(vec![(40, 401, None)])),
        (5062, Server::Answers(vec![(10, 200, None)])),
    ]);
    // The simulated 5060 answers 401 again to the retry: the owner gives up after one.
    assert_eq!(
        run(t0, f, &mut health, &servers, false),
        [
            "0 send 0 to 127.0.0.1:5060",
            "40 401 on 0 to the TU",
            "40 send 1 to 127.0.0.1:5060",
            "80 401 on 1 to the TU",
        ]
    );
    // The retry has a budget from the RTT just measured (4 x 40 ms -> 1 s): a registrar
    // that dies between challenge and answer is still failed over.
    let mut health = TargetHealth::default();
    let mut f = failover(t0, &[5060, 5062], RequestKind::NonInvite, &health);
    f.poll_event();
    assert!(f.handle_response(t0 + 40 * MS, 0, 401, None, &mut health));
    assert_eq!(f.retry_same(t0 + 40 * MS, &health), Ok(1));
    assert_eq!(
        f.poll_event(),
        Some(FailoverEvent::Send {
            attempt: 1,
            target: target(5060)
        })
    );
    assert_eq!(f.poll_timeout(), Some(t0 + 1040 * MS));
    f.handle_timeout(t0 + 1040 * MS, &mut health);
    assert_eq!(f.poll_event(), Some(FailoverEvent::Abandon { attempt: 1 }));
    assert_eq!(
        f.poll_event(),
        Some(FailoverEvent::Send {
            attempt: 2,
            target: target(5062)
        })
    );
    // A late response to the challenged attempt is not the TU's any more.
    assert!(!f.handle_response(t0 + 1100 * MS, 0, 401, None, &mut health));
}
