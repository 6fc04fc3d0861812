//! A minimal answering SIP user agent on the tokio driver: the server side of a load test.
//!
//! It binds UDP and TCP on one address, answers every INVITE with 180 Ringing then 200 OK
//! (with a To tag and a Contact, no SDP body), and BYE, OPTIONS and any other request with
//! 200 OK. It counts calls (INVITEs answered) and BYEs, and prints a one-line summary when it
//! stops: on Ctrl-C (SIGINT), SIGTERM, or once `--max-calls N` calls have been ended by a BYE.
//!
//! ```text
//! cargo run --release -p tincan-sip --example uas -- [ADDR] [--max-calls N]
//! ```
//!
//! `ADDR` defaults to `127.0.0.1:5060`; port 0 picks a free port (the bound addresses are
//! printed on the first line: `listening udp 127.0.0.1:40000 tcp 127.0.0.1:40000`).
//! With sipp: `sipp -sn uac 127.0.0.1:5060 -m 100 -r 50`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use tincan_sip::driver::{Driver, DriverConfig, IncomingEvent, ServerRequest};
use tincan_sip::message::{HeaderName, Method, response_to};
use tincan_sip::transport::Transport;
use tokio::sync::Notify;

/// What the command line asked for.
struct Options {
    addr: SocketAddr,
    max_calls: Option<u64>,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:5060".parse().expect("literal address parses"),
        max_calls: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--max-calls" => {
                let n = args.next().ok_or("--max-calls needs a number")?;
                options.max_calls = Some(n.parse().map_err(|e| format!("--max-calls {n}: {e}"))?);
            }
            "-h" | "--help" => {
                return Err("usage: uas [ADDR (default 127.0.0.1:5060)] [--max-calls N]".into());
            }
            other => {
                options.addr = other
                    .parse()
                    .map_err(|e| format!("{other}: not an IP:port address ({e})"))?;
            }
        }
    }
    Ok(options)
}

/// What the TU answered.
#[derive(Default)]
struct Counters {
    /// INVITEs answered with 200.
    calls: AtomicU64,
    /// BYEs answered with 200.
    byes: AtomicU64,
    /// Other requests answered with 200 (OPTIONS, ...).
    others: AtomicU64,
    /// ACKs of our 2xx received.
    acks: AtomicU64,
    /// Responses the driver refused to send.
    errors: AtomicU64,
    /// Stop after this many BYEs.
    max_calls: Option<u64>,
    /// Woken when `max_calls` is reached.
    done: Notify,
}

/// Answers one request at once, without a task of its own: INVITE gets 180 then 200 with a
/// Contact, anything else 200. The responses go to the driver without a round trip
/// ([`ServerRequest::respond_now`]).
fn answer(req: &ServerRequest, contact: &str, counters: &Counters) {
    let method = req.request.method();
    let invite = method == Some(&Method::Invite);
    let tag = format!("uas{}", req.transaction.get());
    let mut sent = Ok(());
    if invite {
        let mut ringing = response_to(&req.request, 180, None);
        ringing.set_to_tag(&tag);
        ringing.push_header(HeaderName::Contact, contact);
        sent = req.respond_now(ringing);
    }
    let mut ok = response_to(&req.request, 200, None);
    ok.set_to_tag(&tag);
    if invite {
        ok.push_header(HeaderName::Contact, contact);
    }
    if sent.is_ok() {
        sent = req.respond_now(ok);
    }
    let counter = match (&sent, method) {
        (Err(_), _) => &counters.errors,
        (Ok(()), Some(Method::Invite)) => &counters.calls,
        (Ok(()), Some(Method::Bye)) => &counters.byes,
        (Ok(()), _) => &counters.others,
    };
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    if std::ptr::eq(counter, &counters.byes) && counters.max_calls.is_some_and(|max| n >= max) {
        counters.done.notify_one();
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("uas: {e}");
            return ExitCode::from(2);
        }
    };
    let mut config = DriverConfig::udp(options.addr);
    config.tcp = vec![options.addr];
    // Sized for a load test: at 6000 calls/s the INVITE and BYE transactions of 32 s
    // (Timers L and J) are live at once.
    config.endpoint.expected_transactions = 65_536;
    // The same socket buffers as sipp's `-buff_size 4194304` in scripts/bench-sipp-load.sh.
    config.udp_buffer_size = Some(4 << 20);
    let (handle, mut incoming) = match Driver::start(config).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("uas: {e}");
            return ExitCode::from(1);
        }
    };
    let udp = handle.local_address(Transport::Udp);
    let tcp = handle.local_address(Transport::Tcp);
    let show = |a: Option<SocketAddr>| a.map_or("-".to_owned(), |a| a.to_string());
    println!("listening udp {} tcp {}", show(udp), show(tcp));
    let contact_addr = udp.unwrap_or(options.addr);
    let contact = format!("<sip:uas@{contact_addr}>");
    let counters = Counters {
        max_calls: options.max_calls,
        ..Counters::default()
    };
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler works in a normal process");
    loop {
        tokio::select! {
            ev = incoming.next() => match ev {
                Some(IncomingEvent::Request(req)) => answer(&req, &contact, &counters),
                Some(IncomingEvent::Ack { .. }) => {
                    counters.acks.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {}
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            _ = counters.done.notified() => break,
        }
    }
    handle.shutdown().await;
    println!(
        "uas: {} calls answered, {} BYE, {} ACK, {} other requests, {} send errors",
        counters.calls.load(Ordering::Relaxed),
        counters.byes.load(Ordering::Relaxed),
        counters.acks.load(Ordering::Relaxed),
        counters.others.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
    );
    ExitCode::SUCCESS
}
