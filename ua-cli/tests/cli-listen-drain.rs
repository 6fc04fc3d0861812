//! `tincan listen` drains on SIGTERM (issue 20): a new call is refused 503 with Retry-After
//! while the call in progress goes on; the process exits 0 once that call is over, and at
//! once when it has none.

use std::process::Command;
use std::time::{Duration, Instant};

#[path = "util/cli.rs"]
mod cli;

use cli::{Proc, WAIT, is, listener};

fn terminate(p: &Proc) {
    let status = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {}", p.child.id());
}

/// The exit status of `p`, waited for up to [`WAIT`].
fn exit_code(p: &mut Proc) -> Option<i32> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = p.child.try_wait().expect("waitable") {
            return status.code();
        }
        assert!(Instant::now() < deadline, "{}: still running", p.name);
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn caller(dir: &std::path::Path, address: &str) -> Proc {
    Proc::spawn(
        "caller",
        dir,
        &[
            "call",
            &format!("sip:bob@{address}"),
            "--no-audio",
            "--json",
        ],
    )
}

#[test]
fn sigterm_refuses_new_calls_and_exits_0_when_the_last_call_ends() {
    let dir = std::env::temp_dir().join(format!("tincan-listen-drain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut l, address) = listener("listener", &dir);
    let mut a = caller(&dir, &address);
    a.wait("answered", |v| is(v, "answered"));

    terminate(&l);
    l.wait("draining", |v| is(v, "draining"));
    let mut b = caller(&dir, &address);
    let ended = b.wait("refused", |v| is(v, "ended"));
    assert_eq!(ended["status"], 503, "{ended}");
    b.stop();
    assert!(
        l.child.try_wait().expect("waitable").is_none(),
        "the listener stays while a call is up"
    );

    a.type_line("hangup");
    a.wait("ended", |v| is(v, "ended"));
    l.wait("drained", |v| is(v, "drained"));
    assert_eq!(exit_code(&mut l), Some(0));
    a.stop();
    l.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_to_an_idle_listener_exits_0() {
    let dir = std::env::temp_dir().join(format!("tincan-listen-idle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut l, _) = listener("listener", &dir);
    terminate(&l);
    l.wait("drained", |v| is(v, "drained"));
    assert_eq!(exit_code(&mut l), Some(0));
    l.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
