//! How a test that cannot run on this machine says so: [`skip`], the one place every test of
//! the workspace goes through (the other crates' tests include this file by path, `#[path =
//! "../../interop-tests/src/skip.rs"]`, so there is one copy).
//!
//! `cargo test` hides what a passing test prints, so a skip printed with `eprintln!` alone
//! looks like a pass. Here a skip is:
//! - a failure when `CI=true` (`.ci/run` sets it and installs every peer: nothing may skip);
//! - otherwise a `TINCAN-SKIP: <test binary>::<test>: <reason>` line on stdout and stderr,
//!   also appended to the file named by `TINCAN_SKIP_LOG`: `scripts/test.sh` sets it and
//!   lists the skips after the test summary.
#![allow(dead_code)] // included by path into test crates that use only part of it

use std::io::Write;

/// The environment variable naming the file every skip is appended to (`scripts/test.sh`).
pub const SKIP_LOG_ENV: &str = "TINCAN_SKIP_LOG";

/// The marker that starts every skip line.
pub const SKIP_MARKER: &str = "TINCAN-SKIP:";

/// Whether the tests run in CI (`CI=true`, set by `.ci/run`), where nothing may skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The running test: `<test binary>::<test name>` (e.g. `call_proxy_loss::record_routed...`).
fn test_name() -> String {
    let binary = std::env::args_os()
        .next()
        .and_then(|a| {
            let name = std::path::Path::new(&a)
                .file_name()?
                .to_string_lossy()
                .into_owned();
            // cargo names test binaries `<name>-<hash>`
            Some(match name.rsplit_once('-') {
                Some((stem, _)) => stem.to_owned(),
                None => name,
            })
        })
        .unwrap_or_default();
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed thread)")
        .to_owned();
    format!("{binary}::{test}")
}

/// Marks the running test (or the part of it that needs what is missing) as skipped because
/// of `reason`; the caller then returns (or leaves that part out).
///
/// # Panics
///
/// With `CI=true`: nothing may skip in CI.
pub fn skip(reason: &str) {
    report_skip(
        reason,
        in_ci(),
        std::env::var_os(SKIP_LOG_ENV).map(std::path::PathBuf::from),
    );
}

/// [`skip`] with its environment spelled out: panics when `ci`, otherwise prints the
/// `TINCAN-SKIP` line to stdout and stderr and appends it to `log` (if any).
pub fn report_skip(reason: &str, ci: bool, log: Option<std::path::PathBuf>) {
    let line = format!("{SKIP_MARKER} {}: {reason}", test_name());
    if ci {
        panic!("CI=true and {line}: tests must not skip in CI");
    }
    println!("{line}");
    eprintln!("\n*** {line} ***\n");
    if let Some(path) = log {
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{line}"));
        if let Err(e) = appended {
            eprintln!("cannot append the skip to {}: {e}", path.display());
        }
    }
}

/// Whether this machine has an IPv6 loopback (`[::1]` can be bound). When it has none
/// (binding fails with "address not available" or "address family not supported") this is
/// a [`skip`] and false; any other failure to bind is a bug of the machine or the test and
/// panics.
pub fn ipv6_loopback() -> bool {
    match std::net::UdpSocket::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) if is_no_ipv6(&e) => {
            skip(&format!(
                "no IPv6 loopback on this machine (binding [::1]: {e})"
            ));
            false
        }
        Err(e) => panic!("binding [::1]:0 failed, and not for want of IPv6: {e}"),
    }
}

/// Whether `e` says that IPv6 (or `::1`) is not available on this host.
pub fn is_no_ipv6(e: &std::io::Error) -> bool {
    /// EAFNOSUPPORT and EADDRNOTAVAIL on Linux.
    const EAFNOSUPPORT: i32 = 97;
    const EADDRNOTAVAIL: i32 = 99;
    e.kind() == std::io::ErrorKind::AddrNotAvailable
        || matches!(e.raw_os_error(), Some(EAFNOSUPPORT | EADDRNOTAVAIL))
}
