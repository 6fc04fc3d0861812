//! Thousands of transactions between two endpoints through a seeded lossy network (30% loss
//! both ways, duplication, reordering): each one completes or times out at exactly 64*T1,
//! no state leaks, and the same seed gives the same trace.

mod util;

use std::collections::HashMap;
use std::time::Duration;

use tincan_sip::endpoint::{EndpointConfig, Event};
use tincan_sip::message::{Method, response_to};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::Transport;
use util::{NetConfig, Sim, request};

const TRANSACTIONS: usize = 2000;

struct Outcome {
    completed: usize,
    timed_out: usize,
    trace_hash: u64,
}

fn run(seed: u64) -> Outcome {
    let net = NetConfig {
        loss: 0.30,
        duplicate: 0.05,
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(80),
    };
    let mut sim = Sim::new(seed, net);
    let a = sim.add_node("127.0.0.1:5060", Transport::Udp, EndpointConfig::default());
    let b = sim.add_node("127.0.0.1:5070", Transport::Udp, EndpointConfig::default());
    let target = sim.target(b);
    // Start times spread over 10 s; half INVITE, half non-INVITE.
    let mut started: HashMap<TransactionId, (Duration, Method)> = HashMap::new();
    let mut finals: HashMap<TransactionId, Duration> = HashMap::new();
    let mut timeouts: HashMap<TransactionId, Duration> = HashMap::new();
    let mut next = 0usize;
    let step = Duration::from_millis(5);
    let end = Duration::from_secs(120);
    while sim.elapsed() < end {
        while next < TRANSACTIONS && step * next as u32 <= sim.elapsed() {
            let method = if next.is_multiple_of(2) {
                Method::Invite
            } else {
                Method::Message
            };
            let req = request(&sim, method.clone(), a, b, &format!("call{next}"), 1);
            let at = sim.elapsed();
            let tx = sim.nodes[a]
                .ep
                .send_request(sim.now, req, target.clone())
                .unwrap();
            started.insert(tx, (at, method));
            next += 1;
        }
        let horizon = if next < TRANSACTIONS {
            sim.elapsed() + step
        } else {
            end
        };
        sim.run_with(horizon, |sim, node, t, event| match (node, event) {
            (
                1,
                Event::Request {
                    transaction: Some(tx),
                    request,
                    ..
                },
            ) => {
                let mut resp = response_to(&request, 200, None);
                resp.set_to_tag("b");
                sim.nodes[1].ep.send_response(sim.now, tx, resp).unwrap();
            }
            (
                0,
                Event::Response {
                    transaction,
                    response,
                },
            ) if response.status().unwrap() >= 200 => {
                finals.entry(transaction).or_insert(t);
                if response.cseq().unwrap().unwrap().method == Method::Invite {
                    // The TU ACKs every 2xx (§13.2.2.4).
                    let call_id = response.call_id().unwrap().unwrap().as_str().to_owned();
                    let mut ack = request(sim, Method::Ack, 0, 1, &call_id, 1);
                    ack.set_header(
                        tincan_sip::message::HeaderName::To,
                        response
                            .header(tincan_sip::message::HeaderName::To)
                            .unwrap(),
                    );
                    let target = sim.target(1);
                    sim.nodes[0].ep.send_ack(ack, target).unwrap();
                }
            }
            (0, Event::Timeout { transaction }) => {
                timeouts.insert(transaction, t);
            }
            _ => {}
        });
    }
    let timer_64t1 = Duration::from_secs(32);
    for (tx, (at, method)) in &started {
        match (finals.get(tx), timeouts.get(tx)) {
            (Some(_), None) => {}
            (None, Some(t)) => assert_eq!(
                *t - *at,
                timer_64t1,
                "{tx} ({method}) timed out at the wrong time"
            ),
            other => panic!("{tx} ({method}) started at {at:?}: {other:?}"),
        }
    }
    assert_eq!(
        sim.nodes[a].ep.transaction_count(),
        0,
        "client state leaked"
    );
    assert_eq!(
        sim.nodes[b].ep.transaction_count(),
        0,
        "server state leaked"
    );
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    sim.trace.hash(&mut h);
    Outcome {
        completed: finals.len(),
        timed_out: timeouts.len(),
        trace_hash: h.finish(),
    }
}

#[test]
fn thirty_percent_loss_every_transaction_completes_or_times_out_on_time() {
    let first = run(42);
    assert_eq!(first.completed + first.timed_out, TRANSACTIONS);
    // With 30% loss each way and 11 (non-INVITE) or 7 (INVITE) tries, nearly all complete.
    assert!(
        first.completed > TRANSACTIONS * 95 / 100,
        "{} completed",
        first.completed
    );
    println!(
        "{} completed, {} timed out",
        first.completed, first.timed_out
    );
    let again = run(42);
    assert_eq!(first.trace_hash, again.trace_hash, "same seed, same trace");
    let other = run(43);
    assert_ne!(first.trace_hash, other.trace_hash);
}
