//! A SIP server on loopback for the stream (TCP, TLS) tests: `Transports` under an
//! `Endpoint`, answering every request 200 (at once, or only once the request's connection
//! has reported `Closed`: a slow transaction user), and raw client sockets to poke it.
#![allow(dead_code, clippy::disallowed_methods)] // each test uses a part; a driver reads the clock

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::SeedableRng;
use tincan_sip::driver::transports::{NetInput, Transports, TransportsConfig};
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
use tincan_sip::message::{Message, response_to};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::{ConnectionId, Transport};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The upper bound of every wait: generous, never the thing checked.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// When the server answers a request that came on a stream connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// At once.
    Now,
    /// Once that connection has reported `Closed` (the peer stopped sending).
    AfterClosed,
}

/// A TCP listener (and TLS when `config` has one) on 127.0.0.1, port 0.
pub fn config() -> TransportsConfig {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let mut c = TransportsConfig::udp(any);
    c.tcp = vec![any];
    c
}

/// A running server: its listeners and its task (aborted when dropped).
pub struct Server {
    pub local: Vec<(Transport, SocketAddr)>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub fn addr(&self, transport: Transport) -> SocketAddr {
        self.local
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| *a)
            .expect("the server listens on that transport")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds `config` and answers every request 200, as `answer` says, until dropped.
pub async fn serve(config: TransportsConfig, answer: Answer) -> Server {
    let net = Transports::bind(config).await.expect("binds on loopback");
    let mut ep = Endpoint::new(
        EndpointConfig::default(),
        Box::new(XorShiftRng::seed_from_u64(1)),
    );
    for (transport, addr) in net.local_addresses() {
        ep.add_local_address(*transport, *addr);
    }
    let local = net.local_addresses().to_vec();
    let task = tokio::spawn(run(net, ep, answer));
    Server { local, task }
}

async fn run(mut net: Transports, mut ep: Endpoint, answer: Answer) {
    let mut held: HashMap<ConnectionId, Vec<(TransactionId, Message)>> = HashMap::new();
    let mut idle = tokio::time::interval(Duration::from_secs(1));
    loop {
        // Drain: transmits, what sending produced, the endpoint's events.
        loop {
            while let Some(t) = ep.poll_transmit() {
                net.send(t).await;
            }
            let mut progressed = false;
            if let Some(input) = net.poll_ready() {
                input_to(&mut ep, &mut held, input);
                progressed = true;
            }
            while let Some(event) = ep.poll_event() {
                progressed = true;
                if let Event::Request {
                    transaction: Some(tx),
                    request,
                    source,
                } = event
                {
                    match (answer, source.connection) {
                        (Answer::AfterClosed, Some(c)) => {
                            held.entry(c).or_default().push((tx, request));
                        }
                        _ => {
                            let ok = response_to(&request, 200, None);
                            let _ = ep.send_response(Instant::now(), tx, ok);
                        }
                    }
                }
            }
            if !progressed {
                break;
            }
        }
        let deadline = ep
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(5));
        tokio::select! {
            Some(input) = net.next() => input_to(&mut ep, &mut held, input),
            _ = tokio::time::sleep_until(deadline.into()) => ep.handle_timeout(Instant::now()),
            _ = idle.tick() => net.close_idle(),
        }
    }
}

fn input_to(
    ep: &mut Endpoint,
    held: &mut HashMap<ConnectionId, Vec<(TransactionId, Message)>>,
    input: NetInput,
) {
    let now = Instant::now();
    match input {
        NetInput::Received(received) => ep.handle_received(now, received),
        NetInput::TransportError(tx) => ep.handle_transport_error(now, tx),
        NetInput::Closed(connection) => {
            for (tx, request) in held.remove(&connection).unwrap_or_default() {
                let _ = ep.send_response(now, tx, response_to(&request, 200, None));
            }
        }
        _ => {}
    }
}

/// An OPTIONS as a client at `from` sends it over TCP, `n` making it unique.
pub fn options(n: u32, from: SocketAddr) -> String {
    format!(
        "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\n\
         Via: SIP/2.0/TCP {from};branch=z9hG4bK-stream-{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:alice@127.0.0.1>;tag=a{n}\r\n\
         To: <sip:bob@127.0.0.1>\r\n\
         Call-ID: stream-{n}@127.0.0.1\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// What a client reads next: a response's status, or how the stream ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Status(u16),
    /// The server closed (FIN or reset) before a whole response came.
    Closed,
    /// Nothing within the wait.
    Nothing,
}

/// Reads one response's header section (a body-less response) within `wait`.
pub async fn read_response<S: AsyncRead + Unpin>(s: &mut S, wait: Duration) -> Read {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let until = tokio::time::Instant::now() + wait;
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]);
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("a status line");
            return Read::Status(status);
        }
        match tokio::time::timeout_at(until, s.read(&mut buf)).await {
            Err(_) => return Read::Nothing,
            Ok(Ok(0) | Err(_)) => return Read::Closed,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Waits up to `wait` for the server to close `s` (whatever it sends first is skipped).
pub async fn closed_within<S: AsyncRead + Unpin>(s: &mut S, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let until = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(until, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}
