//! RFC 6665 end to end in virtual time: the subscriber (`dialog::subscription`) on node 0,
//! notifiers (`dialog::notifier`) on nodes 1 and 2, every request in the endpoint's
//! transactions over the seeded simulated network. Refresh and expiry, NOTIFYs lost (one
//! deterministically, then 30 % loss) and retransmitted by the non-INVITE transaction,
//! and a SUBSCRIBE forked to two notifiers giving two subscriptions (§4.1.2.4).

mod util;

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tincan_sip::dialog::notifier::{Notifier, NotifierConfig, NotifierEvent, NotifierStatus};
use tincan_sip::dialog::subscription::{
    Subscription, SubscriptionConfig, SubscriptionEvent, SubscriptionStatus,
};
use tincan_sip::endpoint::{EndpointConfig, Event};
use tincan_sip::message::{Message, Method, response_to};
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::Transport;
use util::ua::node_of;
use util::{NetConfig, Sim, Tu, request, send_times};

const BODY_TYPE: &str = "application/dialog-info+xml";

/// Who sent a request in a client transaction.
#[derive(Clone, Copy)]
enum Owner {
    Subscription(usize),
    Notifier(usize),
}

/// The transaction user of every node: node 0 subscribes, nodes 1.. notify.
struct Harness {
    subscriptions: Vec<Subscription>,
    /// (node, notifier)
    notifiers: Vec<(usize, Notifier)>,
    /// Take a second fork's NOTIFY as a subscription of its own (else 481 it).
    keep_forks: bool,
    /// Also deliver the initial SUBSCRIBE that reaches node 1 to node 2 (a forking proxy).
    fork_to: Option<usize>,
    out: HashMap<(usize, TransactionId), (Owner, Message)>,
    /// (seconds, subscription, event)
    reports: Vec<(f64, usize, SubscriptionEvent)>,
    /// (seconds, notifier, event)
    ended: Vec<(f64, usize, NotifierEvent)>,
    /// Every answer node 0 gave a NOTIFY.
    notify_answers: Vec<u16>,
    granted: u32,
}

impl Harness {
    fn new(sim: &Sim, expires: u32, granted: u32) -> Harness {
        let subscribe = request(sim, Method::Subscribe, 0, 1, "w1", 1);
        let s = Subscription::new(
            sim.now,
            SubscriptionConfig {
                event: "dialog".to_owned(),
                accept: Some(BODY_TYPE.to_owned()),
                expires,
            },
            subscribe,
        );
        Harness {
            subscriptions: vec![s],
            notifiers: Vec::new(),
            keep_forks: true,
            fork_to: None,
            out: HashMap::new(),
            reports: Vec::new(),
            ended: Vec::new(),
            notify_answers: Vec::new(),
            granted,
        }
    }

    /// Sends what the machines queued and collects their events.
    fn flush(&mut self, sim: &mut Sim) {
        let at = sim.elapsed().as_secs_f64();
        for i in 0..self.subscriptions.len() {
            while let Some(r) = self.subscriptions[i].poll_request() {
                let to = if r.to().unwrap().unwrap().tag().is_none() {
                    1
                } else {
                    node_of(sim, &r.uri().unwrap().into_owned()).expect("a node")
                };
                let target = sim.target(to);
                let tx = sim.nodes[0]
                    .ep
                    .send_request(sim.now, r.clone(), target)
                    .unwrap();
                self.out.insert((0, tx), (Owner::Subscription(i), r));
            }
            while let Some(e) = self.subscriptions[i].poll_event() {
                self.reports.push((at, i, e));
            }
        }
        for i in 0..self.notifiers.len() {
            let node = self.notifiers[i].0;
            while let Some(r) = self.notifiers[i].1.poll_request() {
                let hop = self.notifiers[i].1.next_hop();
                let to = node_of(sim, &hop).expect("the subscriber's node");
                let target = sim.target(to);
                let tx = sim.nodes[node]
                    .ep
                    .send_request(sim.now, r.clone(), target)
                    .unwrap();
                self.out.insert((node, tx), (Owner::Notifier(i), r));
            }
            while let Some(e) = self.notifiers[i].1.poll_event() {
                self.ended.push((at, i, e));
            }
        }
        sim.drain();
    }

    fn notifier_config(&self) -> NotifierConfig {
        NotifierConfig {
            max_expires: self.granted,
            ..NotifierConfig::new("dialog")
        }
    }

    fn on_request(&mut self, sim: &mut Sim, node: usize, tx: TransactionId, request: Message) {
        let now = sim.now;
        let answer = match request.method() {
            Some(Method::Subscribe) if node > 0 => {
                if let Some(n) = self
                    .notifiers
                    .iter_mut()
                    .find(|(at, n)| *at == node && n.matches(&request))
                {
                    n.1.handle_subscribe(now, &request)
                } else if request.to().unwrap().unwrap().tag().is_some() {
                    response_to(&request, 481, None)
                } else {
                    if node == 1
                        && let Some(other) = self.fork_to
                    {
                        sim.inject(0, other, request.to_bytes());
                    }
                    let contact = format!("<sip:bob@{}>", sim.nodes[node].addr);
                    match Notifier::accept(
                        now,
                        self.notifier_config(),
                        &request,
                        &format!("n{node}"),
                        &contact,
                        true,
                        Some((BODY_TYPE.to_owned(), Bytes::from(format!("v0 of {node}")))),
                    ) {
                        Ok((n, ok)) => {
                            self.notifiers.push((node, n));
                            ok
                        }
                        Err(refusal) => *refusal,
                    }
                }
            }
            Some(Method::Notify) if node == 0 => {
                let mut status = 481;
                if let Some(s) = self
                    .subscriptions
                    .iter_mut()
                    .find(|s| s.matches_notify(&request) && !s.is_fork(&request))
                {
                    status = s.handle_notify(now, &request).status;
                } else if let Some(s) = self.subscriptions.iter_mut().find(|s| s.is_fork(&request))
                {
                    if self.keep_forks
                        && let Some(mut f) = s.fork(now, &request)
                    {
                        status = f.handle_notify(now, &request).status;
                        self.subscriptions.push(f);
                    } else {
                        status = s.handle_notify(now, &request).status;
                    }
                }
                self.notify_answers.push(status);
                response_to(&request, status, None)
            }
            _ => response_to(&request, 405, None),
        };
        sim.nodes[node].ep.send_response(now, tx, answer).unwrap();
    }
}

impl Tu for Harness {
    fn on_event(&mut self, sim: &mut Sim, node: usize, _at: Duration, event: Event) {
        let now = sim.now;
        match event {
            Event::Request {
                transaction: Some(tx),
                request,
                ..
            } => self.on_request(sim, node, tx, request),
            Event::Response {
                transaction,
                response,
            } => {
                if response.status().unwrap_or(0) < 200 {
                    return;
                }
                if let Some((owner, request)) = self.out.remove(&(node, transaction)) {
                    match owner {
                        Owner::Subscription(i) => {
                            self.subscriptions[i].handle_response(now, &request, &response)
                        }
                        Owner::Notifier(i) => self.notifiers[i].1.handle_response(now, &response),
                    }
                }
            }
            Event::Timeout { transaction } | Event::TransportError { transaction } => {
                if let Some((owner, request)) = self.out.remove(&(node, transaction)) {
                    match owner {
                        Owner::Subscription(i) => {
                            self.subscriptions[i].handle_failure(now, &request)
                        }
                        Owner::Notifier(i) => self.notifiers[i].1.handle_failure(now),
                    }
                }
            }
            _ => {}
        }
        self.flush(sim);
    }

    fn poll_timeout(&mut self) -> Option<Instant> {
        let subs = self
            .subscriptions
            .iter()
            .filter_map(Subscription::poll_timeout);
        let nots = self.notifiers.iter().filter_map(|(_, n)| n.poll_timeout());
        subs.chain(nots).min()
    }

    fn handle_timeout(&mut self, sim: &mut Sim) {
        for s in &mut self.subscriptions {
            if s.poll_timeout().is_some_and(|t| t <= sim.now) {
                s.handle_timeout(sim.now);
            }
        }
        for (_, n) in &mut self.notifiers {
            n.handle_timeout(sim.now);
        }
        self.flush(sim);
    }
}

fn sim(seed: u64, net: NetConfig, nodes: usize) -> Sim {
    let mut sim = Sim::new(seed, net);
    for i in 0..nodes {
        sim.add_node(
            &format!("127.0.0.{}:5060", i + 1),
            Transport::Udp,
            EndpointConfig {
                methods: vec![Method::Subscribe, Method::Notify],
                ..EndpointConfig::default()
            },
        );
    }
    sim
}

fn start(sim: &mut Sim, h: &mut Harness) {
    h.flush(sim);
}

/// The times are these, to the simulation's 10 ms steps.
fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} != {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 0.005, "{got:?} != {want:?}");
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// The bodies node 0 was told, in order.
fn bodies(h: &Harness, sub: usize) -> Vec<String> {
    h.reports
        .iter()
        .filter(|(_, i, _)| *i == sub)
        .filter_map(|(_, _, e)| match e {
            SubscriptionEvent::Notify { body, .. } => {
                Some(String::from_utf8_lossy(body).into_owned())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn refreshes_keep_it_and_expiry_ends_it_with_a_final_notify() {
    let mut sim = sim(1, NetConfig::perfect(), 2);
    // Asks an hour, is granted two minutes: refreshes at 120 - 32 s.
    let mut h = Harness::new(&sim, 3600, 120);
    start(&mut sim, &mut h);
    sim.run_tu(secs(100.0), &mut h);
    // A state change NOTIFYs at once.
    let now = sim.now;
    h.notifiers[0]
        .1
        .set_content(now, BODY_TYPE, Bytes::from_static(b"v1"));
    h.flush(&mut sim);
    sim.run_tu(secs(300.0), &mut h);
    // The first and its refreshes, 32 s before the granted 120 s run out: 88 s after the
    // 200 (at 0.02 s), then after the NOTIFY of 100 s, which said `expires=108` (whole
    // seconds left) and so moved the next one to 176.01 s.
    close(
        &send_times(&sim.nodes[0], "SUBSCRIBE"),
        &[0.0, 88.02, 176.01, 264.03],
    );
    // NOTIFYs: at once, on the change, and after each refresh; all answered 200.
    close(
        &send_times(&sim.nodes[1], "NOTIFY"),
        &[0.01, 88.03, 100.0, 176.02, 264.04],
    );
    assert!(h.notify_answers.iter().all(|s| *s == 200));
    assert_eq!(bodies(&h, 0).last().map(String::as_str), Some("v1"));
    assert_eq!(h.subscriptions[0].status(), SubscriptionStatus::Active);

    // The subscriber goes silent (its SUBSCRIBEs lost): the notifier ends it at the expiry,
    // 120 s after the last refresh, with `terminated;reason=timeout`.
    let silent = Rc::new(Cell::new(true));
    let s = silent.clone();
    sim.drop_if = Some(Box::new(move |from, _, line| {
        s.get() && from == 0 && line.starts_with("SUBSCRIBE")
    }));
    sim.run_tu(secs(400.0), &mut h);
    let ended: Vec<_> = h.ended.iter().map(|(_, i, e)| (*i, e.clone())).collect();
    assert_eq!(
        ended,
        vec![(
            0,
            NotifierEvent::Terminated {
                reason: "timeout".to_owned()
            }
        )]
    );
    let last_refresh = 264.04;
    close(
        &send_times(&sim.nodes[1], "NOTIFY")[5..],
        &[last_refresh + 120.0],
    );
    assert_eq!(h.notifiers[0].1.status(), NotifierStatus::Done);
    assert!(
        h.reports.iter().any(|(t, _, e)| *t > 384.0
            && matches!(
                e,
                SubscriptionEvent::Notify {
                    state: SubscriptionStatus::Terminated,
                    ..
                }
            )),
        "the subscriber heard the final NOTIFY"
    );
}

#[test]
fn a_lost_notify_is_retransmitted_and_delivered_once() {
    let mut sim = sim(2, NetConfig::perfect(), 2);
    let first = Rc::new(Cell::new(true));
    let f = first.clone();
    sim.drop_if = Some(Box::new(move |from, _, line| {
        if from == 1 && line.starts_with("NOTIFY") && f.get() {
            f.set(false);
            return true;
        }
        false
    }));
    let mut h = Harness::new(&sim, 600, 600);
    start(&mut sim, &mut h);
    sim.run_tu(secs(10.0), &mut h);
    // Timer E: sent at 0.01 (lost), again 0.5 s later.
    assert_eq!(send_times(&sim.nodes[1], "NOTIFY"), vec![0.01, 0.51]);
    assert_eq!(bodies(&h, 0), vec!["v0 of 1"]);
    assert_eq!(h.notify_answers, vec![200]);
    assert_eq!(h.subscriptions[0].status(), SubscriptionStatus::Active);
}

#[test]
fn at_30_percent_loss_every_state_arrives() {
    let mut retransmitted = 0;
    for seed in 1..=20 {
        let net = NetConfig {
            loss: 0.3,
            ..NetConfig::perfect()
        };
        let mut sim = sim(seed, net, 2);
        let mut h = Harness::new(&sim, 600, 600);
        start(&mut sim, &mut h);
        sim.run_tu(secs(60.0), &mut h);
        assert_eq!(
            h.notifiers.len(),
            1,
            "seed {seed}: the SUBSCRIBE got through"
        );
        for v in 1..=5 {
            let now = sim.now;
            h.notifiers[0]
                .1
                .set_content(now, BODY_TYPE, Bytes::from(format!("v{v}")));
            h.flush(&mut sim);
            sim.run_tu(secs(60.0 + 40.0 * f64::from(v)), &mut h);
        }
        let told = bodies(&h, 0);
        assert_eq!(
            told.last().map(String::as_str),
            Some("v5"),
            "seed {seed}: {told:?}"
        );
        for v in 1..=5 {
            assert!(told.contains(&format!("v{v}")), "seed {seed}: {told:?}");
        }
        assert!(h.ended.is_empty(), "seed {seed}: no NOTIFY timed out");
        let sends = send_times(&sim.nodes[1], "NOTIFY").len();
        retransmitted += sends.saturating_sub(told.len());
    }
    assert!(
        retransmitted > 10,
        "losses were retransmitted: {retransmitted}"
    );
}

#[test]
fn a_forked_subscribe_gives_two_subscriptions() {
    let mut sim = sim(3, NetConfig::perfect(), 3);
    let mut h = Harness::new(&sim, 120, 120);
    h.fork_to = Some(2);
    start(&mut sim, &mut h);
    sim.run_tu(secs(1.0), &mut h);
    assert_eq!(h.notifiers.len(), 2, "both forks accepted it");
    assert_eq!(h.subscriptions.len(), 2, "one subscription per fork");
    assert_eq!(h.notify_answers, vec![200, 200]);
    let mut told = vec![bodies(&h, 0), bodies(&h, 1)];
    told.sort();
    assert_eq!(told, vec![vec!["v0 of 1"], vec!["v0 of 2"]]);
    assert!(h.subscriptions[1].is_forked());
    // Each refreshes in its own dialog, to its own notifier; each notifier's changes reach
    // the subscriber.
    sim.run_tu(secs(100.0), &mut h);
    let refreshes = |node: usize| {
        sim.trace
            .iter()
            .filter(|l| l.contains(&format!("0->{node} SUBSCRIBE")))
            .count()
    };
    // The (forked) first and one refresh each.
    assert_eq!((refreshes(1), refreshes(2)), (2, 2), "{:?}", sim.trace);
    for (i, (_, n)) in h.notifiers.iter_mut().enumerate() {
        n.set_content(sim.now, BODY_TYPE, Bytes::from(format!("change {i}")));
    }
    h.flush(&mut sim);
    sim.run_tu(secs(110.0), &mut h);
    let all: Vec<String> = (0..2).flat_map(|i| bodies(&h, i)).collect();
    assert!(all.contains(&"change 0".to_owned()) && all.contains(&"change 1".to_owned()));
    // Unsubscribing both ends both notifiers.
    for s in &mut h.subscriptions {
        s.unsubscribe(sim.now);
    }
    h.flush(&mut sim);
    sim.run_tu(secs(120.0), &mut h);
    assert!(
        h.notifiers
            .iter()
            .all(|(_, n)| n.status() == NotifierStatus::Done)
    );
    assert!(
        h.subscriptions
            .iter()
            .all(|s| s.status() == SubscriptionStatus::Done)
    );

    // Without keeping forks, the second fork's NOTIFY is answered 481 and that notifier
    // ends its subscription (§4.1.3).
    let mut sim = self::sim(3, NetConfig::perfect(), 3);
    let mut h = Harness::new(&sim, 120, 120);
    h.fork_to = Some(2);
    h.keep_forks = false;
    start(&mut sim, &mut h);
    sim.run_tu(secs(1.0), &mut h);
    assert_eq!(h.subscriptions.len(), 1);
    assert_eq!(h.notify_answers, vec![200, 481]);
    assert_eq!(h.ended.len(), 1);
}
