//! Tincan calls Tincan directly by domain, with no registrar: dnsmasq serves NAPTR, SRV and A
//! records for `direct.test` pointing at `tincan listen --bind 127.0.0.1:PORT`, and
//! `tincan call sip:bob@direct.test --dns-server ...` finds it by RFC 3263. With SRTP
//! required on both sides the call is answered over SRTP and tones cross both ways; a caller
//! that requires SRTP gets no call from a listener that refuses it.

use std::net::Ipv4Addr;
use std::time::Duration;

use tincan_interop_tests::{
    DnsRecords, Dnsmasq, Tincan, TincanProcess, audio, free_port, require_peer, tincan_binary,
};

const WAIT: Duration = Duration::from_secs(10);

/// dnsmasq with `direct.test`: NAPTR `SIP+D2U` -> `_sip._udp.direct.test` -> SRV
/// `bob.direct.test:port` -> A 127.0.0.1.
fn dns_for(port: u16) -> Dnsmasq {
    let records = DnsRecords::new()
        .naptr("direct.test", 10, 10, "SIP+D2U", "_sip._udp.direct.test")
        .srv("_sip._udp.direct.test", "bob.direct.test", port, 10, 10)
        .a("bob.direct.test", Ipv4Addr::LOCALHOST);
    Dnsmasq::start(&records).expect("dnsmasq starts")
}

/// A scratch dir with a `tone.wav` of `hz`.
fn with_tone(name: &str, hz: f64) -> TincanProcess {
    let p = TincanProcess::new(name).expect("scratch dir");
    audio::write_tone_wav(
        p.path("tone.wav"),
        hz,
        Duration::from_secs(20),
        48_000,
        12_000,
    )
    .expect("tone written");
    p
}

fn spawn(p: TincanProcess, args: &[String]) -> Tincan {
    let mut all = args.to_vec();
    all.extend([
        "--play".to_owned(),
        p.path("tone.wav").display().to_string(),
        "--record".to_owned(),
        p.path("rec.wav").display().to_string(),
        "--json".to_owned(),
    ]);
    p.spawn(all).expect("tincan starts")
}

fn listen(port: u16, srtp: &str) -> Tincan {
    let args = [
        "listen",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--srtp",
        srtp,
        "--auto-answer",
        "--max-calls",
        "1",
    ]
    .map(str::to_owned);
    let mut bob = spawn(with_tone("bob-listens", 880.0), &args);
    bob.wait_event("listening", WAIT).expect("tincan listens");
    bob
}

fn call(dns: &Dnsmasq, srtp: &str, extra: &[&str]) -> Tincan {
    let mut args = [
        "call",
        "sip:bob@direct.test",
        "--dns-server",
        &dns.addr().to_string(),
        "--srtp",
        srtp,
        "--bind",
        "127.0.0.1:0",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    spawn(with_tone("alice-calls", 440.0), &args)
}

fn assert_tone(t: &Tincan, hz: f64, who: &str) {
    let report = audio::analyse_file(t.path("rec.wav")).expect("readable recording");
    eprintln!("{who} heard {report:?}");
    assert!((report.frequency - hz).abs() < 20.0, "{who}: {report:?}");
    assert!(report.rms > 1_000.0, "{who}: {report:?}");
    assert!(
        report.duration >= Duration::from_secs(2),
        "{who}: {report:?}"
    );
}

#[test]
fn tincan_calls_tincan_by_domain_with_srtp_required() {
    if !require_peer("dnsmasq") {
        return;
    }
    tincan_binary();
    let port = free_port();
    let mut dns = dns_for(port);
    let mut bob = listen(port, "required");
    let mut alice = call(&dns, "required", &["--duration", "3"]);

    let answered = alice.wait_event("answered", WAIT).expect("bob answers");
    assert_eq!(answered["srtp"], true, "{answered}");
    let calling = alice.events_named("calling");
    assert!(
        calling
            .iter()
            .any(|c| c["target"] == format!("udp:127.0.0.1:{port}")),
        "{calling:?}"
    );
    let bob_answered = bob.wait_event("answered", WAIT).expect("bob's side is up");
    assert_eq!(bob_answered["srtp"], true, "{bob_answered}");

    assert_eq!(
        alice
            .wait_exit(Duration::from_secs(15))
            .expect("alice hangs up"),
        Some(0),
        "{}",
        alice.log()
    );
    assert_eq!(
        bob.wait_exit(WAIT).expect("listen exits after one call"),
        Some(0),
        "{}",
        bob.log()
    );
    let ended = bob.events_named("ended").pop().expect("bob's call ended");
    assert_eq!(ended["reason"], "remote_hangup", "{ended}");
    assert_eq!(ended["quality"]["srtp_rejected"], 0, "{ended}");

    // RFC 3263: NAPTR, then SRV, then A, all from the test's dnsmasq
    let log = dns.peer().log();
    for query in [
        "query[NAPTR] direct.test",
        "query[SRV] _sip._udp.direct.test",
        "query[A] bob.direct.test",
    ] {
        assert!(log.contains(query), "dnsmasq saw no {query:?}:\n{log}");
    }
    assert_tone(&alice, 880.0, "alice");
    assert_tone(&bob, 440.0, "bob");
}

#[test]
fn srtp_required_caller_gets_no_call_from_a_plain_rtp_listener() {
    if !require_peer("dnsmasq") {
        return;
    }
    tincan_binary();
    let port = free_port();
    let dns = dns_for(port);
    let _bob = listen(port, "off");
    let mut alice = call(&dns, "required", &["--duration", "3"]);
    let code = alice
        .wait_exit(Duration::from_secs(20))
        .expect("the call fails by itself");
    assert_ne!(code, Some(0), "{}", alice.log());
    let ended = alice.events_named("ended").pop().expect("an ended event");
    assert_eq!(ended["answered"], false, "{ended}");
    // a listener with --srtp off cannot take an offer of SRTP only: 488 (RFC 3261 §13.3.1.1)
    assert_eq!(ended["reason"], "rejected", "{ended}");
    assert_eq!(ended["status"], 488, "{ended}");
}
