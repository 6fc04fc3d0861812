//! RFC 5626 §4.4.2 STUN keep-alives on a UDP registration flow, against real kamailio
//! registrars that answer STUN on their SIP port (`lab/kamailio/kamailio-stun.cfg`, the stun
//! module). Two registrars in failover mode:
//! - through a UDP relay the test controls: the Binding requests are answered (no false
//!   alarm); the relay changes its upstream port (a NAT rebinding): the changed
//!   XOR-MAPPED-ADDRESS fails the flow and the account registers again at once; then the
//!   first kamailio is frozen (SIGSTOP to its process group, sockets still bound: a
//!   black-holed registrar): the missing STUN response fails the flow, and the account
//!   registers with the second kamailio;
//! - directly: the first kamailio is killed; the next keep-alive meets an ICMP port
//!   unreachable, the flow fails at once, and the account moves to the second.
//!
//! Keep-alives every 2 s (80-100 %), STUN RTO 50 ms (the transaction fails after 3.95 s).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tincan_interop_tests::{JsonCommand, Kamailio, WorkDir, require_peers};
use tincan_sip::stun::{self, Class, Message};

/// A UDP relay from a loopback port to `upstream` for one client, counting STUN Binding
/// requests and responses; its upstream socket can be replaced (a NAT rebinding).
struct UdpRelay {
    addr: SocketAddr,
    upstream: Arc<Mutex<Arc<UdpSocket>>>,
    requests: Arc<AtomicUsize>,
    responses: Arc<AtomicUsize>,
}

fn upstream_socket() -> Arc<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    Arc::new(s)
}

fn stun_class(datagram: &[u8]) -> Option<Class> {
    stun::is_stun(datagram)
        .then(|| Message::parse(datagram).ok().map(|m| m.class))
        .flatten()
}

impl UdpRelay {
    fn start(target: SocketAddr) -> UdpRelay {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let addr = front.local_addr().unwrap();
        let upstream = Arc::new(Mutex::new(upstream_socket()));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let responses = Arc::new(AtomicUsize::new(0));
        // The threads end with the test process.
        let (f, up, c, req) = (
            front.clone(),
            upstream.clone(),
            client.clone(),
            requests.clone(),
        );
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok((n, from)) = f.recv_from(&mut buf) {
                *c.lock().unwrap() = Some(from);
                if stun_class(&buf[..n]) == Some(Class::Request) {
                    req.fetch_add(1, Ordering::SeqCst);
                }
                let sock = up.lock().unwrap().clone();
                let _ = sock.send_to(&buf[..n], target);
            }
        });
        let (f, up, c, resp) = (front, upstream.clone(), client, responses.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            loop {
                let sock = up.lock().unwrap().clone();
                let Ok((n, _)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                if stun_class(&buf[..n]) == Some(Class::SuccessResponse) {
                    resp.fetch_add(1, Ordering::SeqCst);
                }
                if let Some(to) = *c.lock().unwrap() {
                    let _ = f.send_to(&buf[..n], to);
                }
            }
        });
        UdpRelay {
            addr,
            upstream,
            requests,
            responses,
        }
    }

    /// The relay's traffic to the registrar now leaves from a new port, as when a NAT
    /// rebinds a flow; the old port is closed.
    fn rebind(&self) -> SocketAddr {
        let fresh = upstream_socket();
        let addr = fresh.local_addr().unwrap();
        *self.upstream.lock().unwrap() = fresh;
        addr
    }
}

fn write_config(dir: &WorkDir, registrars: &[String]) -> PathBuf {
    let cfg = dir.path().join("config.toml");
    let list: Vec<String> = registrars.iter().map(|r| format!("\"{r}\"")).collect();
    std::fs::write(
        &cfg,
        format!(
            "[network]\nbind = \"127.0.0.1:0\"\nudp_keepalive_interval = 2\nstun_rto_ms = 50\n\n\
             [[account]]\nname = \"uat\"\naor = \"sip:uat@example.test\"\npassword = \"uatpw\"\n\
             transport = \"udp\"\nexpires = 300\nregistrars = [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
    cfg
}

fn stun_kamailio() -> Kamailio {
    Kamailio::builder()
        .template("kamailio-stun.cfg")
        .secondary(false)
        .ipv6(false)
        .start()
        .expect("kamailio with the stun module starts")
}

fn registered_at(addr: SocketAddr) -> impl Fn(&serde_json::Value) -> bool {
    let addr = addr.to_string();
    move |v| {
        v["event"] == "registered" && v["registrar"].as_str().is_some_and(|r| r.contains(&addr))
    }
}

fn is(name: &'static str) -> impl Fn(&serde_json::Value) -> bool {
    move |v| v["event"] == name
}

#[test]
fn stun_keepalives_notice_a_rebound_and_a_black_holed_udp_flow() {
    if !require_peers(&["kamailio", "kamcmd"]) {
        return;
    }
    let mut a = stun_kamailio();
    let b = stun_kamailio();
    let relay = UdpRelay::start(a.addr());
    let dir = WorkDir::new("keepalive-udp").unwrap();
    let cfg = write_config(
        &dir,
        &[
            format!("sip:{};transport=udp", relay.addr),
            format!("sip:{};transport=udp", b.addr()),
        ],
    );
    let tincan = JsonCommand::spawn(&["register", "--json"], &cfg);
    assert!(
        tincan
            .wait_for(Duration::from_secs(15), registered_at(relay.addr))
            .is_some(),
        "registered with the first kamailio through the relay"
    );

    // Binding requests every 1.6-2 s, each answered by kamailio: no failure over several
    // intervals.
    let quiet = tincan.wait_for(Duration::from_secs(7), |v| {
        v["event"] == "flow_failed" || v["event"] == "failed"
    });
    assert!(
        quiet.is_none(),
        "a live UDP flow was declared dead: {quiet:?}"
    );
    let (requests, responses) = (
        relay.requests.load(Ordering::SeqCst),
        relay.responses.load(Ordering::SeqCst),
    );
    println!("{requests} STUN keep-alives, {responses} answered by kamailio in 7 s");
    assert!(requests >= 3 && responses >= 3, "{requests}/{responses}");

    // The NAT rebinds: the next response carries another mapped address.
    let rebound = Instant::now();
    let new_port = relay.rebind();
    let failed = tincan
        .wait_for(Duration::from_secs(6), is("flow_failed"))
        .expect("flow_failed after the rebinding");
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("nat binding changed") && reason.contains(&new_port.to_string()),
        "{failed}"
    );
    let noticed = rebound.elapsed();
    let recovered = tincan
        .wait_for(Duration::from_secs(10), is("flow_recovered"))
        .expect("flow_recovered");
    println!(
        "NAT rebinding: noticed after {} ms (next keep-alive), registered again after {} ms \
         (REGISTER round trips {} ms)",
        noticed.as_millis(),
        rebound.elapsed().as_millis(),
        recovered["elapsed_ms"]
    );

    // Behind the relay (a NAT) the registrar saw a new address: the account registers again
    // with a Contact of it (contact rewrite). Let that REGISTER be answered before the freeze:
    // frozen in its middle, it would wait out its own transaction (32 s), not a keep-alive.
    let _ = tincan.wait_for(Duration::from_secs(5), registered_at(relay.addr));

    // The first kamailio freezes (black-holed): the keep-alive's transaction times out, the
    // REGISTER on a new flow gets nothing either, and the account moves to the second.
    let frozen = Instant::now();
    a.pause();
    let failed = tincan
        .wait_for(Duration::from_secs(12), is("flow_failed"))
        .expect("flow_failed once kamailio is frozen");
    assert!(
        failed["reason"].as_str().unwrap().contains("stun"),
        "{failed}"
    );
    let noticed = frozen.elapsed();
    let moved = tincan
        .wait_for(Duration::from_secs(15), registered_at(b.addr()))
        .expect("registered with the second kamailio");
    println!(
        "black-holed UDP registrar: flow declared dead after {} ms (keep-alive every 1.6-2 s, \
         STUN transaction 3.95 s), registered with the second registrar after {} ms \
         (its REGISTER took {} ms)",
        noticed.as_millis(),
        frozen.elapsed().as_millis(),
        moved["elapsed_ms"]
    );
    assert!(!b.contacts("uat").unwrap().is_empty());
    a.resume();
}

#[test]
fn a_killed_udp_registrar_is_noticed_by_the_next_keepalive() {
    if !require_peers(&["kamailio", "kamcmd"]) {
        return;
    }
    let a = stun_kamailio();
    let b = stun_kamailio();
    let a_addr = a.addr();
    let dir = WorkDir::new("keepalive-udp-icmp").unwrap();
    let cfg = write_config(
        &dir,
        &[
            format!("sip:{a_addr};transport=udp"),
            format!("sip:{};transport=udp", b.addr()),
        ],
    );
    let tincan = JsonCommand::spawn(&["register", "--json"], &cfg);
    assert!(
        tincan
            .wait_for(Duration::from_secs(15), registered_at(a_addr))
            .is_some(),
        "registered with the first kamailio"
    );
    // A couple of answered keep-alives first.
    let quiet = tincan.wait_for(Duration::from_secs(4), is("flow_failed"));
    assert!(quiet.is_none(), "{quiet:?}");

    let killed = Instant::now();
    a.stop();
    let stopped = killed.elapsed();
    let failed = tincan
        .wait_for(Duration::from_secs(6), is("flow_failed"))
        .expect("flow_failed after the kill");
    assert!(
        failed["reason"].as_str().unwrap().contains("unreachable"),
        "{failed}"
    );
    let noticed = killed.elapsed();
    tincan
        .wait_for(Duration::from_secs(10), registered_at(b.addr()))
        .expect("registered with the second kamailio");
    println!(
        "killed UDP registrar (kamailio took {} ms to exit): flow declared dead after {} ms \
         (the next keep-alive's ICMP port unreachable), registered with the second after {} ms",
        stopped.as_millis(),
        noticed.as_millis(),
        killed.elapsed().as_millis()
    );
}

/// The lab's kamailio without the stun module parses STUN as (broken) SIP and answers
/// nothing: the first keep-alive's transaction times out, keep-alives stop, and the flow is
/// not declared dead (its REGISTER refreshes keep it).
#[test]
fn a_registrar_without_stun_raises_no_false_alarm() {
    if !require_peers(&["kamailio", "kamcmd"]) {
        return;
    }
    let plain = Kamailio::builder()
        .secondary(false)
        .ipv6(false)
        .start()
        .expect("kamailio starts");
    let dir = WorkDir::new("keepalive-udp-nostun").unwrap();
    let cfg = write_config(&dir, &[format!("sip:{};transport=udp", plain.addr())]);
    let tincan = JsonCommand::spawn(&["register", "--json"], &cfg);
    assert!(
        tincan
            .wait_for(Duration::from_secs(15), registered_at(plain.addr()))
            .is_some(),
        "registered"
    );
    // Two keep-alive intervals and a STUN transaction (2 + 3.95 s), and more.
    let alarm = tincan.wait_for(Duration::from_secs(10), |v| {
        v["event"] == "flow_failed" || v["event"] == "failed"
    });
    assert!(alarm.is_none(), "{alarm:?}");
    assert!(!plain.contacts("uat").unwrap().is_empty());
}
