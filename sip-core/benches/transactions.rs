//! Transactions per second through the sans-IO core alone: two [`Endpoint`]s wired back to
//! back in memory (no sockets, no threads), each message serialized by one and parsed by the
//! other, as on the wire.
//!
//! ```text
//! cargo bench -p tincan-sip --bench transactions
//! ```
//!
//! - `call`: one iteration is a whole call, INVITE / 180 / 200 / ACK / BYE / 200 (two
//!   transactions and an ACK, six messages), with the caller and the callee both in the
//!   loop: the figure in elements/s is calls per second for the pair.
//! - `options`: one iteration is an OPTIONS / 200 transaction: transactions per second.
//!
//! Virtual time advances 1 ms per iteration and both endpoints' timers run every iteration,
//! so finished transactions are removed when their RFC timers (Timer K, J, L: up to 64*T1 =
//! 32 s) expire: in the steady state each endpoint holds about 32 s of past transactions, as
//! a loaded server does. docs/benchmarks-transactions.md has the figures.

// Benchmarks take one real instant as the epoch of virtual time.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_core::SeedableRng;
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
use tincan_sip::message::{HeaderName, Message, Method, RequestBuilder, Uri, response_to};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::{Received, Target, Transport};

/// A caller and a callee connected by an in-memory UDP "network".
struct Pair {
    now: Instant,
    caller: Endpoint,
    callee: Endpoint,
    caller_addr: SocketAddr,
    callee_addr: SocketAddr,
    uri: Uri<'static>,
    calls: u64,
}

impl Pair {
    fn new() -> Pair {
        let caller_addr: SocketAddr = "127.0.0.1:5070".parse().expect("literal address");
        let callee_addr: SocketAddr = "127.0.0.1:5060".parse().expect("literal address");
        let mut caller = Endpoint::new(
            EndpointConfig::default(),
            Box::new(XorShiftRng::seed_from_u64(1)),
        );
        caller.add_local_address(Transport::Udp, caller_addr);
        let mut callee = Endpoint::new(
            EndpointConfig::default(),
            Box::new(XorShiftRng::seed_from_u64(2)),
        );
        callee.add_local_address(Transport::Udp, callee_addr);
        Pair {
            now: Instant::now(),
            caller,
            callee,
            caller_addr,
            callee_addr,
            uri: Uri::parse("sip:service@127.0.0.1:5060")
                .expect("literal URI")
                .into_owned(),
            calls: 0,
        }
    }

    fn target(&self) -> Target {
        Target::new(Transport::Udp, self.callee_addr)
    }

    /// Delivers everything the caller sent to the callee and back, until quiet.
    fn exchange(&mut self) {
        loop {
            let mut moved = false;
            while let Some(t) = self.caller.poll_transmit() {
                moved = true;
                self.callee.handle_received(
                    self.now,
                    Received {
                        transport: Transport::Udp,
                        source: self.caller_addr,
                        local: self.callee_addr,
                        connection: None,
                        payload: t.payload,
                        arrived: None,
                    },
                );
            }
            while let Some(t) = self.callee.poll_transmit() {
                moved = true;
                self.caller.handle_received(
                    self.now,
                    Received {
                        transport: Transport::Udp,
                        source: self.callee_addr,
                        local: self.caller_addr,
                        connection: None,
                        payload: t.payload,
                        arrived: None,
                    },
                );
            }
            if !moved {
                return;
            }
        }
    }

    /// The callee's TU: the next request, with its server transaction.
    fn callee_request(&mut self) -> (Option<TransactionId>, Message) {
        while let Some(e) = self.callee.poll_event() {
            if let Event::Request {
                transaction,
                request,
                ..
            } = e
            {
                return (transaction, request);
            }
        }
        panic!("the callee got no request");
    }

    /// The caller's TU: the statuses of the responses received so far.
    fn caller_statuses(&mut self) -> Vec<u16> {
        let mut out = Vec::new();
        while let Some(e) = self.caller.poll_event() {
            if let Event::Response { response, .. } = e {
                out.push(response.status().expect("a response has a status"));
            }
        }
        out
    }

    fn request(&self, method: Method, call_id: &str, cseq: u32, to_tag: Option<&str>) -> Message {
        let to = match to_tag {
            Some(tag) => format!("<sip:service@127.0.0.1>;tag={tag}"),
            None => "<sip:service@127.0.0.1>".to_owned(),
        };
        RequestBuilder::new(method, &self.uri)
            .header(HeaderName::From, "<sip:bench@127.0.0.1>;tag=caller")
            .header(HeaderName::To, &to)
            .call_id(call_id)
            .cseq(cseq)
            .header(HeaderName::Contact, "<sip:bench@127.0.0.1:5070>")
            .build()
    }

    /// Moves virtual time on and runs both endpoints' timers.
    fn tick(&mut self) {
        self.now += Duration::from_millis(1);
        self.caller.handle_timeout(self.now);
        self.callee.handle_timeout(self.now);
        // Retransmissions and Terminated events.
        self.exchange();
        while self.caller.poll_event().is_some() {}
        while self.callee.poll_event().is_some() {}
    }

    /// INVITE / 180 / 200 / ACK / BYE / 200.
    fn call(&mut self) {
        self.calls += 1;
        let call_id = format!("bench-{}", self.calls);
        let invite = self.request(Method::Invite, &call_id, 1, None);
        self.caller
            .send_request(self.now, invite, self.target())
            .expect("the caller sends the INVITE");
        self.exchange();
        let (tx, invite) = self.callee_request();
        let tx = tx.expect("an INVITE has a server transaction");
        let mut ringing = response_to(&invite, 180, None);
        ringing.set_to_tag("callee");
        self.callee
            .send_response(self.now, tx, ringing)
            .expect("the callee sends 180");
        let mut ok = response_to(&invite, 200, None);
        ok.set_to_tag("callee");
        ok.push_header(HeaderName::Contact, "<sip:service@127.0.0.1:5060>");
        self.callee
            .send_response(self.now, tx, ok)
            .expect("the callee sends 200");
        self.exchange();
        assert_eq!(self.caller_statuses(), [180, 200]);
        let ack = self.request(Method::Ack, &call_id, 1, Some("callee"));
        self.caller
            .send_ack(ack, self.target())
            .expect("the caller ACKs");
        self.exchange();
        let (none, _) = self.callee_request();
        assert!(none.is_none(), "the ACK of a 2xx has no transaction");
        let bye = self.request(Method::Bye, &call_id, 2, Some("callee"));
        self.caller
            .send_request(self.now, bye, self.target())
            .expect("the caller sends BYE");
        self.exchange();
        let (tx, bye) = self.callee_request();
        let ok = response_to(&bye, 200, None);
        self.callee
            .send_response(self.now, tx.expect("a BYE has a transaction"), ok)
            .expect("the callee answers BYE");
        self.exchange();
        assert_eq!(self.caller_statuses(), [200]);
        self.tick();
    }

    /// OPTIONS / 200.
    fn options(&mut self) {
        self.calls += 1;
        let call_id = format!("options-{}", self.calls);
        let options = self.request(Method::Options, &call_id, 1, None);
        self.caller
            .send_request(self.now, options, self.target())
            .expect("the caller sends OPTIONS");
        self.exchange();
        let (tx, options) = self.callee_request();
        let mut ok = response_to(&options, 200, None);
        ok.set_to_tag("callee");
        self.callee
            .send_response(self.now, tx.expect("OPTIONS has a transaction"), ok)
            .expect("the callee answers OPTIONS");
        self.exchange();
        assert_eq!(self.caller_statuses(), [200]);
        self.tick();
    }
}

fn transactions(c: &mut Criterion) {
    let mut group = c.benchmark_group("transactions");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(10));

    let mut pair = Pair::new();
    group.bench_function("call", |b| b.iter(|| pair.call()));
    eprintln!(
        "call: after {} calls the endpoints hold {} + {} transactions",
        pair.calls,
        pair.caller.transaction_count(),
        pair.callee.transaction_count()
    );

    let mut pair = Pair::new();
    group.bench_function("options", |b| b.iter(|| pair.options()));
    black_box(pair.callee.stats());
    eprintln!(
        "options: after {} transactions the endpoints hold {} + {} transactions",
        pair.calls,
        pair.caller.transaction_count(),
        pair.callee.transaction_count()
    );
    group.finish();
}

criterion_group!(benches, transactions);
criterion_main!(benches);
