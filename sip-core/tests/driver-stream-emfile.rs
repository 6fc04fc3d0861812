//! Out of file descriptors (issue 19, finding 7). A server runs in a child process (this test
//! binary again) whose `RLIMIT_NOFILE` is lowered with `ulimit -n` in a shell wrapper:
//! - a flood of slow TCP connections takes at most half the descriptors (the connection cap
//!   is lowered to half the limit; the flood's newest connections replace its oldest): the
//!   server can still bind a UDP socket (a call's media port) and open a connection. Before, the flood took every descriptor, and a call coming
//!   in was answered 500 (its media ports could not be bound);
//! - with every descriptor taken (by the process itself), `accept` fails with `EMFILE`: the
//!   listener backs off and keeps going without spinning, an outgoing TCP request fails with
//!   a transport error, and once descriptors are free again the connection that waited in
//!   the backlog and a new one are both answered.
//!
//! The child is stopped by its PID.
#![cfg(feature = "tokio")] // the tokio driver is what this tests
#![allow(clippy::disallowed_methods)] // a driver loop reads the clock

mod stream_server;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use rand_core::SeedableRng;
use stream_server::{Answer, PATIENCE, Read, closed_within, config, options, read_response, serve};
use tincan_sip::driver::transports::{NetInput, Transports, TransportsConfig};
use tincan_sip::endpoint::{Endpoint, EndpointConfig, Event};
use tincan_sip::message::{HeaderName, Method, RequestBuilder, Uri};
use tincan_sip::rng::XorShiftRng;
use tincan_sip::transport::{Target, Transport};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The child's descriptor limit.
const NOFILE: usize = 256;
/// Set in the child's environment.
const CHILD: &str = "TINCAN_EMFILE_CHILD";
/// Where the child may connect to (the parent's listener), in its environment.
const PEER: &str = "TINCAN_EMFILE_PEER";

/// The child process and the lines it prints.
struct Server {
    child: Child,
    stdin: ChildStdin,
    lines: std_mpsc::Receiver<String>,
}

impl Server {
    fn start(peer: SocketAddr) -> Server {
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {NOFILE} && exec \"$0\" \"$@\""))
            .arg(exe)
            .args([
                "--exact",
                "emfile_server_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env(PEER, peer.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh runs the test binary");
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = std_mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Server {
            child,
            stdin,
            lines,
        }
    }

    /// What follows `prefix` in the next line the child prints with it (the test harness may
    /// print before it on the same line).
    fn expect(&self, prefix: &str) -> String {
        let until = Instant::now() + PATIENCE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(at) = line.find(prefix) {
                        return line[at + prefix.len()..].trim().to_owned();
                    }
                }
                Err(e) => panic!("the child never said {prefix:?}: {e}"),
            }
        }
    }

    fn tell(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("the child reads its stdin");
        self.stdin.flush().expect("flushes");
    }

    /// The child's CPU time (user + system) from /proc, when there is one.
    fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: u64 =
            fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 10)) // USER_HZ is 100 on Linux
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // By its PID.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_listener_survives_running_out_of_file_descriptors() {
    if std::env::var_os(CHILD).is_some() {
        return; // the child runs `emfile_server_child` only
    }
    let peer = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let peer_addr = peer.local_addr().expect("bound");
    // Accepts and holds what the child opens.
    let _held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((s, _)) = peer.accept().await {
            conns.push(s);
        }
    });
    let mut server = Server::start(peer_addr);
    let addr: SocketAddr = server.expect("listening ").parse().expect("an address");

    // 1. A flood: twice the descriptor limit in slow connections (a message begun, never
    // finished). Those beyond the cap (half the limit) are closed by the server.
    let mut flood = Vec::new();
    for _ in 0..NOFILE {
        let mut s = TcpStream::connect(addr).await.expect("connects (backlog)");
        s.write_all(b"OPTIONS sip:").await.expect("writes");
        flood.push(s);
    }
    let cap = NOFILE / 2;
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::channel(NOFILE);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut watchers = Vec::new();
    for mut s in flood {
        let closed_tx = closed_tx.clone();
        let mut stop = stop_rx.clone();
        watchers.push(tokio::spawn(async move {
            tokio::select! {
                closed = closed_within(&mut s, PATIENCE) => {
                    if closed {
                        let _ = closed_tx.send(()).await;
                        return None;
                    }
                }
                _ = stop.changed() => {}
            }
            Some(s)
        }));
    }
    drop(closed_tx);
    // A few descriptors of the cap's half may be taken by the server's own sockets.
    let mut closed = 0;
    while closed < NOFILE - cap - 8 {
        let got = tokio::time::timeout(PATIENCE, closed_rx.recv()).await;
        assert!(
            matches!(got, Ok(Some(()))),
            "only {closed} of {NOFILE} connections were closed; the cap is {cap}"
        );
        closed += 1;
    }
    stop_tx.send(true).expect("watchers listen");
    let mut flood = Vec::new();
    for w in watchers {
        if let Some(s) = w.await.expect("watcher") {
            flood.push(s);
        }
    }
    // The server still has descriptors for a call.
    server.tell("probe");
    assert_eq!(server.expect("probe "), "udp ok, tcp ok");
    drop(flood);
    // Wait until the server has closed its side of the flood (else the descriptors it frees
    // later would spoil what comes next).
    let until = Instant::now() + PATIENCE;
    loop {
        server.tell("fds");
        let open: usize = server.expect("fds ").parse().expect("a count");
        if open < 48 {
            break;
        }
        assert!(
            Instant::now() < until,
            "the server still has {open} descriptors open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 2. Every descriptor taken by the server process itself.
    server.tell("hog");
    let hogged = server.expect("hogged ");
    assert!(hogged.ends_with("EMFILE"), "{hogged}");
    // A connection now waits in the backlog: accept fails with EMFILE.
    let mut waiting = TcpStream::connect(addr).await.expect("connects (backlog)");
    let me = waiting.local_addr().expect("bound");
    waiting
        .write_all(options(1, me).as_bytes())
        .await
        .expect("writes");
    // An outgoing request cannot open its connection: a transport error, not a hang.
    server.tell("request");
    assert_eq!(server.expect("request "), "transport error");
    // The listener backs off instead of spinning: over a second of failing accepts, the
    // child used well under a second of CPU.
    let (cpu0, wall0) = (server.cpu_time(), Instant::now());
    assert_eq!(
        read_response(&mut waiting, Duration::from_secs(1)).await,
        Read::Nothing,
        "nothing can be accepted yet"
    );
    if let (Some(cpu0), Some(cpu1)) = (cpu0, server.cpu_time()) {
        let wall = wall0.elapsed();
        assert!(
            (cpu1 - cpu0) * 2 < wall,
            "the child used {:?} of CPU in {wall:?}: accept spins",
            cpu1 - cpu0
        );
    }

    // 3. Descriptors free again: the waiting connection is accepted and answered, and so
    // is a new one.
    server.tell("release");
    server.expect("released");
    assert_eq!(
        read_response(&mut waiting, PATIENCE).await,
        Read::Status(200)
    );
    let mut fresh = TcpStream::connect(addr).await.expect("connects");
    let me = fresh.local_addr().expect("bound");
    fresh
        .write_all(options(2, me).as_bytes())
        .await
        .expect("writes");
    assert_eq!(read_response(&mut fresh, PATIENCE).await, Read::Status(200));
}

/// The server of the child process: commands on stdin, answers on stdout.
#[tokio::test]
async fn emfile_server_child() {
    if std::env::var_os(CHILD).is_none() {
        return; // run by the test above only
    }
    let peer: SocketAddr = std::env::var(PEER)
        .expect("the parent says")
        .parse()
        .expect("an address");
    let mut c = config();
    c.max_connections = 100_000; // lowered to half the descriptor limit by `bind`
    c.message_timeout = Duration::from_secs(120); // only the cap acts on the flood
    let server = serve(c, Answer::Now).await;
    let mut client = Client::bind().await;
    println!("listening {}", server.addr(Transport::Tcp));

    let (tx, mut commands) = tokio::sync::mpsc::channel::<String>(8);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    let mut hog = Vec::new();
    while let Some(command) = commands.recv().await {
        match command.as_str() {
            "probe" => {
                let udp = match std::net::UdpSocket::bind("127.0.0.1:0") {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => e.to_string(),
                };
                let tcp = match std::net::TcpStream::connect(peer) {
                    Ok(_) => "ok".to_owned(),
                    Err(e) => e.to_string(),
                };
                println!("probe udp {udp}, tcp {tcp}");
            }
            "hog" => {
                let error = loop {
                    match std::fs::File::open("/dev/null") {
                        Ok(f) => hog.push(f),
                        Err(e) => break e,
                    }
                };
                let errno = if error.raw_os_error() == Some(24) {
                    "EMFILE".to_owned()
                } else {
                    error.to_string()
                };
                println!("hogged {} {errno}", hog.len());
            }
            "request" => println!("request {}", client.options(peer).await),
            "fds" => {
                let open = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
                println!("fds {open}");
            }
            "release" => {
                hog.clear();
                println!("released");
            }
            _ => {}
        }
    }
}

/// A client endpoint that sends an OPTIONS over TCP.
struct Client {
    ep: Endpoint,
    net: Transports,
}

impl Client {
    async fn bind() -> Client {
        let net = Transports::bind(TransportsConfig::udp(
            "127.0.0.1:0".parse().expect("literal address"),
        ))
        .await
        .expect("binds");
        let mut ep = Endpoint::new(
            EndpointConfig::default(),
            Box::new(XorShiftRng::seed_from_u64(2)),
        );
        for (transport, addr) in net.local_addresses() {
            ep.add_local_address(*transport, *addr);
            ep.add_local_address(Transport::Tcp, *addr);
        }
        Client { ep, net }
    }

    /// How an OPTIONS over TCP to `to` ends.
    async fn options(&mut self, to: SocketAddr) -> String {
        let text = format!("sip:bob@{to};transport=tcp");
        let uri = Uri::parse(&text).expect("a URI");
        let request = RequestBuilder::new(Method::Options, &uri)
            .header(HeaderName::From, "<sip:alice@127.0.0.1>;tag=c1")
            .header(HeaderName::To, "<sip:bob@127.0.0.1>")
            .call_id("emfile-client@127.0.0.1")
            .cseq(1)
            .build();
        let tx = self
            .ep
            .send_request(Instant::now(), request, Target::new(Transport::Tcp, to))
            .expect("sends");
        let until = Instant::now() + PATIENCE;
        loop {
            while let Some(t) = self.ep.poll_transmit() {
                self.net.send(t).await;
            }
            while let Some(event) = self.ep.poll_event() {
                match event {
                    Event::TransportError { transaction } if transaction == tx => {
                        return "transport error".into();
                    }
                    Event::Timeout { transaction } if transaction == tx => {
                        return "timeout".into();
                    }
                    Event::Response {
                        transaction,
                        response,
                    } if transaction == tx => {
                        return format!("{}", response.status().unwrap_or(0));
                    }
                    _ => {}
                }
            }
            if Instant::now() > until {
                return "nothing".into();
            }
            let deadline = self.ep.poll_timeout().unwrap_or(until).min(until);
            tokio::select! {
                Some(input) = self.net.next() => {
                    let now = Instant::now();
                    match input {
                        NetInput::Received(r) => self.ep.handle_received(now, r),
                        NetInput::TransportError(t) => self.ep.handle_transport_error(now, t),
                        _ => {}
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => self.ep.handle_timeout(Instant::now()),
            }
        }
    }
}
