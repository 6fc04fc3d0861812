//! Measurements of the full-screen phone in a real terminal (tmux), not assertions (a test
//! never asserts a duration measured on a shared machine): run by `scripts/bench-phone.sh`,
//! ignored otherwise.
//!
//! - **Startup**: from the moment `tincan phone --account alice --no-audio` starts (its launcher script
//!   notes the time just before `exec`) to the screen in tmux showing the account
//!   `registered` at the lab kamailio on loopback; also to the first screen (the `Accounts`
//!   box). `TINCAN_BENCH_RUNS` runs (default 10); the median and the maximum. The screen is
//!   read every 5 ms (`capture-pane`), so each figure is late by up to 5 ms plus one tmux
//!   round trip. The phone's CPU time by then (the sum of its live threads'
//!   /proc/PID/task/*/schedstat, in ns) tells a startup that computes from one that waits
//!   (for the machine's other load, the network).
//! - **Idle**: the registered phone with no call, left alone for `TINCAN_BENCH_IDLE_SECS`
//!   (default 30): its CPU time (utime + stime of /proc/PID/stat) as a share of one core, and
//!   the bytes it wrote (`wchar` of /proc/PID/io: a phone that redraws writes to the
//!   terminal).
//!
//! Run: `scripts/bench-phone.sh` (a release build), or
//! `cargo test -p tincan-interop-tests --test phone-tmux-bench -- --ignored --nocapture`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tincan_interop_tests::tmux::shows_registered;
use tincan_interop_tests::{Kamailio, ScreenPhone, TincanProcess, Tmux, require_peers};

const WAIT: Duration = Duration::from_secs(30);

/// How often the screen is read while timing the startup.
const POLL: Duration = Duration::from_millis(5);

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Nanoseconds since the epoch, now.
fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Milliseconds from the launcher's time stamp (`started.ns`) to `at_ns`.
fn since_start_ms(phone: &ScreenPhone, at_ns: u128) -> f64 {
    let started: u128 = std::fs::read_to_string(phone.path("started.ns"))
        .expect("the launcher's time stamp")
        .trim()
        .parse()
        .expect("nanoseconds");
    (at_ns.saturating_sub(started)) as f64 / 1e6
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // the fields after the command name (in parentheses, which may hold spaces)
    let rest = &stat[stat.rfind(')').expect("a command name") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Time on a CPU of `pid`'s live threads, in ns (the first field of each
/// /proc/PID/task/TID/schedstat; the threads that already ended are not counted).
fn cpu_ns(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// `wchar` of /proc/PID/io: bytes written.
fn written(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .expect("/proc/PID/io")
        .lines()
        .find_map(|l| l.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("wchar")
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Watches the idle phone's write system calls for 10 s with strace (after the CPU window:
/// strace slows what it traces) and prints how many went to the terminal (fd 1: the screen;
/// standard error goes to a file) and how many elsewhere (eventfd wake-ups, the SIP trace).
fn terminal_writes(strace: &std::path::Path, phone: &ScreenPhone) {
    let out = phone.path("idle.strace");
    let status = std::process::Command::new("timeout")
        .args(["-s", "INT", "10"])
        .arg(strace)
        .args(["-f", "-qq", "-e", "trace=write,writev", "-o"])
        .arg(&out)
        .arg("-p")
        .arg(phone.pid().to_string())
        .status();
    let Ok(trace) = std::fs::read_to_string(&out) else {
        println!("strace did not run ({status:?})");
        return;
    };
    let calls: Vec<&str> = trace
        .lines()
        .filter(|l| l.contains("write(") || l.contains("writev("))
        .collect();
    let to_terminal = calls
        .iter()
        .filter(|l| l.contains("write(1,") || l.contains("writev(1,"))
        .count();
    println!(
        "idle for 10 s under strace: {to_terminal} writes to the terminal, {} other writes",
        calls.len() - to_terminal
    );
}

#[test]
#[ignore = "a benchmark: scripts/bench-phone.sh"]
fn phone_startup_to_registered_and_idle_cpu() {
    if !require_peers(&["tmux", "kamailio"]) {
        return;
    }
    let bin = tincan_interop_tests::tincan_binary();
    eprintln!("tincan: {}", bin.display());
    let kamailio = Kamailio::start().expect("kamailio starts");
    let runs = env_or("TINCAN_BENCH_RUNS", 10).max(1);
    let idle = Duration::from_secs(env_or("TINCAN_BENCH_IDLE_SECS", 30));
    let tmux = Tmux::start("phone-bench", 100, 30).expect("tmux starts");

    let mut first_screen = Vec::new();
    let mut registered = Vec::new();
    let mut startup_cpu = Vec::new();
    let mut last = None;
    for run in 0..runs {
        let phone = TincanProcess::new(&format!("phone-bench-{run}"))
            .expect("scratch dir")
            .kamailio_account(
                "alice",
                "alicepw",
                kamailio.addr(),
                440.0,
                Duration::from_secs(1),
            )
            .spawn_in_tmux(&tmux, "alice", &[])
            .expect("the phone starts in tmux");
        let deadline = Instant::now() + WAIT;
        let mut screen_at = None;
        let registered_at = loop {
            let screen = tmux.capture().expect("tmux answers");
            let at = now_ns();
            if screen_at.is_none() && screen.contains("Accounts") {
                screen_at = Some(at);
            }
            if screen.contains("Accounts") && shows_registered(&screen) {
                break at;
            }
            assert!(
                Instant::now() < deadline,
                "run {run}: never registered:\n{screen}\n{}",
                phone.stderr()
            );
            std::thread::sleep(POLL);
        };
        let cpu_ms = cpu_ns(phone.pid()) as f64 / 1e6;
        let screen_ms = since_start_ms(&phone, screen_at.unwrap_or(registered_at));
        let registered_ms = since_start_ms(&phone, registered_at);
        eprintln!(
            "run {run}: first screen {screen_ms:.0} ms, registered {registered_ms:.0} ms, \
             CPU by then {cpu_ms:.1} ms"
        );
        first_screen.push(screen_ms);
        registered.push(registered_ms);
        startup_cpu.push(cpu_ms);
        if run + 1 == runs {
            last = Some(phone);
        } else {
            tmux.send_keys(&["q"]).expect("q typed");
            phone.wait_exit(WAIT).expect("q ends the phone");
        }
    }
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "startup to the first screen: median {:.0} ms, max {:.0} ms ({runs} runs)",
        median(first_screen.clone()),
        max(&first_screen)
    );
    println!(
        "startup to `registered` on the screen: median {:.0} ms, max {:.0} ms ({runs} runs)",
        median(registered.clone()),
        max(&registered)
    );

    println!(
        "CPU time of its live threads by then: median {:.1} ms, max {:.1} ms",
        median(startup_cpu.clone()),
        max(&startup_cpu)
    );

    // the last phone, registered and idle
    let phone = last.expect("at least one run");
    std::thread::sleep(Duration::from_secs(1));
    let (ticks0, wrote0, t0) = (cpu_ticks(phone.pid()), written(phone.pid()), Instant::now());
    std::thread::sleep(idle);
    let (ticks1, wrote1, elapsed) = (cpu_ticks(phone.pid()), written(phone.pid()), t0.elapsed());
    let cpu = (ticks1 - ticks0) as f64 / clock_ticks() as f64;
    println!(
        "idle for {:.1} s: CPU {:.2} s = {:.3} % of a core ({} ticks); {} bytes written",
        elapsed.as_secs_f64(),
        cpu,
        100.0 * cpu / elapsed.as_secs_f64(),
        ticks1 - ticks0,
        wrote1 - wrote0
    );
    if let Some(strace) = tincan_interop_tests::find_program("strace") {
        terminal_writes(&strace, &phone);
    }
    tmux.send_keys(&["q"]).expect("q typed");
    phone.wait_exit(WAIT).expect("q ends the phone");
    drop(phone);
    drop(tmux);
    drop(kamailio);
}
