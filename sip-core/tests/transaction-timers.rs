//! Every RFC 3261 / RFC 6026 transaction timer, in virtual time.

mod util;

use std::time::Duration;

use tincan_sip::endpoint::{EndpointConfig, Event};
use tincan_sip::message::{Method, response_to};
use tincan_sip::transport::Transport;
use util::{NetConfig, Sim, request, send_times};

const LOST_NON_INVITE: [f64; 11] = [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5];
const LOST_INVITE: [f64; 7] = [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5];

fn two_nodes(transport: Transport) -> (Sim, usize, usize) {
    let mut sim = Sim::new(
        7,
        NetConfig {
            delay: Duration::ZERO,
            ..NetConfig::perfect()
        },
    );
    let a = sim.add_node("127.0.0.1:5060", transport, EndpointConfig::default());
    let b = sim.add_node("127.0.0.1:5070", transport, EndpointConfig::default());
    (sim, a, b)
}

fn timeouts(sim: &Sim, node: usize) -> Vec<f64> {
    sim.nodes[node]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Timeout { .. }))
        .map(|(t, _)| t.as_secs_f64())
        .collect()
}

#[test]
fn lost_udp_non_invite_timer_e_and_f() {
    let (mut sim, a, b) = two_nodes(Transport::Udp);
    sim.nodes[a].online = false; // every datagram from A is lost
    let req = request(&sim, Method::Options, a, b, "c1", 1);
    let target = sim.target(b);
    sim.nodes[a].ep.send_request(sim.now, req, target).unwrap();
    sim.run_until(Duration::from_secs(60));
    assert_eq!(send_times(&sim.nodes[a], "OPTIONS"), LOST_NON_INVITE);
    assert_eq!(timeouts(&sim, a), [32.0]);
    assert_eq!(sim.nodes[a].ep.transaction_count(), 0);
}

#[test]
fn lost_udp_invite_timer_a_and_b() {
    let (mut sim, a, b) = two_nodes(Transport::Udp);
    sim.nodes[a].online = false;
    let req = request(&sim, Method::Invite, a, b, "c1", 1);
    let target = sim.target(b);
    sim.nodes[a].ep.send_request(sim.now, req, target).unwrap();
    sim.run_until(Duration::from_secs(60));
    assert_eq!(send_times(&sim.nodes[a], "INVITE"), LOST_INVITE);
    assert_eq!(timeouts(&sim, a), [32.0]);
}

#[test]
fn no_retransmissions_over_tcp() {
    let (mut sim, a, b) = two_nodes(Transport::Tcp);
    sim.nodes[a].online = false;
    for (m, c) in [(Method::Options, "c1"), (Method::Invite, "c2")] {
        let req = request(&sim, m, a, b, c, 1);
        let target = sim.target(b);
        sim.nodes[a].ep.send_request(sim.now, req, target).unwrap();
    }
    sim.run_until(Duration::from_secs(60));
    assert_eq!(send_times(&sim.nodes[a], "OPTIONS"), [0.0]);
    assert_eq!(send_times(&sim.nodes[a], "INVITE"), [0.0]);
    // Timers B and F still bound the wait on reliable transports.
    assert_eq!(timeouts(&sim, a), [32.0, 32.0]);
}

/// B answers every new request with `status` (INVITE first gets nothing: the 100 comes by
/// itself), A's TU ACKs nothing.
fn answer_all(sim: &mut Sim, b: usize, status: u16) {
    let events = std::mem::take(&mut sim.nodes[b].events);
    for (_, e) in events {
        if let Event::Request {
            transaction: Some(tx),
            request,
            ..
        } = e
        {
            let mut resp = response_to(&request, status, None);
            resp.set_to_tag("totag");
            sim.nodes[b].ep.send_response(sim.now, tx, resp).unwrap();
        }
    }
}

#[test]
fn non_2xx_final_retransmitted_by_timer_g_until_timer_h() {
    let (mut sim, a, b) = two_nodes(Transport::Udp);
    let req = request(&sim, Method::Invite, a, b, "c1", 1);
    let target = sim.target(b);
    sim.nodes[a].ep.send_request(sim.now, req, target).unwrap();
    sim.run_until(Duration::ZERO);
    answer_all(&mut sim, b, 486);
    // The caller's ACKs are lost: B keeps resending its 486.
    sim.nodes[a].online = false;
    sim.run_until(Duration::from_secs(60));
    assert_eq!(
        send_times(&sim.nodes[b], "SIP/2.0 486"),
        [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    let ack_timeouts: Vec<f64> = sim.nodes[b]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::AckTimeout { .. }))
        .map(|(t, _)| t.as_secs_f64())
        .collect();
    assert_eq!(ack_timeouts, [32.0]);
    assert_eq!(sim.nodes[b].ep.transaction_count(), 0);
}

#[test]
fn ack_stops_timer_g_then_timer_i_and_timer_d() {
    let (mut sim, a, b) = two_nodes(Transport::Udp);
    let req = request(&sim, Method::Invite, a, b, "c1", 1);
    let target = sim.target(b);
    sim.nodes[a].ep.send_request(sim.now, req, target).unwrap();
    sim.run_until(Duration::ZERO);
    answer_all(&mut sim, b, 486);
    sim.run_until(Duration::from_secs(60));
    assert_eq!(send_times(&sim.nodes[b], "SIP/2.0 486"), [0.0]);
    assert_eq!(send_times(&sim.nodes[a], "ACK"), [0.0]);
    // Timer I (T4) ends B's transaction at 5 s, Timer D (32 s) A's.
    let term = |n: usize| -> Vec<f64> {
        sim.nodes[n]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Terminated { .. }))
            .map(|(t, _)| t.as_secs_f64())
            .collect()
    };
    assert_eq!(term(b), [5.0]);
    assert_eq!(term(a), [32.0]);
}

#[test]
fn uas_retransmits_2xx_until_ack() {
    let (mut sim, a, b) = two_nodes(Transport::Udp);
    let req = request(&sim, Method::Invite, a, b, "c1", 1);
    let target = sim.target(b);
    sim.nodes[a].ep.send_request(sim.now, req, target).unwrap();
    sim.run_until(Duration::ZERO);
    answer_all(&mut sim, b, 200);
    // No ACK at all: the 2xx goes out per §13.3.1.4 and the UAS gives up at 64*T1.
    sim.run_until(Duration::from_secs(60));
    assert_eq!(
        send_times(&sim.nodes[b], "SIP/2.0 200"),
        [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    );
    assert!(
        sim.nodes[b]
            .events
            .iter()
            .any(|(t, e)| matches!(e, Event::AckTimeout { .. }) && *t == Duration::from_secs(32))
    );
    // The caller's transaction passed every 2xx up (RFC 6026 Accepted) and ended by Timer M.
    let responses = sim.nodes[a]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Response { .. }))
        .count();
    // Every copy of the 2xx reaches A's TU (it would ACK each) before Timer M ends at 32 s.
    assert_eq!(responses, 11);
}

#[test]
fn ack_for_2xx_stops_retransmission() {
    let (mut sim, a, b) = two_nodes(Transport::Udp);
    let req = request(&sim, Method::Invite, a, b, "c1", 1);
    let target = sim.target(b);
    sim.nodes[a]
        .ep
        .send_request(sim.now, req, target.clone())
        .unwrap();
    sim.run_until(Duration::ZERO);
    answer_all(&mut sim, b, 200);
    sim.run_until(Duration::from_secs(2));
    // The caller ACKs at 2 s (after two retransmissions).
    let ack = request(&sim, Method::Ack, a, b, "c1", 1);
    sim.nodes[a].ep.send_ack(ack, target).unwrap();
    sim.run_until(Duration::from_secs(60));
    assert_eq!(send_times(&sim.nodes[b], "SIP/2.0 200"), [0.0, 0.5, 1.5]);
    assert!(sim.nodes[b].events.iter().any(|(_, e)| matches!(
        e,
        Event::Request {
            transaction: None,
            ..
        }
    )));
    assert!(
        !sim.nodes[b]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::AckTimeout { .. }))
    );
    // Timer L ends the server transaction at 64*T1.
    assert_eq!(sim.nodes[b].ep.transaction_count(), 0);
}

#[test]
fn trying_after_200ms_and_provisional_retransmission() {
    let (mut sim, a, b) = two_nodes(Transport::Udp);
    let req = request(&sim, Method::Invite, a, b, "c1", 1);
    let target = sim.target(b);
    sim.nodes[a].ep.send_request(sim.now, req, target).unwrap();
    sim.run_until(Duration::from_secs(3));
    let trying = send_times(&sim.nodes[b], "SIP/2.0 100");
    assert_eq!(trying[0], 0.2);
    // The INVITE was resent at 0.5? No: the 100 reached A first and stopped Timer A.
    assert_eq!(send_times(&sim.nodes[a], "INVITE"), [0.0]);
}

#[test]
fn timer_j_absorbs_retransmitted_requests() {
    let (mut sim, a, b) = two_nodes(Transport::Udp);
    let req = request(&sim, Method::Options, a, b, "c1", 1);
    let target = sim.target(b);
    sim.nodes[a].ep.send_request(sim.now, req, target).unwrap();
    sim.run_until(Duration::ZERO);
    sim.nodes[b].online = false; // B's 200 is lost: A retransmits, B resends its final
    answer_all(&mut sim, b, 200);
    sim.run_until(Duration::from_secs(2));
    sim.nodes[b].online = true;
    sim.run_until(Duration::from_secs(60));
    assert_eq!(
        send_times(&sim.nodes[b], "SIP/2.0 200"),
        [0.0, 0.5, 1.5, 3.5]
    );
    let requests = sim.nodes[b]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Request { .. }))
        .count();
    // answer_all took the first Request event; the retransmissions never reached the TU.
    assert_eq!(requests, 0, "retransmissions are not passed up");
    let finals: Vec<f64> = sim.nodes[a]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Response { .. }))
        .map(|(t, _)| t.as_secs_f64())
        .collect();
    assert_eq!(finals, [3.5]);
    // Timer K: A's transaction ends T4 after its final; Timer J: B's 64*T1 after its final.
    assert_eq!(sim.nodes[a].ep.transaction_count(), 0);
    assert_eq!(sim.nodes[b].ep.transaction_count(), 0);
}

#[test]
fn cancel_gets_200_and_the_invite_487() {
    let (mut sim, a, b) = two_nodes(Transport::Udp);
    let req = request(&sim, Method::Invite, a, b, "c1", 1);
    let target = sim.target(b);
    let invite = sim.nodes[a].ep.send_request(sim.now, req, target).unwrap();
    // CANCEL before any provisional waits for one (§9.1).
    assert_eq!(sim.nodes[a].ep.cancel(sim.now, invite).unwrap(), None);
    sim.run_until(Duration::from_secs(40));
    assert_eq!(send_times(&sim.nodes[a], "CANCEL").len(), 1);
    assert_eq!(send_times(&sim.nodes[b], "SIP/2.0 487").len(), 1);
    assert!(
        sim.nodes[b]
            .events
            .iter()
            .any(|(_, e)| matches!(e, Event::Cancelled { .. }))
    );
    let statuses: Vec<u16> = sim.nodes[a]
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Response { response, .. } => response.status(),
            _ => None,
        })
        .collect();
    assert!(
        statuses.contains(&200) && statuses.contains(&487),
        "{statuses:?}"
    );
    assert_eq!(send_times(&sim.nodes[a], "ACK").len(), 1);
}
