//! sipp calls Tincan: sipp's built-in `uac` scenario (INVITE, 180/200, ACK, BYE/200) against a
//! Tincan endpoint (the tokio driver and an answering transaction user in this test), over UDP
//! and over TCP, and sipp's OPTIONS pinger (`lab/sipp/options_uac.xml`) over UDP. Every call
//! must succeed, and Tincan must have seen each INVITE, ACK and BYE exactly once.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tincan_interop_tests::{Sipp, SippOutcome, Transport, require_peer};
use tincan_sip::driver::{Driver, DriverConfig, Handle, IncomingEvent};
use tincan_sip::message::{HeaderName, Method, response_to};
use tincan_sip::transport::Transport as SipTransport;

/// What the answering TU saw.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Seen {
    invite: u64,
    ack: u64,
    bye: u64,
    options: u64,
    other: u64,
    send_errors: u64,
}

/// Starts a Tincan endpoint on 127.0.0.1 (UDP and TCP, free ports) that answers INVITE with
/// 180 + 200 (To tag, Contact, no body) and everything else with 200.
async fn tincan_uas() -> (Handle, Arc<Mutex<Seen>>, tokio::task::JoinHandle<()>) {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("literal address");
    let mut config = DriverConfig::udp(any);
    config.tcp = vec![any];
    config.seed = Some(7);
    let (handle, mut incoming) = Driver::start(config).await.expect("the driver starts");
    let seen = Arc::new(Mutex::new(Seen::default()));
    let contact = format!(
        "<sip:tincan@{}>",
        handle
            .local_address(SipTransport::Udp)
            .expect("a UDP socket is bound")
    );
    let counters = seen.clone();
    let task = tokio::spawn(async move {
        while let Some(ev) = incoming.next().await {
            match ev {
                IncomingEvent::Request(req) => {
                    let counters = counters.clone();
                    let contact = contact.clone();
                    tokio::spawn(async move {
                        let method = req.request.method().cloned();
                        let tag = format!("tincan{}", req.transaction.get());
                        let mut result = Ok(());
                        if method == Some(Method::Invite) {
                            let mut ringing = response_to(&req.request, 180, None);
                            ringing.set_to_tag(&tag);
                            ringing.push_header(HeaderName::Contact, &contact);
                            result = req.respond(ringing).await;
                        }
                        let mut ok = response_to(&req.request, 200, None);
                        ok.set_to_tag(&tag);
                        if method == Some(Method::Invite) {
                            ok.push_header(HeaderName::Contact, &contact);
                        }
                        if result.is_ok() {
                            result = req.respond(ok).await;
                        }
                        let mut seen = counters.lock().expect("no panics while counting");
                        match (result, method) {
                            (Err(_), _) => seen.send_errors += 1,
                            (Ok(()), Some(Method::Invite)) => seen.invite += 1,
                            (Ok(()), Some(Method::Bye)) => seen.bye += 1,
                            (Ok(()), Some(Method::Options)) => seen.options += 1,
                            (Ok(()), _) => seen.other += 1,
                        }
                    });
                }
                IncomingEvent::Ack { .. } => {
                    counters.lock().expect("no panics while counting").ack += 1;
                }
                _ => {}
            }
        }
    });
    (handle, seen, task)
}

/// Runs sipp (blocking) off the runtime's worker threads.
async fn run_sipp(sipp: Sipp) -> SippOutcome {
    tokio::task::spawn_blocking(move || sipp.run().expect("sipp runs"))
        .await
        .expect("the sipp thread does not panic")
}

async fn calls(transport: Transport) {
    let (handle, seen, task) = tincan_uas().await;
    let sip_transport = match transport {
        Transport::Tcp => SipTransport::Tcp,
        _ => SipTransport::Udp,
    };
    let addr = handle
        .local_address(sip_transport)
        .expect("the transport is bound");
    let outcome = run_sipp(
        Sipp::builtin("uac")
            .remote(addr)
            .transport(transport)
            .calls(100)
            .rate(50.0)
            .timeout(Duration::from_secs(30))
            .trace_err(),
    )
    .await;
    // Let the last ACK/BYE answers leave before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    handle.shutdown().await;
    task.await.expect("the answering task does not panic");
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.summary());
    assert_eq!(
        (outcome.successful, outcome.failed),
        (100, 0),
        "{}\n{}",
        outcome.summary(),
        outcome.errors()
    );
    let seen = seen.lock().expect("no panics while counting").clone();
    assert_eq!(
        seen,
        Seen {
            invite: 100,
            ack: 100,
            bye: 100,
            ..Seen::default()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_calls_tincan_over_udp() {
    if !require_peer("sipp") {
        return;
    }
    calls(Transport::Udp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_uac_calls_tincan_over_tcp() {
    if !require_peer("sipp") {
        return;
    }
    calls(Transport::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_sends_options_to_tincan() {
    if !require_peer("sipp") {
        return;
    }
    let (handle, seen, task) = tincan_uas().await;
    let addr = handle
        .local_address(SipTransport::Udp)
        .expect("UDP is bound");
    let outcome = run_sipp(
        Sipp::lab_scenario("options_uac.xml")
            .remote(addr)
            .calls(20)
            .rate(20.0)
            .timeout(Duration::from_secs(20))
            .trace_err(),
    )
    .await;
    handle.shutdown().await;
    task.await.expect("the answering task does not panic");
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.summary());
    assert_eq!(
        (outcome.successful, outcome.failed),
        (20, 0),
        "{}\n{}",
        outcome.summary(),
        outcome.errors()
    );
    let seen = seen.lock().expect("no panics while counting").clone();
    assert_eq!(
        seen,
        Seen {
            options: 20,
            ..Seen::default()
        }
    );
}
