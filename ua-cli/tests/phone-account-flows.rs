//! The accounts of the phone core in virtual time: RFC 5626 flow keep-alives (STUN over UDP,
//! CRLF over TCP) that notice a NAT rebinding, a black-holed registrar, a closed or a silent
//! connection and register again at once, and fail-back to the preferred registrar once it
//! answers again.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::net::SocketAddr;
use std::time::Duration;

use phone_sim::{NetConfig, P1, P2, Sim, account};
use tincan::phone::{AccountEvent, FlowCommand, PhoneConfig, PhoneEvent};
use tincan_sip::flow::{FlowFailure, KeepAliveConfig};
use tincan_sip::transport::{ConnectionId, Transport};

const ALICE: &str = "127.0.0.1:5061";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn addr(a: &str) -> SocketAddr {
    a.parse().expect("a socket address")
}

/// A phone whose UDP flows get a STUN keep-alive every 1.6-2 s, STUN RTO 50 ms (the
/// transaction fails after 3.95 s).
fn phone(sim: &mut Sim) -> usize {
    let mut k = KeepAliveConfig::datagram().with_stun_rto(Duration::from_millis(50));
    k.interval = secs(2.0);
    let config = PhoneConfig {
        user: "alice".into(),
        udp_keepalive: Some(k),
        ..PhoneConfig::default()
    };
    sim.add_phone_with(ALICE, config)
}

/// Alice's account over `registrars`, outbound on.
fn outbound(registrars: &[&str]) -> tincan::phone::AccountConfig {
    let mut a = account("alice", registrars);
    a.instance_id = Some("urn:uuid:00000000-0000-4000-8000-000000000001".into());
    a
}

/// Every account event of a node: (time, event).
fn account_events(sim: &Sim, node: usize) -> Vec<(Duration, AccountEvent)> {
    sim.phone(node)
        .events
        .iter()
        .filter_map(|(t, e)| match e {
            PhoneEvent::Account { event, .. } => Some((*t, event.clone())),
            _ => None,
        })
        .collect()
}

/// A short name for an event, with its registrar: `registered 127.0.0.10:5060`.
fn name(e: &AccountEvent) -> String {
    match e {
        AccountEvent::Registered { registrar, .. } => format!("registered {}", registrar.addr),
        AccountEvent::Failed { attempt, .. } => format!("failed {}", attempt.target.addr),
        AccountEvent::Unregistered { registrar } => format!("unregistered {}", registrar.addr),
        AccountEvent::FlowFailed { registrar, .. } => format!("flow_failed {}", registrar.addr),
        AccountEvent::FlowRecovered { registrar, .. } => {
            format!("flow_recovered {}", registrar.addr)
        }
        AccountEvent::Unavailable { .. } => "unavailable".into(),
        other => format!("{other:?}"),
    }
}

fn names_after(sim: &Sim, node: usize, after: Duration) -> Vec<String> {
    account_events(sim, node)
        .iter()
        .filter(|(t, _)| *t >= after)
        .map(|(_, e)| name(e))
        .collect()
}

fn first(sim: &Sim, node: usize, after: Duration, what: &str) -> Option<(Duration, AccountEvent)> {
    account_events(sim, node)
        .into_iter()
        .find(|(t, e)| *t >= after && name(e) == what)
}

/// STUN Binding requests a phone sent after `after`: (time, target).
fn bindings(sim: &Sim, node: usize, after: Duration) -> Vec<(Duration, SocketAddr)> {
    sim.phone(node)
        .flows
        .iter()
        .filter_map(|(t, f)| match f {
            FlowCommand::SendBinding { target, .. } if *t >= after => Some((*t, *target)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_nat_rebinding_fails_the_udp_flow_and_the_account_registers_again_at_once() {
    let mut sim = Sim::new(3, NetConfig::perfect());
    let alice = phone(&mut sim);
    let _p1 = sim.add_proxy(P1);
    sim.add_account(alice, outbound(&[P1]));
    sim.run_for(secs(1.0));
    assert_eq!(
        names_after(&sim, alice, secs(0.0)),
        [format!("registered {P1}")]
    );

    // Keep-alives every 1.6-2 s, each answered: no failure.
    sim.run_for(secs(10.0));
    let pings = bindings(&sim, alice, secs(0.0));
    assert!(pings.len() >= 5, "{pings:?}");
    assert!(pings.iter().all(|(_, t)| *t == addr(P1)), "{pings:?}");
    for pair in pings.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap >= secs(1.6) && gap <= secs(2.0), "{pings:?}");
    }
    assert_eq!(names_after(&sim, alice, secs(0.0)).len(), 1);

    // The NAT rebinds: the next response carries another mapped address.
    let rebound = sim.elapsed();
    sim.phone_mut(alice).mapped = Some(addr("198.51.100.7:4711"));
    sim.run_for(secs(3.0));
    let (failed_at, failed) =
        first(&sim, alice, rebound, &format!("flow_failed {P1}")).expect("flow_failed");
    let AccountEvent::FlowFailed { reason, .. } = failed else {
        unreachable!()
    };
    assert!(
        matches!(reason, FlowFailure::MappedAddressChanged { current, .. } if current == addr("198.51.100.7:4711")),
        "{reason:?}"
    );
    assert!(failed_at - rebound <= secs(2.0), "{failed_at:?}");
    let (recovered_at, recovered) =
        first(&sim, alice, rebound, &format!("flow_recovered {P1}")).expect("flow_recovered");
    let AccountEvent::FlowRecovered { elapsed, .. } = recovered else {
        unreachable!()
    };
    // A REGISTER round trip (10 ms each way), at once.
    assert_eq!(elapsed, recovered_at - failed_at);
    assert!(elapsed <= secs(0.05), "{elapsed:?}");
    assert_eq!(
        names_after(&sim, alice, rebound),
        [format!("flow_failed {P1}"), format!("flow_recovered {P1}")]
    );
    // The new flow is kept alive from the new mapping on: no more failures.
    sim.run_for(secs(10.0));
    assert_eq!(names_after(&sim, alice, rebound).len(), 2);
    assert!(bindings(&sim, alice, recovered_at).len() >= 5);
}

#[test]
fn a_black_holed_registrar_fails_the_flow_and_the_account_moves_to_the_next() {
    let mut sim = Sim::new(5, NetConfig::perfect());
    let alice = phone(&mut sim);
    let p1 = sim.add_proxy(P1);
    let _p2 = sim.add_proxy(P2);
    sim.add_account(alice, outbound(&[P1, P2]));
    sim.run_for(secs(5.0));
    assert_eq!(
        names_after(&sim, alice, secs(0.0)),
        [format!("registered {P1}")]
    );

    let frozen = sim.elapsed();
    sim.nodes[p1].online = false;
    sim.run_for(secs(15.0));
    let (failed_at, failed) =
        first(&sim, alice, frozen, &format!("flow_failed {P1}")).expect("flow_failed");
    assert!(
        matches!(
            failed,
            AccountEvent::FlowFailed {
                reason: FlowFailure::NoBindingResponse,
                ..
            }
        ),
        "{failed:?}"
    );
    // The next keep-alive (at most 2 s) and its STUN transaction (3.95 s).
    assert!(failed_at - frozen <= secs(6.0), "{:?}", failed_at - frozen);
    assert_eq!(
        names_after(&sim, alice, frozen),
        [
            format!("flow_failed {P1}"),
            format!("failed {P1}"),
            format!("registered {P2}"),
        ]
    );
    let (moved_at, _) = first(&sim, alice, frozen, &format!("registered {P2}")).unwrap();
    // The REGISTER over a new flow gets the first registrar's budget (2 s), then the next.
    assert!(
        moved_at - failed_at <= secs(2.1),
        "{:?}",
        moved_at - failed_at
    );
}

#[test]
fn the_account_fails_back_to_the_preferred_registrar_once_it_answers() {
    let mut sim = Sim::new(11, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let p1 = sim.add_proxy(P1);
    let p2 = sim.add_proxy(P2);
    sim.nodes[p1].online = false;
    sim.add_account(alice, account("alice", &[P1, P2]));
    sim.run_for(secs(5.0));
    assert_eq!(
        names_after(&sim, alice, secs(0.0)),
        [format!("failed {P1}"), format!("registered {P2}")]
    );
    let (down_at, _) = first(&sim, alice, secs(0.0), &format!("failed {P1}")).unwrap();

    // The first registrar comes back; it cools off for 30 s after its failure, then the
    // probe (at most every 5 s) finds it, the account registers there and only then removes
    // the binding at the second.
    sim.run_for(secs(5.0));
    sim.nodes[p1].online = true;
    sim.run_for(secs(40.0));
    let options: Vec<Duration> = sim
        .sent(alice, "OPTIONS")
        .into_iter()
        .filter(|(_, to)| *to == addr(P1))
        .map(|(t, _)| t)
        .collect();
    assert_eq!(options.len(), 1, "one probe: {options:?}");
    assert!(
        options[0] >= down_at + secs(30.0) && options[0] <= down_at + secs(35.0),
        "probed at {options:?}, down at {down_at:?}"
    );
    assert_eq!(
        names_after(&sim, alice, secs(6.0)),
        [format!("registered {P1}"), format!("unregistered {P2}")],
        "{:?}",
        account_events(&sim, alice)
    );
    let (back_at, _) = first(&sim, alice, secs(6.0), &format!("registered {P1}")).unwrap();
    assert!(back_at - options[0] <= secs(0.1), "{back_at:?}");
    // The second registrar got the REGISTER that removed the binding after the first
    // accepted; the account is registered at the first alone.
    let p2_registers: Vec<Duration> = sim
        .proxy(p2)
        .received
        .iter()
        .filter(|(t, m)| m == "REGISTER" && *t >= back_at)
        .map(|(t, _)| *t)
        .collect();
    assert!(!p2_registers.is_empty(), "the backup binding is removed");
    assert_eq!(
        sim.core(alice).registrars(tincan::phone::AccountId(0)),
        [tincan_sip::transport::Target::new(
            tincan_sip::transport::Transport::Udp,
            addr(P1)
        )]
    );
}

#[test]
fn a_fail_back_that_is_refused_keeps_the_backup_binding() {
    let mut sim = Sim::new(13, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let p1 = sim.add_proxy(P1);
    let _p2 = sim.add_proxy(P2);
    sim.nodes[p1].online = false;
    sim.add_account(alice, account("alice", &[P1, P2]));
    sim.run_for(secs(5.0));
    // The first registrar answers the probe but dies before the REGISTER: the account stays
    // at the second, nothing unregistered.
    sim.nodes[p1].online = true;
    let online = sim.elapsed();
    assert!(sim.run_until_with(secs(60.0), |s| !s.sent(alice, "OPTIONS").is_empty()));
    sim.run_for(secs(0.015));
    sim.nodes[p1].online = false;
    // The REGISTER to the only better registrar waits for its transaction (Timer F, 32 s)
    // while the binding at the second stays.
    sim.run_for(secs(40.0));
    let names = names_after(&sim, alice, online);
    assert_eq!(names, [format!("failed {P1}")], "{names:?}");
    assert!(sim.core(alice).is_registered(tincan::phone::AccountId(0)));
    assert_eq!(
        sim.core(alice).registrars(tincan::phone::AccountId(0))[0].addr,
        addr(P2)
    );
}

#[test]
fn a_closed_or_silent_tcp_flow_is_replaced_over_a_new_connection() {
    let mut sim = Sim::new(17, NetConfig::perfect());
    let mut k = KeepAliveConfig::stream();
    k.interval = secs(5.0);
    let config = PhoneConfig {
        user: "alice".into(),
        keepalive: Some(k),
        ..PhoneConfig::default()
    };
    let alice = sim.add_phone_with(ALICE, config);
    sim.phone_mut(alice).connection = Some(ConnectionId(1));
    let _p1 = sim.add_proxy(P1);
    let mut a = outbound(&[P1]);
    a.transport = Some(Transport::Tcp);
    sim.add_account(alice, a);
    sim.run_for(secs(1.0));
    assert_eq!(
        names_after(&sim, alice, secs(0.0)),
        [format!("registered {P1}")]
    );

    // CRLF pings every 4-5 s on the connection the 200 came over, each answered.
    sim.run_for(secs(30.0));
    let pings: Vec<Duration> = sim
        .phone(alice)
        .flows
        .iter()
        .filter_map(|(t, f)| match f {
            FlowCommand::Ping { connection } if *connection == ConnectionId(1) => Some(*t),
            _ => None,
        })
        .collect();
    assert!(pings.len() >= 6, "{pings:?}");
    assert_eq!(names_after(&sim, alice, secs(0.0)).len(), 1);

    // The registrar closes the connection: a new REGISTER at once, over a new one.
    let closed = sim.elapsed();
    sim.phone_mut(alice).connection = Some(ConnectionId(2));
    sim.act(alice, |c, now| {
        c.handle_connection_closed(now, ConnectionId(1))
    });
    sim.run_for(secs(1.0));
    let (failed_at, failed) = first(&sim, alice, closed, &format!("flow_failed {P1}")).unwrap();
    assert!(
        matches!(
            failed,
            AccountEvent::FlowFailed {
                reason: FlowFailure::Closed,
                ..
            }
        ),
        "{failed:?}"
    );
    assert_eq!(failed_at, closed);
    let (recovered_at, _) = first(&sim, alice, closed, &format!("flow_recovered {P1}")).unwrap();
    assert!(recovered_at - closed <= secs(0.05));

    // The new connection goes silent: the missing pong gives it away within a ping and
    // 10 s; its connection is closed and the next one carries the new REGISTER.
    let silenced = sim.elapsed();
    sim.phone_mut(alice).pongs = false;
    sim.run_for(secs(16.0));
    let (failed_at, failed) =
        first(&sim, alice, silenced, &format!("flow_failed {P1}")).expect("flow_failed");
    assert!(
        matches!(
            failed,
            AccountEvent::FlowFailed {
                reason: FlowFailure::NoPong,
                ..
            }
        ),
        "{failed:?}"
    );
    assert!(failed_at - silenced <= secs(15.0));
    assert!(sim.phone(alice).flows.iter().any(|(t, f)| *t == failed_at
        && *f
            == FlowCommand::Close {
                connection: ConnectionId(2)
            }));
    assert_eq!(sim.phone(alice).connection, Some(ConnectionId(3)));
    assert!(first(&sim, alice, failed_at, &format!("flow_recovered {P1}")).is_some());
}
