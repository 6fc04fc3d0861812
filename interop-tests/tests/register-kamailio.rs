//! `tincan register` against a real kamailio registrar with digest auth: UDP, TCP and IPv6,
//! a wrong password, a configured realm (kamailio's answered, another refused), and failover from a refused (TCP and UDP) and a black-holed registrar.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use tincan_interop_tests::{Kamailio, WorkDir, require_peers, tincan_binary};

struct Outcome {
    code: i32,
    events: Vec<serde_json::Value>,
    stderr: String,
    took: Duration,
}

/// Writes a config with one account and runs `tincan register --once --json`.
fn register(name: &str, account: &str) -> Outcome {
    register_from(name, "127.0.0.1:0", account)
}

/// [`register`] with the phone bound to `bind`.
fn register_from(name: &str, bind: &str, account: &str) -> Outcome {
    let dir = WorkDir::new(name).expect("scratch dir");
    let path = dir.path().join("config.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "[network]\nbind = \"{bind}\"\n\n[[account]]\n{account}").unwrap();
    let started = Instant::now();
    let out = Command::new(tincan_binary())
        .args(["register", "--once", "--json", "--wait", "20"])
        .env("TINCAN_CONFIG", &path)
        .output()
        .expect("tincan runs");
    let took = started.elapsed();
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        events,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    }
}

fn account(registrars: &[String], password: &str) -> String {
    let list: Vec<String> = registrars.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "name = \"uat\"\naor = \"sip:uat@example.test\"\npassword = \"{password}\"\nregistrars = [{}]\nexpires = 300\n",
        list.join(", ")
    )
}

fn registered_at(o: &Outcome) -> Vec<String> {
    o.events
        .iter()
        .filter(|e| e["event"] == "registered")
        .map(|e| e["registrar"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn registers_over_udp_tcp_and_ipv6() {
    if !require_peers(&["kamailio", "kamcmd"]) {
        return;
    }
    let kamailio = Kamailio::builder()
        .ipv6(true)
        .start()
        .expect("kamailio starts");
    let a = kamailio.addr();
    for (label, uri) in [
        ("udp", format!("sip:{a};transport=udp")),
        ("tcp", format!("sip:{a};transport=tcp")),
    ] {
        let o = register(&format!("reg-{label}"), &account(&[uri], "uatpw"));
        assert_eq!(o.code, 0, "{label}: {:?} {}", o.events, o.stderr);
        let at = registered_at(&o);
        assert_eq!(at.len(), 1, "{label}: {:?}", o.events);
        assert!(at[0].starts_with(label), "{at:?}");
        let ev = o
            .events
            .iter()
            .find(|e| e["event"] == "registered")
            .unwrap();
        assert_eq!(ev["expires"], 300);
        assert!(!ev["bindings"].as_array().unwrap().is_empty());
        assert!(
            o.events.iter().any(|e| e["event"] == "unregistered"),
            "--once unregisters"
        );
        println!("{label}: registered in {} ms", ev["elapsed_ms"]);
    }
    if let Some(v6) = kamailio.addr_v6() {
        let o = register_from(
            "reg-v6",
            "[::1]:0",
            &account(&[format!("sip:{v6}")], "uatpw"),
        );
        assert_eq!(o.code, 0, "v6: {:?} {}", o.events, o.stderr);
    }
}

#[test]
fn wrong_password_is_a_clear_error() {
    if !require_peers(&["kamailio", "kamcmd"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    let o = register(
        "reg-badpw",
        &account(&[format!("sip:{}", kamailio.addr())], "nope"),
    );
    assert_eq!(o.code, 1);
    let failed = o
        .events
        .iter()
        .find(|e| e["event"] == "failed")
        .expect("a failure event");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("wrong username or password"), "{error}");
    assert!(
        o.took < Duration::from_secs(15),
        "no retry loop on a wrong password"
    );
}

#[test]
fn only_the_configured_realm_is_answered() {
    if !require_peers(&["kamailio", "kamcmd"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    let registrar = format!("sip:{}", kamailio.addr());
    // kamailio's realm (example.test) configured: registers.
    let o = register(
        "reg-realm-ok",
        &format!(
            "{}realm = \"example.test\"\n",
            account(std::slice::from_ref(&registrar), "uatpw")
        ),
    );
    assert_eq!(o.code, 0, "{:?} {}", o.events, o.stderr);
    assert_eq!(registered_at(&o).len(), 1, "{:?}", o.events);
    // Another realm configured: kamailio's 401 is not answered, and says so.
    let o = register(
        "reg-realm-other",
        &format!("{}realm = \"other.test\"\n", account(&[registrar], "uatpw")),
    );
    assert_eq!(o.code, 1, "{:?} {}", o.events, o.stderr);
    assert!(registered_at(&o).is_empty(), "{:?}", o.events);
    let failed = o
        .events
        .iter()
        .find(|e| e["event"] == "failed")
        .expect("a failure event");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error
            .contains("refused to answer the 401 challenge to REGISTER for realm \"example.test\"")
            && error.contains("\"other.test\""),
        "{error}"
    );
    assert!(
        o.took < Duration::from_secs(15),
        "no retry loop on a refused realm"
    );
}

#[test]
fn fails_over_from_refused_and_black_holed_registrars() {
    if !require_peers(&["kamailio", "kamcmd"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    // Refused: a TCP port nobody listens on (connection refused at once).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = register(
        "reg-refused",
        &account(
            &[
                format!("sip:{closed};transport=tcp"),
                format!("sip:{};transport=tcp", kamailio.addr()),
            ],
            "uatpw",
        ),
    );
    assert_eq!(o.code, 0, "{:?} {}", o.events, o.stderr);
    let failed = o
        .events
        .iter()
        .find(|e| e["event"] == "failed")
        .expect("the first fails");
    let refused_ms = failed["elapsed_ms"].as_u64().unwrap();
    println!("time to fail over from a refused TCP registrar: {refused_ms} ms");
    assert!(registered_at(&o)[0].contains(&kamailio.addr().to_string()));

    // Black-holed: a UDP socket that reads and never answers.
    let hole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let hole_addr: SocketAddr = hole.local_addr().unwrap();
    let o = register(
        "reg-blackhole",
        &account(
            &[
                format!("sip:{hole_addr}"),
                format!("sip:{}", kamailio.addr()),
            ],
            "uatpw",
        ),
    );
    assert_eq!(o.code, 0, "{:?} {}", o.events, o.stderr);
    let failed = o
        .events
        .iter()
        .find(|e| e["event"] == "failed")
        .expect("the first fails");
    let hole_ms = failed["elapsed_ms"].as_u64().unwrap();
    println!("time to fail over from a black-holed UDP registrar: {hole_ms} ms");
    // The per-target budget (4 s), not Timer F (32 s).
    assert!(hole_ms < 10_000, "{hole_ms} ms");
    drop(hole);
}

#[test]
fn fails_over_from_a_refused_udp_registrar_at_once() {
    if !require_peers(&["kamailio", "kamcmd"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    // Refused over UDP: a closed UDP port; the ICMP port unreachable (seen through
    // IP_RECVERR) fails the REGISTER at once instead of after the 4 s budget.
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let o = register(
        "reg-refused-udp",
        &account(
            &[format!("sip:{closed}"), format!("sip:{}", kamailio.addr())],
            "uatpw",
        ),
    );
    assert_eq!(o.code, 0, "{:?} {}", o.events, o.stderr);
    let failed = o
        .events
        .iter()
        .find(|e| e["event"] == "failed")
        .expect("the first fails");
    assert!(
        failed["error"].as_str().unwrap().contains("transport"),
        "{failed}"
    );
    let refused_ms = failed["elapsed_ms"].as_u64().unwrap();
    println!("time to fail over from a refused UDP registrar: {refused_ms} ms");
    assert!(registered_at(&o)[0].contains(&kamailio.addr().to_string()));
    // A transport error, not the 4 s per-target budget.
    assert!(refused_ms < 4_000, "{refused_ms} ms");
}
