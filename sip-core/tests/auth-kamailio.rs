//! Interop: `DigestClient` answers real kamailio 5.6 digest challenges (MD5 and SHA-256,
//! qop=auth, nonce counting on), over UDP on loopback. A wrong password is reported as
//! rejected instead of looping; a preemptive refresh with nc=00000002 is accepted.
//!
//! kamailio is started by the test with `tests/data/auth/kamailio-digest.cfg` on a free port
//! and stopped by its PID (also on panic, via Drop). Without the binary the test skips
//! (`skip::skip`; a failure under `CI=true`).
#![allow(clippy::disallowed_methods)] // driver-side test: real clock for a real peer

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand_core::SeedableRng;
use rand_xorshift::XorShiftRng;
use tincan_sip::auth::{
    AuthError, Challenge, ChallengeKind, Credentials, DigestChallenge, DigestClient, DigestRequest,
};

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

struct Kamailio {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM first so the main process stops its children, then make sure.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn find(bin: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(bin)).find(|p| p.is_file())
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind a loopback UDP socket")
        .port()
}

fn start(bin: &Path, algorithm: &str) -> Kamailio {
    let template =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/auth/kamailio-digest.cfg");
    let template = fs::read_to_string(template).expect("read the kamailio template");
    for attempt in 0..5 {
        let port = free_udp_port();
        let dir = std::env::temp_dir().join(format!(
            "tincan-auth-kamailio-{}-{algorithm}-{attempt}",
            std::process::id()
        ));
        let run = dir.join("run");
        fs::create_dir_all(&run).expect("create a temp dir");
        let cfg = dir.join("kamailio.cfg");
        fs::write(
            &cfg,
            template
                .replace("@PORT@", &port.to_string())
                .replace("@ALGORITHM@", algorithm),
        )
        .expect("write the kamailio config");
        let log = fs::File::create(dir.join("kamailio.log")).expect("create the log file");
        let child = Command::new(bin)
            .arg("-f")
            .arg(&cfg)
            .args(["-DD", "-E", "-n", "1", "-m", "32", "-M", "8"])
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .arg("-Y")
            .arg(&run)
            .arg("-w")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kamailio");
        let mut k = Kamailio {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        // Ready when it answers an OPTIONS (405); bounded.
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind a probe socket");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("set a read timeout");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = k.child.try_wait() {
                break;
            }
            let local = sock.local_addr().expect("bound socket has an address");
            let _ = sock.send_to(options(k.addr, local).as_bytes(), k.addr);
            let mut buf = [0u8; 4096];
            if let Ok((n, _)) = sock.recv_from(&mut buf)
                && buf[..n].starts_with(b"SIP/2.0 405")
            {
                eprintln!("kamailio ({algorithm}) pid {} on {}", k.child.id(), k.addr);
                return k;
            }
        }
        let log = fs::read_to_string(k.dir.join("kamailio.log")).unwrap_or_default();
        eprintln!("kamailio did not come up on port {port}: {log}");
        let _ = k.child.kill();
    }
    panic!("kamailio did not start after 5 attempts");
}

fn options(to: SocketAddr, local: SocketAddr) -> String {
    format!(
        "OPTIONS sip:{to} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-probe{}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:probe@example.test>;tag=p\r\nTo: <sip:{to}>\r\n\
         Call-ID: probe-{}@tincan\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        local.port(),
        local.port()
    )
}

struct Uac {
    sock: UdpSocket,
    server: SocketAddr,
    cseq: u32,
}

impl Uac {
    fn new(server: SocketAddr) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the UAC socket");
        sock.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set a read timeout");
        Uac {
            sock,
            server,
            cseq: 0,
        }
    }

    fn uri(&self) -> String {
        format!("sip:{}", self.server)
    }

    /// Send a REGISTER with these authorization header lines; return (status, challenges).
    fn register(&mut self, auth: &[(String, String)]) -> (u16, Vec<String>) {
        self.cseq += 1;
        let local = self.sock.local_addr().expect("bound socket has an address");
        let mut msg = format!(
            "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-reg{cseq}x{port};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:alice@example.test>;tag=tincan1\r\n\
             To: <sip:alice@example.test>\r\nCall-ID: reg-{port}@tincan\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sip:alice@{local}>\r\nExpires: 60\r\n",
            uri = self.uri(),
            cseq = self.cseq,
            port = local.port(),
        );
        for (name, value) in auth {
            msg.push_str(&format!("{name}: {value}\r\n"));
        }
        msg.push_str("Content-Length: 0\r\n\r\n");
        self.sock
            .send_to(msg.as_bytes(), self.server)
            .expect("send REGISTER");
        let mut buf = [0u8; 8192];
        let (n, _) = self
            .sock
            .recv_from(&mut buf)
            .expect("a response from kamailio");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let status: u16 = text
            .get(8..11)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a response: {text}"));
        let challenges = text
            .lines()
            .filter_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("WWW-Authenticate")
                    .then(|| value.trim().to_owned())
            })
            .collect();
        (status, challenges)
    }
}

fn headers(answers: &[tincan_sip::auth::Authorization]) -> Vec<(String, String)> {
    answers
        .iter()
        .map(|a| (a.header_name().to_owned(), a.credentials.to_string()))
        .collect()
}

fn register_with(k: &Kamailio, algorithm: &str) {
    let mut rng = XorShiftRng::seed_from_u64(5);
    let mut uac = Uac::new(k.addr);
    let uri = uac.uri();
    let request = DigestRequest {
        method: "REGISTER",
        uri: &uri,
        body: b"",
    };

    // 1. No credentials: 401 with a challenge of the configured algorithm.
    let (status, challenges) = uac.register(&[]);
    assert_eq!(status, 401);
    eprintln!("challenge: {}", challenges[0]);
    let parsed: Vec<Challenge> = challenges
        .iter()
        .map(|c| Challenge::parse(c).unwrap())
        .collect();
    let typed = DigestChallenge::from_challenge(&parsed[0]).unwrap();
    if algorithm == "SHA-256" {
        assert_eq!(typed.algorithm_token.as_deref(), Some("SHA-256"));
    }

    // 2. Answered: 200.
    let mut client = DigestClient::new("alice", "alicepw");
    let answers = client
        .respond(ChallengeKind::Www, &parsed, &request, &[], &mut rng)
        .unwrap();
    eprintln!("credentials: {}", answers[0].credentials);
    let (status, _) = uac.register(&headers(&answers));
    assert_eq!(status, 200, "kamailio accepted the {algorithm} digest");

    // 3. Refresh with the same nonce, nc=00000002: accepted (kamailio checks nc).
    let refresh = client.authorize(&request, &mut rng);
    assert!(refresh[0].credentials.to_string().contains("nc=00000002"));
    let (status, _) = uac.register(&headers(&refresh));
    assert_eq!(status, 200, "nonce reuse with an incremented nc");

    // 4. Wrong password: challenged again without stale -> Rejected, no loop.
    let mut bad = DigestClient::new("alice", "wrong");
    let (_, challenges) = uac.register(&[]);
    let parsed: Vec<Challenge> = challenges
        .iter()
        .map(|c| Challenge::parse(c).unwrap())
        .collect();
    let answers = bad
        .respond(ChallengeKind::Www, &parsed, &request, &[], &mut rng)
        .unwrap();
    let (status, challenges) = uac.register(&headers(&answers));
    assert_eq!(status, 401);
    let sent: Vec<Credentials> = answers.iter().map(|a| a.credentials.clone()).collect();
    let parsed: Vec<Challenge> = challenges
        .iter()
        .map(|c| Challenge::parse(c).unwrap())
        .collect();
    let err = bad
        .respond(ChallengeKind::Www, &parsed, &request, &sent, &mut rng)
        .unwrap_err();
    assert_eq!(
        err,
        AuthError::Rejected {
            realm: "example.test".into()
        }
    );
    eprintln!("wrong password: {err}");
}

#[test]
fn kamailio_accepts_md5_and_sha256_digests() {
    let Some(bin) = find("kamailio") else {
        skip::skip("kamailio not installed (Debian kamailio; run scripts/install-deps.sh --test)");
        return;
    };
    for algorithm in ["MD5", "SHA-256"] {
        let k = start(&bin, algorithm);
        register_with(&k, algorithm);
    }
}
