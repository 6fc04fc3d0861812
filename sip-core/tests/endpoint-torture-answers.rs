//! What an [`Endpoint`] SENDS for each RFC 4475 / RFC 5118 torture message received as one UDP
//! datagram (virtual time, no sockets).
//!
//! - A request the UA must reject gets exactly one stateless response with the RFC's status,
//!   sent where RFC 3261 §18.2.2 and RFC 3581 §4 say (the source IP as `received`, the source
//!   port when the Via asked for `rport`, else the sent-by port or 5060), and no transaction.
//! - An accepted request gives one `Event::Request` and nothing on the wire until the
//!   transaction user answers; the answer then goes to the same place.
//! - A response is matched against a client transaction of ours (its branch rewritten to
//!   ours): a well-formed one is delivered as `Event::Response`, one that must be dropped
//!   (`scalarlg`, `bigcode`) produces nothing and the transaction keeps waiting.
//! - One bad datagram does not disturb a transaction in progress: a whole INVITE/180/200/ACK
//!   and an OPTIONS run with every torture datagram interleaved between their steps.
//!
//! The endpoint here handles REGISTER and MESSAGE like the other methods, so that the REGISTER
//! torture messages and `mpart01` (a MESSAGE with a multipart body) reach the parse and check
//! stages; [`a_ua_answers_register_with_405`] checks what the default user-agent configuration
//! does with a REGISTER (a MESSAGE gets 501: `tests/endpoint-unimplemented-method-501.rs`).

// Virtual time starts at one real instant.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand_core::SeedableRng;
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
use tincan_sip::message::{
    HeaderName, Message, Method, ParseLimits, RequestBuilder, Uri, response_to,
};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transaction::TransactionId;
use tincan_sip::transport::{Received, Target, Transmit, Transport};

/// Where the endpoint under test listens.
const LOCAL: &str = "192.0.2.1:5060";
/// Where the torture datagrams come from: an address no torture message names, so every
/// response needs `received`.
const SOURCE: &str = "192.0.2.250:47000";

/// Checks that fail today because of endpoint defects, by check id. They are printed loudly
/// on every run; a listed check that passes fails the run, so that the list stays honest.
///
/// `register-405`: RFC 3261 §8.2.1 says a UAS that recognizes but does not support a method
/// answers 405 (Method Not Allowed) with Allow; 501 is for methods it does not recognize
/// (§21.5.2). The endpoint answers 501 to every method outside `EndpointConfig::methods`,
/// REGISTER included.
const KNOWN_FAILURES: &[&str] = &[];

/// What the endpoint must do with a message.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// A request reaches the TU; a response is delivered to its client transaction.
    Accept,
    /// A request is answered statelessly with one of these statuses (the RFC's preference
    /// first).
    Reject(&'static [u16]),
    /// A response is dropped.
    Drop,
}

fn want(name: &str) -> Want {
    match name {
        // RFC 4475 §3.1.1 valid. intmeth and esc02 carry methods nobody implements: the
        // endpoint's method dispatch answers 501 (§8.2.1).
        "wsinv" | "esc01" | "escnull" | "longreq" | "dblreq" | "transports" | "mpart01"
        | "noreason" | "lwsdisp" | "semiuri" | "unreason" => Want::Accept,
        "intmeth" | "esc02" => Want::Reject(&[501]),
        // §3.1.2 invalid.
        "badvers" => Want::Reject(&[505]),
        "badinv01" | "clerr" | "ncl" | "scalar02" | "ltgtruri" | "lwsstart" | "trws"
        | "escruri" | "baddate" | "regbadct" | "badaspec" | "mismatch01" | "quotbal"
        | "lwsruri" | "baddn" => Want::Reject(&[400]),
        "mismatch02" => Want::Reject(&[501, 400]),
        "scalarlg" | "bigcode" => Want::Drop,
        // §3.2, §3.3, §3.4 semantically odd: the stateless checks answer 416, 420, 400; the
        // rest is the TU's business (415, 406, 401...).
        "unkscm" | "novelsc" => Want::Reject(&[416]),
        "bext01" => Want::Reject(&[420]),
        "insuf" | "multi01" | "mcl01" => Want::Reject(&[400]),
        "badbranch" | "unksm2" | "invut" | "regaut01" | "cparam01" | "sdp01" | "zeromf"
        | "cparam02" | "regescrt" | "inv2543" => Want::Accept,
        // bcast: a 200 with two Vias. RFC 3261 §8.1.3.3: a UAC SHOULD discard a response with
        // more than one Via; the endpoint does.
        "bcast" => Want::Drop,
        // RFC 5118 §4.
        "ipv6-bad" => Want::Reject(&[400]),
        "ipv6-good"
        | "port-ambiguous"
        | "port-unambiguous"
        | "via-received-param-with-delim"
        | "via-received-param-no-delim"
        | "ipv6-in-sdp"
        | "mult-ip-in-header"
        | "mult-ip-in-sdp"
        | "ipv4-mapped-ipv6"
        | "ipv6-bug-abnf-3-colons"
        | "ipv6-correct-abnf-2-colons" => Want::Accept,
        other => panic!("{other}: no expectation; add one for every manifest entry"),
    }
}

const CORPORA: &[&str] = &["rfc4475", "rfc4475-extra", "rfc5118"];

/// Every torture message: (name, bytes).
fn messages() -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    for corpus in CORPORA {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(corpus);
        let manifest =
            std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("MANIFEST.tsv is test data");
        for line in manifest.lines().skip(1).filter(|l| !l.is_empty()) {
            let name = line.split('\t').next().expect("manifest name column");
            let bytes =
                std::fs::read(dir.join(format!("{name}.dat"))).expect("torture message exists");
            out.push((name.to_owned(), Bytes::from(bytes)));
        }
    }
    assert_eq!(out.len(), 32 + 17 + 12, "every corpus is complete");
    out
}

fn is_response(bytes: &[u8]) -> bool {
    bytes.starts_with(b"SIP/")
}

fn config_with_register() -> EndpointConfig {
    let mut config = EndpointConfig::default();
    config.methods.push(Method::Register);
    config.methods.push(Method::Message);
    config
}

fn endpoint(config: EndpointConfig) -> Endpoint {
    let mut ep = Endpoint::new(config, Box::new(XorShiftRng::seed_from_u64(7)));
    ep.add_local_address(Transport::Udp, LOCAL.parse().expect("literal address"));
    ep
}

fn datagram(from: SocketAddr, payload: Bytes) -> Received {
    Received {
        transport: Transport::Udp,
        source: from,
        local: LOCAL.parse().expect("literal address"),
        connection: None,
        payload,
        arrived: None,
    }
}

fn drain(ep: &mut Endpoint) -> (Vec<Transmit>, Vec<Event>) {
    let transmits = std::iter::from_fn(|| ep.poll_transmit()).collect();
    let events = std::iter::from_fn(|| ep.poll_event()).collect();
    (transmits, events)
}

/// Where RFC 3261 §18.2.2 / RFC 3581 §4 send the response to `bytes` received over UDP from
/// `source` (which differs from every sent-by host, so `received` always applies).
fn expected_target(bytes: &Bytes, source: SocketAddr) -> Target {
    let parsed = Message::parse_lenient(bytes.clone(), &ParseLimits::default()).ok();
    let via = parsed
        .as_ref()
        .and_then(|(m, _)| m.top_via())
        .and_then(Result::ok);
    let Some(via) = via else {
        return Target::new(Transport::Udp, source);
    };
    let transport = Transport::from_token(&via.transport).unwrap_or(Transport::Udp);
    let port = match via.rport() {
        Some(_) => source.port(),
        None => via.port.unwrap_or(transport.default_port()),
    };
    Target::new(transport, SocketAddr::new(source.ip(), port))
}

fn status_of(t: &Transmit) -> Option<u16> {
    Message::parse(t.payload.clone()).ok()?.status()
}

/// Checks one request; `Err` describes what went wrong.
fn check_request(name: &str, bytes: &Bytes, want: Want) -> Result<(), String> {
    let now = Instant::now();
    let source: SocketAddr = SOURCE.parse().expect("literal address");
    let mut ep = endpoint(config_with_register());
    ep.handle_received(now, datagram(source, bytes.clone()));
    let (sent, events) = drain(&mut ep);
    let target = expected_target(bytes, source);
    match want {
        Want::Reject(allowed) => {
            if !events.is_empty() {
                return Err(format!("rejected request raised events {events:?}"));
            }
            let [response] = sent.as_slice() else {
                return Err(format!("{} transmits, want 1 response", sent.len()));
            };
            let status = status_of(response).ok_or("the answer is no parseable response")?;
            if !allowed.contains(&status) {
                return Err(format!("answered {status}, want {allowed:?}"));
            }
            if response.target != target {
                return Err(format!("sent to {}, want {target}", response.target));
            }
            if response.transaction.is_some() || ep.transaction_count() != 0 {
                return Err("a rejected request created transaction state".into());
            }
            if ep.poll_timeout().is_some() {
                return Err("a rejected request armed a timer".into());
            }
            if name == "bext01" {
                let msg = Message::parse(response.payload.clone()).map_err(|e| e.to_string())?;
                // RFC 3261 §8.2.2.3: Unsupported lists the Require tags; Proxy-Require is
                // for proxies.
                let unsupported = msg.header(HeaderName::Unsupported).unwrap_or("");
                let mut tags: Vec<&str> = unsupported.split(',').map(str::trim).collect();
                tags.sort_unstable();
                if tags != ["nothingSupportsThis", "nothingSupportsThisEither"] {
                    return Err(format!("420 has Unsupported: {unsupported:?}"));
                }
            }
            let later = now + Duration::from_secs(64);
            ep.handle_timeout(later);
            if ep.poll_transmit().is_some() {
                return Err("a stateless answer was retransmitted".into());
            }
            Ok(())
        }
        Want::Accept => {
            if !sent.is_empty() {
                return Err(format!(
                    "sent {} messages before the TU answered",
                    sent.len()
                ));
            }
            let [
                Event::Request {
                    transaction: Some(tx),
                    request,
                    ..
                },
            ] = events.as_slice()
            else {
                return Err(format!("events {events:?}, want one Request"));
            };
            if ep.transaction_count() != 1 {
                return Err(format!("{} transactions, want 1", ep.transaction_count()));
            }
            let mut ok = response_to(request, 200, None);
            ok.set_to_tag("torture");
            ep.send_response(now, *tx, ok)
                .map_err(|e| format!("the TU cannot answer: {e}"))?;
            let (sent, _) = drain(&mut ep);
            let [response] = sent.as_slice() else {
                return Err(format!("{} transmits after the TU's 200", sent.len()));
            };
            if status_of(response) != Some(200) {
                return Err("the TU's 200 did not go out".into());
            }
            if response.target != target {
                return Err(format!("200 sent to {}, want {target}", response.target));
            }
            Ok(())
        }
        Want::Drop => Err("no request is expected to be dropped".into()),
    }
}

/// The CSeq method of a torture response, read from its text (scalarlg's CSeq number does
/// not parse).
fn cseq_method(bytes: &[u8]) -> Method {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .find(|l| l.starts_with("CSeq:"))
        .expect("every torture response has a CSeq line");
    let method = line.split_whitespace().last().expect("CSeq has a method");
    Method::parse(method).expect("a torture response names a method")
}

/// Replaces the top Via's branch (the first `branch=` value) with `branch`.
fn with_branch(bytes: &[u8], branch: &str) -> Bytes {
    let text = String::from_utf8_lossy(bytes);
    let start = text
        .find("branch=")
        .expect("a torture response has a branch")
        + 7;
    let end = start
        + text[start..]
            .find(|c: char| c == ';' || c == ',' || c.is_whitespace())
            .expect("the branch ends");
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(branch.as_bytes());
    out.extend_from_slice(&bytes[end..]);
    Bytes::from(out)
}

/// Checks one response against a client transaction waiting for it.
fn check_response(bytes: &Bytes, want: Want) -> Result<(), String> {
    let now = Instant::now();
    let peer: SocketAddr = SOURCE.parse().expect("literal address");
    let mut ep = endpoint(EndpointConfig::default());
    let method = cseq_method(bytes);
    let uri = Uri::parse("sip:user@192.0.2.250:47000").expect("literal URI");
    let request = RequestBuilder::new(method, &uri)
        .header(HeaderName::From, "<sip:user@example.com>;tag=39ansfi3")
        .header(HeaderName::To, "<sip:user@example.edu>")
        .call_id("torture")
        .cseq(35)
        .build();
    let tx = ep
        .send_request(now, request, Target::new(Transport::Udp, peer))
        .map_err(|e| e.to_string())?;
    let (sent, _) = drain(&mut ep);
    let sent = Message::parse(sent[0].payload.clone()).map_err(|e| e.to_string())?;
    let branch = sent
        .top_via()
        .and_then(Result::ok)
        .and_then(|v| v.branch().map(str::to_owned))
        .ok_or("our request has a branch")?;
    let count_before = ep.transaction_count();
    ep.handle_received(now, datagram(peer, with_branch(bytes, &branch)));
    let (sent, events) = drain(&mut ep);
    if !sent.is_empty() {
        return Err(format!(
            "a response made the endpoint send {} messages",
            sent.len()
        ));
    }
    match want {
        Want::Accept => match events.as_slice() {
            [Event::Response { transaction, .. }, ..] if *transaction == tx => Ok(()),
            other => Err(format!("events {other:?}, want the Response")),
        },
        Want::Drop => {
            if !events.is_empty() {
                return Err(format!("a dropped response raised {events:?}"));
            }
            if ep.transaction_count() != count_before {
                return Err("a dropped response changed the transactions".into());
            }
            Ok(())
        }
        Want::Reject(_) => Err("a response is never answered".into()),
    }
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "wrong answers:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_torture_request_gets_the_rfc_answer_at_the_right_address() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, bytes) in messages().into_iter().filter(|(_, b)| !is_response(b)) {
        checked += 1;
        if let Err(e) = check_request(&name, &bytes, want(&name)) {
            failures.push(format!("  {name}: {e}"));
        }
    }
    assert_eq!(checked, 61 - 5, "five torture messages are responses");
    report(failures);
}

#[test]
fn torture_responses_are_delivered_or_dropped() {
    let mut failures = Vec::new();
    for (name, bytes) in messages().into_iter().filter(|(_, b)| is_response(b)) {
        if let Err(e) = check_response(&bytes, want(&name)) {
            failures.push(format!("  {name}: {e}"));
        }
    }
    report(failures);
}

#[test]
fn a_ua_answers_register_with_405() {
    let now = Instant::now();
    let source: SocketAddr = SOURCE.parse().expect("literal address");
    let mut ep = endpoint(EndpointConfig::default());
    let (_, bytes) = messages()
        .into_iter()
        .find(|(n, _)| n == "cparam01")
        .expect("cparam01 is a REGISTER");
    ep.handle_received(now, datagram(source, bytes));
    let (sent, events) = drain(&mut ep);
    assert!(events.is_empty());
    assert_eq!(sent.len(), 1);
    let response = Message::parse(sent[0].payload.clone()).expect("our response parses");
    assert!(
        response.header(HeaderName::Allow).is_some(),
        "the refusal lists Allow"
    );
    let status = response.status();
    let is_405 = status == Some(405);
    match (is_405, KNOWN_FAILURES.contains(&"register-405")) {
        (true, true) => panic!("register-405 passes now: delete it from KNOWN_FAILURES"),
        (false, true) => eprintln!(
            "\n!!!!!!!! KNOWN FAILURE register-405: a UA answers REGISTER with {status:?}, \
             RFC 3261 §8.2.1 wants 405 !!!!!!!!\n"
        ),
        (is_405, false) => assert!(is_405, "REGISTER answered {status:?}, want 405"),
    }
}

/// The caller, the callee under test and an attacker throwing torture datagrams at it.
struct Net {
    now: Instant,
    caller: Endpoint,
    callee: Endpoint,
    caller_addr: SocketAddr,
    attacker: SocketAddr,
    torture: Vec<(String, Bytes)>,
    /// First lines of what the callee sent to the caller.
    to_caller: Vec<String>,
    /// Torture datagrams thrown so far.
    thrown: usize,
    /// The callee's transactions for torture requests.
    torture_transactions: Vec<TransactionId>,
}

impl Net {
    /// Moves messages until nothing moves; with `barrage`, every torture datagram reaches
    /// the callee first. Returns the caller's events and the callee's events about the
    /// caller's requests (torture requests are answered 200 on the spot).
    fn pump(&mut self, barrage: bool) -> (Vec<Event>, Vec<Event>) {
        let local: SocketAddr = LOCAL.parse().expect("literal address");
        let (mut caller_events, mut callee_events) = (Vec::new(), Vec::new());
        if barrage {
            for (_, bytes) in &self.torture {
                self.callee
                    .handle_received(self.now, datagram(self.attacker, bytes.clone()));
                self.thrown += 1;
            }
        }
        loop {
            let mut moved = false;
            while let Some(t) = self.caller.poll_transmit() {
                moved = true;
                self.callee
                    .handle_received(self.now, datagram(self.caller_addr, t.payload));
            }
            while let Some(t) = self.callee.poll_transmit() {
                moved = true;
                if t.target.addr == self.caller_addr {
                    let first = String::from_utf8_lossy(&t.payload)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    self.to_caller.push(first);
                    self.caller.handle_received(
                        self.now,
                        Received {
                            source: local,
                            local: self.caller_addr,
                            ..datagram(local, t.payload)
                        },
                    );
                } else {
                    assert_eq!(
                        t.target.addr.ip(),
                        self.attacker.ip(),
                        "a torture answer went elsewhere"
                    );
                }
            }
            while let Some(e) = self.caller.poll_event() {
                moved = true;
                caller_events.push(e);
            }
            while let Some(e) = self.callee.poll_event() {
                moved = true;
                match e {
                    Event::Request {
                        transaction: Some(tx),
                        request,
                        source,
                    } if source.addr == self.attacker => {
                        self.torture_transactions.push(tx);
                        let mut r = response_to(&request, 200, None);
                        r.set_to_tag("t");
                        self.callee
                            .send_response(self.now, tx, r)
                            .expect("the TU answers a fresh torture transaction");
                    }
                    Event::Request { ref source, .. } if source.addr == self.attacker => {}
                    // Torture 2xx to INVITE match nothing: the dialog layer's business.
                    Event::StrayResponse { ref source, .. } if source.addr == self.attacker => {}
                    Event::Terminated { .. } => {}
                    // Nobody ACKs the torture INVITEs' 200.
                    Event::AckTimeout { transaction }
                        if self.torture_transactions.contains(&transaction) => {}
                    e => callee_events.push(e),
                }
            }
            if !moved {
                return (caller_events, callee_events);
            }
        }
    }

    /// Runs both endpoints' timers until both are idle (at most `limit`), with a barrage at
    /// every timer step.
    fn run_timers(&mut self, limit: Duration) -> Vec<Event> {
        let end = self.now + limit;
        let mut caller_events = Vec::new();
        loop {
            let next = [self.caller.poll_timeout(), self.callee.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next.filter(|t| *t <= end) else {
                return caller_events;
            };
            self.now = self.now.max(next);
            self.caller.handle_timeout(self.now);
            self.callee.handle_timeout(self.now);
            let (c, e) = self.pump(false);
            caller_events.extend(c);
            assert!(
                e.iter().all(|e| matches!(e, Event::Terminated { .. })),
                "unexpected callee events {e:?}"
            );
        }
    }
}

fn responses(events: &[Event]) -> Vec<u16> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Response { response, .. } => response.status(),
            _ => None,
        })
        .collect()
}

/// A good INVITE/180/200/ACK and an OPTIONS/200 complete while every torture datagram is
/// thrown at the callee before each of their steps; then every transaction ends on time and
/// no state is left.
#[test]
fn bad_datagrams_do_not_disturb_a_transaction_in_progress() {
    let caller_addr: SocketAddr = "192.0.2.9:5060".parse().expect("literal address");
    let local: SocketAddr = LOCAL.parse().expect("literal address");
    let mut caller = Endpoint::new(
        EndpointConfig::default(),
        Box::new(XorShiftRng::seed_from_u64(3)),
    );
    caller.add_local_address(Transport::Udp, caller_addr);
    let mut net = Net {
        now: Instant::now(),
        caller,
        callee: endpoint(config_with_register()),
        caller_addr,
        attacker: SOURCE.parse().expect("literal address"),
        torture: messages(),
        to_caller: Vec::new(),
        thrown: 0,
        torture_transactions: Vec::new(),
    };
    let target = Target::new(Transport::Udp, local);
    let uri = Uri::parse("sip:bob@192.0.2.1:5060").expect("literal URI");
    let request = |method: Method, cseq: u32| {
        RequestBuilder::new(method, &uri)
            .header(HeaderName::From, "<sip:alice@192.0.2.9>;tag=good")
            .header(HeaderName::To, "<sip:bob@192.0.2.1>")
            .call_id("good-call")
            .cseq(cseq)
            .header(HeaderName::Contact, "<sip:alice@192.0.2.9>")
            .build()
    };

    // INVITE -> callee.
    let invite_tx = net
        .caller
        .send_request(net.now, request(Method::Invite, 1), target.clone())
        .expect("the caller sends the INVITE");
    let (_, got) = net.pump(true);
    let (server_tx, invite) = match got.as_slice() {
        [
            Event::Request {
                transaction: Some(tx),
                request,
                ..
            },
        ] => (*tx, request.clone()),
        other => panic!("the callee did not get the INVITE alone: {other:?}"),
    };
    // 180 and 200 -> caller, each after a barrage.
    let mut ringing = response_to(&invite, 180, None);
    ringing.set_to_tag("callee");
    net.pump(true);
    net.callee
        .send_response(net.now, server_tx, ringing)
        .expect("180 goes out");
    let (got, _) = net.pump(true);
    assert_eq!(responses(&got), [180]);
    net.now += Duration::from_millis(30);
    let mut ok = response_to(&invite, 200, None);
    ok.set_to_tag("callee");
    ok.push_header(HeaderName::Contact, "<sip:bob@192.0.2.1>");
    net.pump(true);
    net.callee
        .send_response(net.now, server_tx, ok)
        .expect("200 goes out");
    let (got, _) = net.pump(true);
    assert_eq!(responses(&got), [200]);
    assert!(matches!(got[0], Event::Response { transaction, .. } if transaction == invite_tx));
    // ACK -> callee.
    net.now += Duration::from_millis(30);
    let mut ack = request(Method::Ack, 1);
    ack.set_header(HeaderName::To, "<sip:bob@192.0.2.1>;tag=callee");
    net.pump(true);
    net.caller
        .send_ack(ack, target.clone())
        .expect("the caller ACKs");
    let (_, got) = net.pump(true);
    assert!(
        matches!(got.as_slice(), [Event::Request { transaction: None, request, .. }] if request.method() == Some(&Method::Ack)),
        "{got:?}"
    );
    // OPTIONS in the same dialog's neighbourhood.
    let options_tx = net
        .caller
        .send_request(net.now, request(Method::Options, 2), target)
        .expect("the caller sends OPTIONS");
    let (_, got) = net.pump(true);
    let [
        Event::Request {
            transaction: Some(tx),
            request: options,
            ..
        },
    ] = got.as_slice()
    else {
        panic!("the callee did not get the OPTIONS alone: {got:?}");
    };
    let mut ok = response_to(options, 200, None);
    ok.set_to_tag("callee");
    net.pump(true);
    net.callee
        .send_response(net.now, *tx, ok)
        .expect("200 to OPTIONS goes out");
    let (got, _) = net.pump(true);
    assert!(
        matches!(got.as_slice(), [Event::Response { transaction, response }, ..]
            if *transaction == options_tx && response.status() == Some(200)),
        "{got:?}"
    );

    // Every timer runs out: the ACKed 200 is never resent, nothing is left.
    let later = net.run_timers(Duration::from_secs(64));
    assert!(
        later.iter().all(|e| matches!(e, Event::Terminated { .. })),
        "{later:?}"
    );
    assert_eq!(
        net.to_caller,
        ["SIP/2.0 180 Ringing", "SIP/2.0 200 OK", "SIP/2.0 200 OK"],
        "the callee sent the caller exactly one 180 and one 200 per transaction"
    );
    assert_eq!(net.caller.transaction_count(), 0);
    assert_eq!(net.callee.transaction_count(), 0);
    assert!(net.thrown >= 9 * 61);
    let stats = net.callee.stats();
    assert!(stats.rejected > 0 && stats.dropped > 0, "{stats:?}");
}
