//! RFC 5626 keep-alives on a TCP registration flow against a real kamailio, through a TCP
//! relay the test controls: CRLF pings are answered (no false alarm), a connection closed
//! under the account is replaced at once, and a flow that goes silent (black-holed) is
//! declared dead when its pong is missing, then replaced.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tincan_interop_tests::{JsonCommand, Kamailio, WorkDir, require_peers};

/// One relayed connection: both sockets, and whether it is black-holed.
struct Relayed {
    client: TcpStream,
    upstream: TcpStream,
    silent: Arc<AtomicBool>,
}

/// A TCP relay from a loopback port to `upstream`, whose connections can be closed or
/// black-holed (bytes read and dropped both ways, the connection left open).
struct Relay {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<Relayed>>>,
    pings: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
}

impl Relay {
    fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<Relayed>>> = Arc::default();
        let pings = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let (c, p, a) = (conns.clone(), pings.clone(), accepted.clone());
        // The threads end with the test process.
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(up) = TcpStream::connect(upstream) else {
                    continue;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let silent = Arc::new(AtomicBool::new(false));
                pump(
                    client.try_clone().unwrap(),
                    up.try_clone().unwrap(),
                    silent.clone(),
                    Some(p.clone()),
                );
                pump(
                    up.try_clone().unwrap(),
                    client.try_clone().unwrap(),
                    silent.clone(),
                    None,
                );
                c.lock().unwrap().push(Relayed {
                    client,
                    upstream: up,
                    silent,
                });
            }
        });
        Relay {
            addr,
            conns,
            pings,
            accepted,
        }
    }

    /// Closes every current connection (both sides).
    fn close_all(&self) {
        for r in self.conns.lock().unwrap().drain(..) {
            let _ = r.client.shutdown(Shutdown::Both);
            let _ = r.upstream.shutdown(Shutdown::Both);
        }
    }

    /// Black-holes every current connection; new ones are relayed normally.
    fn silence_all(&self) {
        for r in self.conns.lock().unwrap().iter() {
            r.silent.store(true, Ordering::SeqCst);
        }
    }
}

/// Copies `from` to `to` until either ends; drops the bytes while `silent`. Counts lone
/// CRLF CRLF reads (keep-alive pings) in `pings`.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    silent: Arc<AtomicBool>,
    pings: Option<Arc<AtomicUsize>>,
) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if &buf[..n] == b"\r\n\r\n"
                && let Some(p) = &pings
            {
                p.fetch_add(1, Ordering::SeqCst);
            }
            if silent.load(Ordering::SeqCst) {
                continue;
            }
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        if !silent.load(Ordering::SeqCst) {
            let _ = to.shutdown(Shutdown::Write);
        }
    });
}

#[test]
fn a_dead_tcp_flow_is_noticed_and_replaced() {
    if !require_peers(&["kamailio", "kamcmd"]) {
        return;
    }
    let kamailio = Kamailio::builder()
        .secondary(false)
        .ipv6(false)
        .start()
        .expect("kamailio starts");
    let relay = Relay::start(kamailio.addr());
    let dir = WorkDir::new("keepalive").unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[network]\nbind = \"127.0.0.1:0\"\nkeepalive_interval = 2\n\n[[account]]\nname = \"uat\"\naor = \"sip:uat@example.test\"\npassword = \"uatpw\"\ntransport = \"tcp\"\nexpires = 300\nregistrars = [\"sip:{};transport=tcp\"]\n",
            relay.addr
        ),
    )
    .unwrap();
    let tincan = JsonCommand::spawn(&["register", "--json"], &cfg);
    let is = |name: &'static str| move |v: &serde_json::Value| v["event"] == name;
    assert!(
        tincan
            .wait_for(Duration::from_secs(15), is("registered"))
            .is_some(),
        "registered through the relay"
    );

    // Pings every 1.6-2 s are answered: no failure for longer than a ping + the 10 s pong
    // deadline.
    let quiet = tincan.wait_for(Duration::from_secs(13), |v| {
        v["event"] == "flow_failed" || v["event"] == "failed"
    });
    assert!(quiet.is_none(), "a live flow was declared dead: {quiet:?}");
    let pings = relay.pings.load(Ordering::SeqCst);
    println!("{pings} keep-alive pings in 13 s");
    assert!(pings >= 5, "{pings} pings");

    // The connection is closed under the account: a new flow and a new REGISTER at once.
    let closed = Instant::now();
    relay.close_all();
    let failed = tincan
        .wait_for(Duration::from_secs(5), is("flow_failed"))
        .expect("flow_failed");
    assert!(
        failed["reason"].as_str().unwrap().contains("closed"),
        "{failed}"
    );
    let noticed = closed.elapsed();
    let recovered = tincan
        .wait_for(Duration::from_secs(10), is("flow_recovered"))
        .expect("flow_recovered");
    println!(
        "connection closed: noticed after {} ms, registered again over a new flow after {} ms \
         (REGISTER round trips {} ms)",
        noticed.as_millis(),
        closed.elapsed().as_millis(),
        recovered["elapsed_ms"]
    );
    assert_eq!(
        relay.accepted.load(Ordering::SeqCst),
        2,
        "a second connection"
    );
    assert!(!kamailio.contacts("uat").unwrap().is_empty());

    // The flow goes silent: the missing pong gives it away within a ping + 10 s.
    let silenced = Instant::now();
    relay.silence_all();
    let failed = tincan
        .wait_for(Duration::from_secs(20), is("flow_failed"))
        .expect("flow_failed");
    assert!(
        failed["reason"].as_str().unwrap().contains("pong"),
        "{failed}"
    );
    let noticed = silenced.elapsed();
    tincan
        .wait_for(Duration::from_secs(10), is("flow_recovered"))
        .expect("flow_recovered");
    println!(
        "black-holed flow: declared dead after {} ms, registered again over a new flow after {} ms",
        noticed.as_millis(),
        silenced.elapsed().as_millis()
    );
    assert_eq!(
        relay.accepted.load(Ordering::SeqCst),
        3,
        "a third connection"
    );
    relay.close_all();
}
