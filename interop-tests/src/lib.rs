//! Harness for Tincan's interop tests: starts real third-party SIP software on loopback,
//! picks free ports and stops what it started by PID.
//!
//! Peers: [`Sipp`] (sipp, Debian `sip-tester`), [`Kamailio`] (registrar and proxy with
//! digest auth), [`Dnsmasq`] (NAPTR/SRV/A/AAAA for test domains), [`Baresip`] (a second
//! softphone with a [`BaresipControl`] client) and [`sipsak`]; [`fleet`] runs several
//! servers behind kamailio's dispatcher (`lab/kamailio/kamailio-dispatcher.cfg`). Every peer gets its own
//! scratch directory and free ports, so tests run in parallel; every peer is stopped by PID
//! when dropped, also when the test panics (and then its logs are printed and its directory
//! is kept). [`audio`] checks recorded WAV files (level, tone frequency, duration);
//! [`pcap`] writes PCMU RTP captures for sipp's `play_pcap_audio`; [`TincanProcess`] runs the
//! `tincan` binary under test the same way and reads its `--json` events back;
//! [`tincan_example`] builds and finds the examples of the `tincan` package; [`Tmux`] runs
//! the full-screen phone ([`ScreenPhone`]) in a private tmux server, types keys and reads the
//! screen.
//!
//! ```no_run
//! use std::time::Duration;
//! use tincan_interop_tests::{Sipp, require_peer};
//!
//! if !require_peer("sipp") {
//!     return; // loud SKIP on a developer machine without sipp; a panic in CI
//! }
//! let uas = Sipp::builtin("uas").spawn().expect("sipp uas starts");
//! let run = Sipp::builtin("uac")
//!     .remote(uas.addr())
//!     .calls(10)
//!     .rate(10.0)
//!     .timeout(Duration::from_secs(20))
//!     .run()
//!     .expect("sipp uac runs");
//! assert_eq!(run.successful, 10);
//! ```
//!
//! See `docs/interop.md` for how to run the interop tests and each peer's gotchas.

#![forbid(unsafe_code)]

pub mod audio;
pub mod baresip;
pub mod dnsmasq;
pub mod fleet;
pub mod kamailio;
pub mod pcap;
pub mod peer;
pub mod ports;
pub mod sipp;
pub mod sipsak;
pub mod skip;
pub mod tincan;
pub mod tmux;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use baresip::{Baresip, BaresipBuilder, BaresipControl};
pub use dnsmasq::{DnsRecords, Dnsmasq};
pub use kamailio::{Kamailio, KamailioBuilder};
pub use peer::{Peer, PeerBuilder, PeerError, WorkDir};
pub use ports::{
    free_port, free_port_dual_stack, free_port_pair, free_port_pair_v6, free_tcp_port,
    free_tcp_port_v6, free_udp_port, free_udp_port_v6,
};
pub use sipp::{Sipp, SippOutcome, SippPeer, Transport};
pub use skip::{ipv6_loopback, skip};
pub use tincan::{JsonCommand, ScreenPhone, Tincan, TincanProcess};
pub use tmux::Tmux;

/// The harness's copies of the lab configs and scenarios (`interop-tests/lab`).
pub fn lab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lab")
}

/// `lab_dir()/relative`.
pub fn lab_file(relative: &str) -> PathBuf {
    lab_dir().join(relative)
}

/// Finds an executable on `PATH`, or in `/usr/sbin` and `/sbin` (kamailio and dnsmasq live
/// there, and a non-root `PATH` may not have them).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The path of a program the harness needs; falls back to the bare name (the spawn then
/// fails with a clear error) when it is not installed.
pub(crate) fn program(name: &str) -> PathBuf {
    find_program(name).unwrap_or_else(|| PathBuf::from(name))
}

/// Whether the peer program `name` is installed. When it is not, this is a
/// [`skip::skip`]: a panic with `CI=true` in the environment (interop tests never skip in
/// CI), otherwise a loud `TINCAN-SKIP` line, and false: the test should return early.
///
/// ```no_run
/// if !tincan_interop_tests::require_peer("kamailio") {
///     return;
/// }
/// ```
pub fn require_peer(name: &str) -> bool {
    if find_program(name).is_some() {
        return true;
    }
    skip::skip(&format!(
        "{name} not installed (run scripts/install-deps.sh --test)"
    ));
    false
}

/// [`require_peer`] for several programs; true when all are installed.
pub fn require_peers(names: &[&str]) -> bool {
    // Check them all (no short circuit), so every missing one is reported.
    let installed: Vec<bool> = names.iter().map(|name| require_peer(name)).collect();
    installed.into_iter().all(|ok| ok)
}

/// Sends a SIP OPTIONS over UDP from 127.0.0.1 (or ::1) to `target` until a response
/// arrives, at most `timeout`; returns the status line (e.g. `SIP/2.0 200 Keepalive`).
/// Used to wait until a SIP server really answers.
pub fn sip_options_ping(target: SocketAddr, timeout: Duration) -> Result<String, PeerError> {
    let local = if target.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let socket =
        UdpSocket::bind(local).map_err(|e| PeerError::io("binding the OPTIONS socket", e))?;
    let local = socket
        .local_addr()
        .map_err(|e| PeerError::io("reading the OPTIONS socket address", e))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| PeerError::io("setting a read timeout", e))?;
    let deadline = Instant::now() + timeout;
    let mut attempt = 0u32;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        attempt += 1;
        let request = format!(
            "OPTIONS sip:{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-harness-{attempt};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:harness@{ip}>;tag=harness{attempt}\r\n\
             To: <sip:{target}>\r\n\
             Call-ID: harness-ping-{attempt}-{port}@{ip}\r\n\
             CSeq: {attempt} OPTIONS\r\n\
             Content-Length: 0\r\n\r\n",
            ip = local.ip(),
            port = local.port(),
        );
        let _ = socket.send_to(request.as_bytes(), target);
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if let Some(line) = text.lines().next().filter(|l| l.starts_with("SIP/2.0 ")) {
                return Ok(line.to_owned());
            }
        }
    }
    Err(PeerError::Timeout {
        name: target.to_string(),
        after: timeout,
        waiting_for: "an answer to OPTIONS".to_owned(),
        log_tail: String::new(),
    })
}

/// The `tincan` binary of this workspace, built (debug) on first use; `$TINCAN_BINARY`
/// instead when it is set (e.g. a release build, for the benchmarks of
/// `scripts/bench-phone.sh`).
///
/// Integration tests of another package do not get `CARGO_BIN_EXE_tincan`, so the binary is
/// built once per test process with the same cargo and target directory.
pub fn tincan_binary() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("TINCAN_BINARY").map(PathBuf::from) {
            assert!(bin.exists(), "TINCAN_BINARY={} is missing", bin.display());
            return bin;
        }
        let bin = cargo_build(&["--bin", "tincan"]).join("tincan");
        assert!(bin.exists(), "{} missing after the build", bin.display());
        bin
    })
    .clone()
}

/// An example of the `tincan` package (`ua-cli/examples/<name>.rs`), built (debug) on first
/// use: every example is built once per test process, as [`tincan_binary`] is.
pub fn tincan_example(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let example = DIR
        .get_or_init(|| cargo_build(&["--examples"]).join("examples"))
        .join(name);
    assert!(
        example.exists(),
        "{} missing after the build",
        example.display()
    );
    example
}

/// Runs `cargo build -q -p tincan what...` in the workspace with the cargo and target
/// directory of the test run; returns the profile's output directory (`target/debug`).
fn cargo_build(what: &[&str]) -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("interop-tests lives in the workspace")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "-q", "-p", "tincan"])
        .args(what)
        .current_dir(&workspace)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build -p tincan {what:?} failed");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("debug")
}
