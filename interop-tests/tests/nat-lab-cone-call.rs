//! Tincan behind a real NAT: runs `interop-tests/lab/nat/run-cone-call.sh` (network
//! namespaces with nftables NATs, kamailio on the WAN, a STUN server on two ports; see the
//! script and docs/nat.md): `tincan nat` behind a cone and a symmetric NAT, the Contact
//! rewritten at kamailio, a call from the WAN answered behind the NAT with the public address
//! in its SDP, and tones heard both ways. Needs root, `nft`, kamailio and python3; skips (fails
//! under `CI=true`) without them.

use std::path::PathBuf;
use std::process::Command;

use tincan_interop_tests::{skip, tincan_binary};

#[test]
fn behind_a_cone_nat_register_answer_a_wan_call_and_hear_both_ways() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lab/nat/run-cone-call.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("TINCAN", tincan_binary())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    if out.status.code() == Some(77) {
        skip(stdout.trim());
        return;
    }
    assert!(
        out.status.success(),
        "the NAT lab failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("nat lab: all passed"), "{stdout}");
}
