//! The fleet benchmark of issue 20 (run it with `scripts/bench-fleet.sh`; the results go to
//! `docs/scale-out.md`): the capacity of 1, 2 and 3 fleet members behind kamailio's
//! dispatcher, and of the dispatcher alone, in one run.
//!
//! For each fleet size, sipp (`lab/sipp/fleet_uac.xml`: INVITE, a digit in an INFO, 1 s,
//! BYE) places calls through kamailio at increasing rates, `SECONDS_PER_RATE` seconds each,
//! and stops after two rates in a row where 1 % or more of the calls fail; the capacity is
//! the highest rate under 1 %. The dispatcher alone is the same with one member that costs
//! (almost) nothing: sipp's `lab/sipp/fleet_uas.xml`. Each line also has the CPU time per
//! completed call of kamailio (all its processes) and of the members (all of them), read
//! from `/proc` before and after the rate, and the wall time of the sipp run (the rate's
//! seconds plus the last calls' 1 s when the fleet keeps up; more when it falls behind).
//!
//! Environment: `RATES` (default `20 40 60 80 120 160 240 320`), `PROXY_RATES` (default
//! `160 320 640 1280`), `SIZES` (default `1 2 3`), `SECONDS_PER_RATE` (default 5),
//! `TINCAN_IVR` (the member's binary, the IVR example; the script passes a release build).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tincan_interop_tests::fleet::Fleet;
use tincan_interop_tests::{Kamailio, Sipp, require_peers};

/// kamailio's shared memory (`-m`): the harness's default 64 MB runs out of transactions
/// at 320 calls/s.
const SHARED_MEMORY_MB: u32 = 512;

/// One rate's result.
struct Step {
    rate: u64,
    calls: u64,
    ok: u64,
    failed: u64,
    wall_s: f64,
    proxy_ms: f64,
    members_ms: f64,
}

impl Step {
    fn under_one_percent(&self) -> bool {
        self.failed * 100 < self.calls && self.ok + self.failed == self.calls
    }
}

fn main() {
    if !require_peers(&["kamailio", "sipp"]) {
        std::process::exit(2);
    }
    let rates = list("RATES", &[20, 40, 60, 80, 120, 160, 240, 320]);
    let proxy_rates = list("PROXY_RATES", &[160, 320, 640, 1280]);
    let sizes = list("SIZES", &[1, 2, 3]);
    let seconds = list("SECONDS_PER_RATE", &[5])[0].max(1);

    println!(
        "# setup      rate  calls     ok failed  wall_s  proxy_cpu_ms/call  members_cpu_ms/call"
    );
    let mut capacity: Vec<(String, u64)> = Vec::new();
    for &n in &sizes {
        let n = usize::try_from(n).unwrap_or(1);
        let mut fleet = Fleet::start(n, Duration::from_secs(900))
            .expect("the fleet starts (members, kamailio)");
        let name = format!("fleet-{n}");
        let best = climb(&name, &rates, seconds, fleet.addr(), |what| match what {
            Who::Proxy => group_cpu(fleet.kamailio().peer().pid()),
            Who::Members => (0..n)
                .map(|i| group_cpu(fleet.member(i).peer().pid()))
                .sum(),
        });
        capacity.push((name, best));
    }

    // The dispatcher alone: one member that is sipp's bare scenario.
    let mut uas = Sipp::lab_scenario("fleet_uas.xml")
        .name("fleet-uas")
        .timeout(Duration::from_secs(900))
        .spawn()
        .expect("sipp's uas starts");
    let mut kamailio = Kamailio::builder()
        .shared_memory_mb(SHARED_MEMORY_MB)
        .template("kamailio-dispatcher.cfg")
        .secondary(false)
        .ipv6(false)
        .dispatcher(&[uas.addr()])
        .start()
        .expect("kamailio starts");
    let best = climb(
        "proxy-only",
        &proxy_rates,
        seconds,
        kamailio.addr(),
        |what| match what {
            Who::Proxy => group_cpu(kamailio.peer().pid()),
            Who::Members => group_cpu(uas.peer().pid()),
        },
    );
    capacity.push(("proxy-only".to_owned(), best));

    let one = capacity.first().map_or(0, |c| c.1);
    for (name, best) in &capacity {
        let ratio = if one > 0 {
            format!("{:.2}", *best as f64 / one as f64)
        } else {
            "-".to_owned()
        };
        println!(
            "# capacity {name}: {best} calls/s with < 1 % failed (x{ratio} of {})",
            capacity.first().map_or("-", |c| c.0.as_str())
        );
    }
}

/// Whose CPU time to read.
enum Who {
    Proxy,
    Members,
}

/// Runs `rates` in order until two in a row fail 1 % or more; prints a line per rate;
/// returns the highest rate under 1 % (0 when none).
fn climb(
    name: &str,
    rates: &[u64],
    seconds: u64,
    target: SocketAddr,
    mut cpu: impl FnMut(Who) -> f64,
) -> u64 {
    let mut best = 0;
    // A loaded machine fails a rate now and then: stop after two failed rates in a row.
    let mut misses = 0;
    for &rate in rates {
        let calls = rate * seconds;
        let (proxy0, members0) = (cpu(Who::Proxy), cpu(Who::Members));
        let started = Instant::now();
        let run = Sipp::lab_scenario("fleet_uac.xml")
            .name(&format!("fleet-uac-{name}-{rate}"))
            .remote(target)
            .service("ivr")
            .calls(calls)
            .rate(rate as f64)
            .limit(rate * 4)
            .trace_err()
            .arg("-buff_size")
            .arg("4194304")
            .timeout(Duration::from_secs(seconds * 4 + 30))
            .run()
            .expect("sipp runs");
        let wall_s = started.elapsed().as_secs_f64();
        // Let the last BYEs and the members' tails finish before reading CPU.
        std::thread::sleep(Duration::from_millis(500));
        let (proxy1, members1) = (cpu(Who::Proxy), cpu(Who::Members));
        let step = Step {
            rate,
            calls,
            ok: run.successful,
            failed: run.failed + calls.saturating_sub(run.successful + run.failed),
            wall_s,
            proxy_ms: per_call(proxy1 - proxy0, run.successful),
            members_ms: per_call(members1 - members0, run.successful),
        };
        println!(
            "{name:<11} {:>5} {:>6} {:>6} {:>6} {:>7.1} {:>18.3} {:>20.3}",
            step.rate,
            step.calls,
            step.ok,
            step.failed,
            step.wall_s,
            step.proxy_ms,
            step.members_ms
        );
        if step.under_one_percent() {
            best = rate;
            misses = 0;
        } else {
            misses += 1;
            if misses == 2 {
                break;
            }
        }
    }
    best
}

fn per_call(cpu_s: f64, calls: u64) -> f64 {
    if calls == 0 {
        0.0
    } else {
        cpu_s * 1000.0 / calls as f64
    }
}

/// CPU seconds (user + system) used so far by the live processes of process group `pgid`.
fn group_cpu(pgid: u32) -> f64 {
    let tick = clock_ticks();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
            // cmajflt utime stime ..."
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let pgrp: u32 = fields.get(2)?.parse().ok()?;
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            (pgrp == pgid).then_some((utime + stime) / tick)
        })
        .sum()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A space-separated list of numbers from the environment variable `name`, else `default`.
fn list(name: &str, default: &[u64]) -> Vec<u64> {
    let parsed: Vec<u64> = std::env::var(name)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    if parsed.is_empty() {
        default.to_vec()
    } else {
        parsed
    }
}
