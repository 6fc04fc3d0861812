//! sipsak for quick REGISTER / OPTIONS checks (bounded to 15 s each, loopback only: always
//! give IP literals, sipsak would ask the system resolver for names).

use std::net::SocketAddr;
use std::process::Command;

use crate::peer::PeerError;

/// The result of one sipsak run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SipsakOutcome {
    /// sipsak's exit code (0 = success; 124 = killed after 15 s).
    pub exit_code: Option<i32>,
    /// stdout and stderr.
    pub output: String,
}

impl SipsakOutcome {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// `sipsak -U`: REGISTER `user` (with digest `password`) at `registrar`, check the binding,
/// remove it. `local_port` is where sipsak listens (use [`crate::free_udp_port`]).
pub fn register(
    registrar: SocketAddr,
    user: &str,
    password: &str,
    local_port: u16,
) -> Result<SipsakOutcome, PeerError> {
    run(&[
        "-U",
        "-s",
        &format!("sip:{user}@{registrar}"),
        "-k",
        &registrar.ip().to_string(),
        "-l",
        &local_port.to_string(),
        "-a",
        password,
        "-x",
        "60",
        "-vvv",
    ])
}

/// `sipsak -s sip:target`: one OPTIONS; exit code 0 when a 2xx came back.
pub fn options(target: SocketAddr, local_port: u16) -> Result<SipsakOutcome, PeerError> {
    run(&[
        "-s",
        &format!("sip:{target}"),
        "-l",
        &local_port.to_string(),
        "-vv",
    ])
}

/// Runs sipsak with `args` under `timeout 15`.
pub fn run(args: &[&str]) -> Result<SipsakOutcome, PeerError> {
    let out = Command::new("timeout")
        .arg("15")
        .arg(crate::program("sipsak"))
        .args(args)
        .output()
        .map_err(|e| PeerError::io("running sipsak", e))?;
    Ok(SipsakOutcome {
        exit_code: out.status.code(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}
