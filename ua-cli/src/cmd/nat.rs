//! `tincan nat [--stun-server HOST:PORT]... [--json] [--timeout S]`: the public address a STUN
//! server (RFC 8489 Binding) sees, and whether the NAT's mapping is endpoint-independent.
//!
//! The mapping test is RFC 5780 §4.3's, with what the servers offer: from one local socket, a
//! Binding request to the first server, then one to a second address (the second
//! `--stun-server`, else the OTHER-ADDRESS the first server announced, as coturn does when it
//! has two addresses). The same public address both times: the mapping is
//! endpoint-independent (a "cone" NAT: a STUN-learned address works for media); two different
//! ones: endpoint-dependent (a symmetric NAT: only a relay, TURN, gets media through).
//!
//! Exit status: 0 when the public address is known and the mapping is endpoint-independent
//! (or could not be tested: no second address); 3 when the mapping is endpoint-dependent; 1
//! when the server did not answer (or its name did not resolve); 2 on usage errors (no
//! server given or configured).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use tincan_sip::stun::{self, Class, Message, TransactionId};

/// Arguments of `tincan nat`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A STUN server (`host:port`); give two to compare the mappings towards both. Without
    /// it, the config's `[network] stun_server`.
    #[arg(long = "stun-server", value_name = "HOST:PORT")]
    stun_server: Vec<String>,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for each server's answer (the request is sent again after 0.5, 1.5,
    /// 3.5... s, RFC 8489 §6.2.1).
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
}

/// What `tincan nat` found.
#[derive(Debug, Serialize)]
struct Report {
    /// The STUN server asked first.
    server: String,
    /// The local address of the socket (its route's source address to the server).
    local: String,
    /// The address the server saw.
    public: String,
    /// Whether the public address differs from the local one.
    nat: bool,
    /// `endpoint-independent`, `endpoint-dependent` or `unknown`.
    mapping: &'static str,
    /// The second address asked (second server or OTHER-ADDRESS), if any.
    second_server: Option<String>,
    /// The address the second server saw, if it answered.
    second_public: Option<String>,
    /// Why the mapping could not be tested, if it could not.
    note: Option<String>,
}

/// Runs the command; returns the exit status.
pub fn run(args: &Args, config_path: Option<&Path>) -> ExitCode {
    let config = match tincan::config::Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tincan nat: {e}");
            return ExitCode::from(2);
        }
    };
    super::print_config_warnings("nat", &config);
    let servers: Vec<String> = if args.stun_server.is_empty() {
        config.network.stun_server.iter().cloned().collect()
    } else {
        args.stun_server.clone()
    };
    let Some(first_name) = servers.first() else {
        eprintln!(
            "tincan nat: no STUN server: give --stun-server host:port or set [network] stun_server"
        );
        return ExitCode::from(2);
    };
    if servers.len() > 2 {
        eprintln!("tincan nat: at most two --stun-server");
        return ExitCode::from(2);
    }
    if !args.timeout.is_finite() || args.timeout <= 0.0 {
        eprintln!("tincan nat: --timeout must be a positive number of seconds");
        return ExitCode::from(2);
    }
    let timeout = Duration::from_secs_f64(args.timeout.min(3600.0));
    let first = match resolve(first_name) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tincan nat: {first_name}: {e}");
            return ExitCode::from(1);
        }
    };
    let unspecified = match first {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    let socket = match UdpSocket::bind(SocketAddr::new(unspecified, 0)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tincan nat: binding a UDP socket: {e}");
            return ExitCode::from(1);
        }
    };
    let port = socket.local_addr().map_or(0, |a| a.port());
    // The source address the system picks towards the server (no packet is sent for this).
    let local_ip = UdpSocket::bind(SocketAddr::new(unspecified, 0))
        .and_then(|s| s.connect(first).and_then(|()| s.local_addr()))
        .map_or(unspecified, |a| a.ip());
    let local = SocketAddr::new(local_ip, port);
    let answer = match binding(&socket, first, timeout) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("tincan nat: {first_name} ({first}): {e}");
            return ExitCode::from(1);
        }
    };
    let mut report = Report {
        server: format!("{first_name} ({first})"),
        local: local.to_string(),
        public: answer.mapped.to_string(),
        nat: answer.mapped != local,
        mapping: "unknown",
        second_server: None,
        second_public: None,
        note: None,
    };
    let second = match servers.get(1) {
        Some(name) => match resolve(name) {
            Ok(a) => Some((format!("{name} ({a})"), a)),
            Err(e) => {
                report.note = Some(format!("{name}: {e}"));
                None
            }
        },
        None => match answer.other {
            Some(a) => Some((format!("{a} (the first server's OTHER-ADDRESS)"), a)),
            None => {
                report.note = Some(
                    "the server announces no other address (RFC 5780 OTHER-ADDRESS): give a second --stun-server".into(),
                );
                None
            }
        },
    };
    if let Some((name, addr)) = second {
        report.second_server = Some(name.clone());
        match binding(&socket, addr, timeout) {
            Ok(a) => {
                report.second_public = Some(a.mapped.to_string());
                report.mapping = if a.mapped == answer.mapped {
                    "endpoint-independent"
                } else {
                    "endpoint-dependent"
                };
            }
            Err(e) => report.note = Some(format!("{name}: {e}")),
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("a report serializes")
        );
    } else {
        print_text(&report);
    }
    if report.mapping == "endpoint-dependent" {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_text(r: &Report) {
    println!("stun server     {}", r.server);
    println!("local address   {}", r.local);
    println!("public address  {}", r.public);
    println!(
        "behind a NAT    {}",
        if r.nat {
            "yes"
        } else {
            "no (the server sees the local address)"
        }
    );
    let mapping = match (r.mapping, &r.second_server, &r.second_public) {
        ("endpoint-independent", Some(s), _) => {
            format!("endpoint-independent (the same public address towards {s})")
        }
        ("endpoint-dependent", Some(s), Some(p)) => format!(
            "endpoint-dependent ({p} towards {s}): a symmetric NAT, media needs a relay (TURN)"
        ),
        _ => format!(
            "unknown ({})",
            r.note.as_deref().unwrap_or("no second address")
        ),
    };
    println!("mapping         {mapping}");
}

/// The first address of `host:port` (the config's checks apply to the command line too).
fn resolve(name: &str) -> Result<SocketAddr, String> {
    let name = tincan::config::check_host_port(name)?;
    name.to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .next()
        .ok_or_else(|| "cannot resolve: no address".to_owned())
}

/// A Binding success response's addresses.
struct Answer {
    mapped: SocketAddr,
    other: Option<SocketAddr>,
}

/// One Binding transaction with `server` from `socket` (RFC 8489 §6.2.1: sent again after
/// 500 ms, doubling), given up after `timeout`.
fn binding(socket: &UdpSocket, server: SocketAddr, timeout: Duration) -> Result<Answer, String> {
    let mut rng = tincan_sip::driver::OsRng;
    let id = TransactionId::random(&mut rng);
    let request = stun::binding_request(id, true);
    let start = Instant::now();
    let deadline = start + timeout;
    let mut rto = Duration::from_millis(500);
    let mut next_send = start;
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("no answer in {:.1} s", timeout.as_secs_f64()));
        }
        if now >= next_send {
            socket
                .send_to(&request, server)
                .map_err(|e| format!("sending: {e}"))?;
            next_send = now + rto;
            rto *= 2;
        }
        let wait = next_send.min(deadline).saturating_duration_since(now);
        socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            // An ICMP unreachable of an earlier send (Linux reports it on the next read).
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                return Err("unreachable (ICMP port unreachable)".into());
            }
            Err(e) => return Err(format!("receiving: {e}")),
        };
        if from != server {
            continue;
        }
        let Ok(message) = Message::parse(&buf[..n]) else {
            continue;
        };
        if message.transaction != id {
            continue;
        }
        match message.class {
            Class::SuccessResponse => {
                return message
                    .mapped_address()
                    .map(|mapped| Answer {
                        mapped,
                        other: message.other_address,
                    })
                    .ok_or_else(|| "the answer has no mapped address".to_owned());
            }
            Class::ErrorResponse => {
                let e = message.error.map_or_else(
                    || "an error response".to_owned(),
                    |e| format!("error {} {}", e.code, e.reason),
                );
                return Err(e);
            }
            _ => {}
        }
    }
}
