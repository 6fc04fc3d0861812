//! `tincan nat`: the public address a STUN server sees and the NAT's mapping behaviour,
//! against small STUN servers the test runs on loopback (threads answering Binding requests;
//! one announces an OTHER-ADDRESS, RFC 5780, one pretends the NAT gave another port).

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tincan_sip::stun::{self, Class, Message};

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `tincan ARGS` with no config file from the environment.
fn tincan(args: &[&str]) -> Output {
    let no_config = std::env::temp_dir().join(format!("tincan-no-config-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_tincan"))
        .args(args)
        .env_remove("TINCAN_CONFIG")
        .env("XDG_CONFIG_HOME", &no_config)
        .output()
        .expect("the tincan binary runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What a test server answers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// The request's source, as a STUN server does.
    Truthful,
    /// The source with another port (what a symmetric NAT would make the server see).
    OtherPort,
    /// Never answers.
    Silent,
}

/// A STUN server on a free loopback port, answering until dropped.
struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(behaviour: Behaviour, other: Option<SocketAddr>) -> Server {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a loopback port");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("a read timeout");
        let addr = socket.local_addr().expect("bound");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(m) = Message::parse(&buf[..n]) else {
                    continue;
                };
                if m.class != Class::Request {
                    continue;
                }
                let mapped = match behaviour {
                    Behaviour::Truthful => from,
                    Behaviour::OtherPort => SocketAddr::new(from.ip(), from.port() ^ 1),
                    Behaviour::Silent => continue,
                };
                let mut response = stun::binding_success(m.transaction, mapped, false);
                if let Some(SocketAddr::V4(o)) = other {
                    // OTHER-ADDRESS (0x802C), RFC 5780 §7.4: MAPPED-ADDRESS's format.
                    response.extend_from_slice(&[0x80, 0x2C, 0, 8, 0, 1]);
                    response.extend_from_slice(&o.port().to_be_bytes());
                    response.extend_from_slice(&o.ip().octets());
                    let len = (response.len() - 20) as u16;
                    response[2..4].copy_from_slice(&len.to_be_bytes());
                }
                let _ = socket.send_to(&response, from);
            }
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "one JSON object ({e}): {:?} stderr {:?}",
            out.stdout, out.stderr
        )
    })
}

#[test]
fn two_servers_that_see_the_same_address_mean_an_endpoint_independent_mapping() {
    let a = Server::start(Behaviour::Truthful, None);
    let b = Server::start(Behaviour::Truthful, None);
    let out = tincan(&[
        "nat",
        "--json",
        "--stun-server",
        &a.addr.to_string(),
        "--stun-server",
        &b.addr.to_string(),
    ]);
    assert_eq!(
        out.code, 0,
        "stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
    let j = json(&out);
    assert_eq!(j["mapping"], "endpoint-independent");
    assert_eq!(j["nat"], false, "loopback: no NAT");
    assert_eq!(j["public"], j["local"]);
    assert_eq!(j["public"], j["second_public"]);
}

#[test]
fn the_other_address_the_server_announces_is_asked_second() {
    let other = Server::start(Behaviour::Truthful, None);
    let a = Server::start(Behaviour::Truthful, Some(other.addr));
    let out = tincan(&["nat", "--stun-server", &a.addr.to_string()]);
    assert_eq!(
        out.code, 0,
        "stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("mapping         endpoint-independent")
            && out.stdout.contains("OTHER-ADDRESS"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("behind a NAT    no"), "{}", out.stdout);
}

#[test]
fn another_port_towards_the_second_server_means_an_endpoint_dependent_mapping() {
    let a = Server::start(Behaviour::Truthful, None);
    let b = Server::start(Behaviour::OtherPort, None);
    let out = tincan(&[
        "nat",
        "--stun-server",
        &a.addr.to_string(),
        "--stun-server",
        &b.addr.to_string(),
    ]);
    assert_eq!(
        out.code, 3,
        "stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
    assert!(
        out.stdout.contains("endpoint-dependent") && out.stdout.contains("TURN"),
        "{}",
        out.stdout
    );
}

#[test]
fn one_server_without_other_address_leaves_the_mapping_unknown() {
    let a = Server::start(Behaviour::Truthful, None);
    let dir = std::env::temp_dir().join(format!("tincan-nat-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!("[network]\nstun_server = \"{}\"\n", a.addr),
    )
    .expect("the config file");
    // The server comes from the config file's [network] stun_server.
    let out = tincan(&["--config", config.to_str().expect("utf-8"), "nat", "--json"]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        out.code, 0,
        "stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
    let j = json(&out);
    assert_eq!(j["mapping"], "unknown");
    assert!(
        j["note"]
            .as_str()
            .is_some_and(|n| n.contains("OTHER-ADDRESS")),
        "{j}"
    );
}

#[test]
fn a_silent_server_is_exit_1_and_no_server_is_exit_2() {
    let silent = Server::start(Behaviour::Silent, None);
    let out = tincan(&[
        "nat",
        "--timeout",
        "1",
        "--stun-server",
        &silent.addr.to_string(),
    ]);
    assert_eq!(
        out.code, 1,
        "stdout {:?} stderr {:?}",
        out.stdout, out.stderr
    );
    assert!(out.stderr.contains("no answer"), "{}", out.stderr);

    let out = tincan(&["nat"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("stun_server"), "{}", out.stderr);

    let out = tincan(&["nat", "--stun-server", "no-port-here"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("host:port"), "{}", out.stderr);
}
