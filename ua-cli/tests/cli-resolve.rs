//! `tincan resolve`: the numeric-host shortcut, the full RFC 3263 chain from a real dnsmasq on
//! a free loopback port, and `--probe` against a local SIP endpoint.
//!
//! dnsmasq (Debian `dnsmasq-base`) is started by the test and stopped by its PID (also on
//! panic, via Drop). Without the binary the dnsmasq tests skip (`skip::skip`: a loud
//! `TINCAN-SKIP` line), except when `CI=true`, where they fail.

use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tincan_sip::driver::{Driver, DriverConfig, IncomingEvent};
use tincan_sip::message::response_to;
use tincan_sip::transport::Transport;

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

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
    let o = Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "$ tincan {}\n{}{}(exit {})",
        args.join(" "),
        o.stdout,
        o.stderr,
        o.code
    );
    o
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(o.stdout.trim()).expect("--json prints one JSON object")
}

/// "transport addr pPRIORITY" for each target of a `--json` report.
fn summary(v: &serde_json::Value) -> Vec<String> {
    v["targets"]
        .as_array()
        .expect("targets is an array")
        .iter()
        .map(|t| {
            format!(
                "{} {} p{}",
                t["transport"].as_str().unwrap(),
                t["addr"].as_str().unwrap(),
                t["priority"]
            )
        })
        .collect()
}

#[test]
fn numeric_host_needs_no_dns() {
    // A DNS server that does not exist: it must not be asked.
    let o = tincan(&[
        "resolve",
        "--dns-server",
        "127.0.0.1:9",
        "sip:192.0.2.1:5070;transport=tcp",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout
            .contains("1. tcp 192.0.2.1:5070 priority 0 weight 0"),
        "{}",
        o.stdout
    );
    let o = tincan(&["resolve", "--json", "sips:[::1]"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v = json(&o);
    assert_eq!(summary(&v), ["tls [::1]:5061 p0"]);
    assert_eq!(v["lookups"].as_array().map(Vec::len), Some(0));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(tincan(&["resolve", "mailto:alice@example.com"]).code, 2);
    assert_eq!(tincan(&["resolve", "sip:192.0.2.1;transport=sctp"]).code, 2);
    assert_eq!(
        tincan(&["resolve", "--transport", "smoke", "sip:x"]).code,
        2
    );
    assert_eq!(tincan(&["resolve"]).code, 2);
}

// ---------- dnsmasq ----------

/// A dnsmasq child process, killed (by PID) and reaped on drop.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// dnsmasq, or a loud SKIP (a failure under `CI=true`).
fn find_dnsmasq(test: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    let found = dirs
        .into_iter()
        .map(|d| d.join("dnsmasq"))
        .find(|p| p.is_file());
    if found.is_none() {
        skip::skip(&format!(
            "{test}: dnsmasq not installed (Debian dnsmasq-base; run scripts/install-deps.sh --test)"
        ));
    }
    found
}

/// A port free for both UDP and TCP on 127.0.0.1 (dnsmasq serves both).
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback UDP socket");
        let port = udp
            .local_addr()
            .expect("bound socket has an address")
            .port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Starts dnsmasq with sip-core's test zone (example.test: NAPTR for TLS/TCP/UDP plus a
/// non-SIP record, SRV with priorities 10 and 20, A and AAAA; TTL 60).
fn start_dnsmasq(bin: &Path, test: &str) -> Dnsmasq {
    let conf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../sip-core/tests/data/dns/dnsmasq.conf");
    for attempt in 0..5 {
        let dir = std::env::temp_dir().join(format!(
            "tincan-cli-resolve-{test}-{}-{attempt}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).expect("create a temp dir");
        let port = free_port();
        let log = fs::File::create(dir.join("dnsmasq.log")).expect("create the log file");
        let child = Command::new(bin)
            .arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf.display()))
            .arg(format!("--port={port}"))
            .arg("--listen-address=127.0.0.1")
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .arg("--log-facility=-")
            .arg("--log-queries")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dnsmasq");
        let mut d = Dnsmasq {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        // Wait (bounded) for "started" in the log, or for the process to die.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let log = fs::read_to_string(d.dir.join("dnsmasq.log")).unwrap_or_default();
            if log.contains("started, version") {
                eprintln!("dnsmasq pid {} on {}", d.child.id(), d.addr);
                return d;
            }
            if let Ok(Some(status)) = d.child.try_wait() {
                eprintln!("dnsmasq exited ({status}) on port {port}: {log}");
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = d.child.kill();
    }
    panic!("dnsmasq did not start after 5 attempts");
}

#[test]
fn prints_the_naptr_srv_address_chain_from_dnsmasq() {
    let Some(bin) = find_dnsmasq("cli-resolve chain") else {
        return;
    };
    let dns = start_dnsmasq(&bin, "chain");
    let server = dns.addr.to_string();

    let o = tincan(&["resolve", "--dns-server", &server, "sip:alice@example.test"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    for line in [
        "NAPTR 10 10 \"S\" \"SIPS+D2T\" \"\" _sips._tcp.example.test (ttl 60)",
        "NAPTR 5 10 \"U\" \"E2U+sip\"",
        "SRV _sip._udp.example.test: 2 records",
        "SRV 10 100 5060 sip1.example.test (ttl 60)",
        "SRV 20 100 5062 sip2.example.test (ttl 60)",
        "A sip1.example.test: 1 record",
        "A 127.0.0.1 (ttl 60)",
        "AAAA ::1 (ttl 60)",
        "1. tls 127.0.0.1:5061 priority 10 weight 100 via _sips._tcp.example.test -> sip1.example.test",
        "3. tls 127.0.0.2:5063 priority 20 weight 100",
        "9. udp 127.0.0.2:5062 priority 20 weight 100",
    ] {
        // dnsmasq may or may not write the trailing dot of names: compare without it.
        assert!(
            o.stdout
                .replace(". (ttl", " (ttl")
                .replace(".test. ", ".test ")
                .contains(line),
            "{line:?} missing in:\n{}",
            o.stdout
        );
    }

    let o = tincan(&[
        "resolve",
        "--json",
        "--dns-server",
        &server,
        "sip:example.test",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v = json(&o);
    assert_eq!(
        summary(&v),
        [
            "tls 127.0.0.1:5061 p10",
            "tls [::1]:5061 p10",
            "tls 127.0.0.2:5063 p20",
            "tcp 127.0.0.1:5060 p10",
            "tcp [::1]:5060 p10",
            "tcp 127.0.0.2:5062 p20",
            "udp 127.0.0.1:5060 p10",
            "udp [::1]:5060 p10",
            "udp 127.0.0.2:5062 p20",
        ]
    );
    let lookups = v["lookups"].as_array().expect("lookups is an array");
    let names: Vec<String> = lookups
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["type"].as_str().unwrap_or("?"),
                l["name"].as_str().unwrap_or("?")
            )
        })
        .collect();
    assert_eq!(names[0], "NAPTR example.test", "{names:?}");
    assert!(
        names.contains(&"SRV _sips._tcp.example.test".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"AAAA sip2.example.test".to_owned()),
        "{names:?}"
    );
    assert!(v.get("probes").is_none(), "no probes without --probe");
    let aaaa = lookups
        .iter()
        .find(|l| l["type"] == "AAAA" && l["name"] == "sip1.example.test")
        .expect("an AAAA lookup of sip1");
    assert_eq!(aaaa["records"][0]["address"], "::1", "{aaaa}");
    assert_eq!(aaaa["records"][0]["ttl"], 60, "{aaaa}");
    assert!(aaaa["error"].is_null(), "{aaaa}");
}

#[test]
fn transport_option_skips_naptr() {
    let Some(bin) = find_dnsmasq("cli-resolve transport") else {
        return;
    };
    let dns = start_dnsmasq(&bin, "transport");
    let server = dns.addr.to_string();
    let o = tincan(&[
        "resolve",
        "--json",
        "--dns-server",
        &server,
        "--transport",
        "udp",
        "sip:example.test",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v = json(&o);
    assert_eq!(
        summary(&v),
        [
            "udp 127.0.0.1:5060 p10",
            "udp [::1]:5060 p10",
            "udp 127.0.0.2:5062 p20"
        ]
    );
    assert_eq!(v["lookups"][0]["type"], "SRV", "{v}");
    let srv = &v["lookups"][0]["records"];
    assert_eq!(srv.as_array().map(Vec::len), Some(2), "{v}");
    for r in srv.as_array().unwrap() {
        assert_eq!(r["type"], "SRV", "{v}");
        assert_eq!(r["ttl"], 60, "{v}");
        assert!(r["priority"] == 10 || r["priority"] == 20, "{v}");
        assert_eq!(r["weight"], 100, "{v}");
    }
}

#[test]
fn missing_domain_names_every_record_tried() {
    let Some(bin) = find_dnsmasq("cli-resolve missing") else {
        return;
    };
    let dns = start_dnsmasq(&bin, "missing");
    let server = dns.addr.to_string();
    let o = tincan(&[
        "resolve",
        "--dns-server",
        &server,
        "sip:missing.example.test",
    ]);
    assert_eq!(o.code, 1, "{}", o.stderr);
    for part in [
        "no SIP servers for missing.example.test",
        "NAPTR missing.example.test: NXDOMAIN",
        "SRV _sip._udp.missing.example.test: NXDOMAIN",
        "A missing.example.test: NXDOMAIN",
    ] {
        assert!(o.stderr.contains(part), "{part:?} missing in: {}", o.stderr);
    }
    let o = tincan(&[
        "resolve",
        "--json",
        "--dns-server",
        &server,
        "sip:missing.example.test",
    ]);
    assert_eq!(o.code, 1);
    let v = json(&o);
    assert!(
        v["error"].as_str().unwrap().contains("no SIP servers"),
        "{v}"
    );
    assert!(v["lookups"].as_array().unwrap().len() >= 5, "{v}");
    assert_eq!(v["lookups"][0]["error"], "NXDOMAIN", "{v}");
}

#[test]
fn dns_server_from_the_config_file() {
    let Some(bin) = find_dnsmasq("cli-resolve config") else {
        return;
    };
    let dns = start_dnsmasq(&bin, "config");
    let cfg = dns.dir.join("config.toml");
    fs::write(&cfg, format!("[network]\ndns_server = \"{}\"\n", dns.addr)).unwrap();
    let o = tincan(&[
        "--config",
        cfg.to_str().unwrap(),
        "resolve",
        "--json",
        "sip:example.test;transport=tcp",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(summary(&json(&o))[0], "tcp 127.0.0.1:5060 p10");
    // --dns-server wins over the config: a dead server gives timeouts, exit 1.
    let o = tincan(&[
        "resolve",
        "--config",
        cfg.to_str().unwrap(),
        "--dns-server",
        "127.0.0.1:9",
        "sip:example.test;transport=tcp",
    ]);
    assert_eq!(o.code, 1, "{}", o.stderr);
}

// ---------- --probe ----------

/// Runs the binary off the runtime's threads (the driver answers meanwhile).
async fn tincan_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tincan(&args)
    })
    .await
    .expect("the tincan thread ends")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_sends_options_to_each_target() {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut config = DriverConfig::udp(any);
    config.tcp = vec![any];
    config.seed = Some(7);
    let (server, mut incoming) = Driver::start(config).await.expect("a loopback driver");
    let answering = tokio::spawn(async move {
        let mut n = 0;
        while let Some(ev) = incoming.next().await {
            if let IncomingEvent::Request(req) = ev {
                n += 1;
                let mut ok = response_to(&req.request, 200, None);
                ok.set_to_tag("probe-answer");
                req.respond(ok).await.expect("the answer is sent");
            }
        }
        n
    });
    let udp = server.local_address(Transport::Udp).unwrap();
    let tcp = server.local_address(Transport::Tcp).unwrap();

    let o = tincan_async(vec![
        "resolve".into(),
        "--probe".into(),
        format!("sip:{udp}"),
    ])
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("probes:"), "{}", o.stdout);
    assert!(
        o.stdout.contains(&format!("1. udp {udp}: 200 OK in ")),
        "{}",
        o.stdout
    );

    let o = tincan_async(vec![
        "resolve".into(),
        "--probe".into(),
        "--json".into(),
        format!("sip:{tcp};transport=tcp"),
    ])
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v = json(&o);
    let p = &v["probes"][0];
    assert_eq!(p["status"], 200, "{v}");
    assert_eq!(p["transport"], "tcp", "{v}");
    assert!(p["rtt_ms"].as_f64().is_some(), "{v}");
    assert!(p["error"].is_null(), "{v}");

    server.shutdown().await;
    assert_eq!(answering.await.unwrap(), 2, "one OPTIONS per probe");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_without_an_answer_exits_1() {
    // A closed TCP port: connection refused, a transport error.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let o = tincan_async(vec![
        "resolve".into(),
        "--probe".into(),
        "--json".into(),
        format!("sip:{closed};transport=tcp"),
    ])
    .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["probes"][0]["error"], "transport error", "{v}");
    assert!(v["probes"][0]["status"].is_null(), "{v}");
    // The targets are still printed.
    assert_eq!(summary(&v), [format!("tcp {closed} p0")]);

    // A UDP socket that reads and never answers: a timeout (after --timeout).
    let hole = UdpSocket::bind("127.0.0.1:0").unwrap();
    let o = tincan_async(vec![
        "resolve".into(),
        "--probe".into(),
        "--timeout".into(),
        "0.3".into(),
        format!("sip:{}", hole.local_addr().unwrap()),
    ])
    .await;
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stdout.contains("no answer (timeout)"), "{}", o.stdout);
    assert!(o.stderr.contains("no target answered"), "{}", o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_over_ipv6() {
    // Only a machine without IPv6 may skip; with it, the driver must start on [::1].
    if !skip::ipv6_loopback() {
        return;
    }
    let any: SocketAddr = "[::1]:0".parse().unwrap();
    let (server, mut incoming) = Driver::start(DriverConfig::udp(any))
        .await
        .expect("the driver starts on [::1] (this machine has IPv6)");
    tokio::spawn(async move {
        while let Some(ev) = incoming.next().await {
            if let IncomingEvent::Request(req) = ev {
                let mut ok = response_to(&req.request, 200, None);
                ok.set_to_tag("v6");
                req.respond(ok).await.expect("the answer is sent");
            }
        }
    });
    let udp = server.local_address(Transport::Udp).unwrap();
    let o = tincan_async(vec![
        "resolve".into(),
        "--probe".into(),
        "--json".into(),
        format!("sip:{udp}"),
    ])
    .await;
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v = json(&o);
    assert_eq!(v["probes"][0]["addr"], udp.to_string(), "{v}");
    assert_eq!(v["probes"][0]["status"], 200, "{v}");
    server.shutdown().await;
}
