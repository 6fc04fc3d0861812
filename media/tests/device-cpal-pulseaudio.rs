//! The real cpal path, through a PulseAudio null sink started by this test: a 1 kHz tone
//! played with `CpalSink` is recorded from the sink's monitor with `CpalSource` and comes
//! back at 1 kHz.
//!
//! The test starts `pulseaudio` with a private runtime directory and stops it by PID. The
//! device part runs in a child process of this test binary with `PULSE_SERVER` set (the
//! ALSA default device routes to PulseAudio when it is reachable). Without `pulseaudio` the
//! test prints a loud SKIP and passes; CI installs it (scripts/install-deps.sh).
#![allow(clippy::disallowed_methods)] // a real device runs on the wall clock

#[path = "codec-util/mod.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tincan_media::codec::FRAME_SAMPLES;
use tincan_media::device::{
    AudioSink, AudioSource, CpalSink, CpalSource, DeviceSelector, SourceStatus, ToneSource,
    list_devices,
};

const CHILD_ENV: &str = "TINCAN_PULSE_CHILD";
const TEST_NAME: &str = "tone_round_trip_through_pulseaudio_null_sink";

struct Pulse {
    child: Child,
    dir: PathBuf,
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|p| Path::new(&p).join(bin).is_file())
    })
}

fn start_pulse() -> Pulse {
    let dir = std::env::temp_dir().join(format!("tincan-pulse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    let socket = dir.join("native");
    let child = Command::new("pulseaudio")
        .args([
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--disallow-exit",
            "-L",
            &format!(
                "module-native-protocol-unix socket={} auth-anonymous=1",
                socket.display()
            ),
            "-L",
            "module-null-sink sink_name=nullsink rate=48000 channels=2",
            "-L",
            "module-null-source source_name=nullsource rate=48000 channels=1",
        ])
        .env("HOME", &dir)
        .env("XDG_RUNTIME_DIR", &dir)
        .env("XDG_CONFIG_HOME", &dir)
        .env("PULSE_RUNTIME_PATH", &dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pulseaudio is on PATH, checked before");
    let pulse = Pulse { child, dir };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "pulseaudio did not create {}",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    pulse
}

fn pactl(server: &str, args: &[&str]) {
    let status = Command::new("pactl")
        .args(args)
        .env("PULSE_SERVER", server)
        .status()
        .expect("pactl runs");
    assert!(status.success(), "pactl {args:?} failed");
}

#[test]
fn tone_round_trip_through_pulseaudio_null_sink() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child_round_trip();
        return;
    }
    if !on_path("pulseaudio") || !on_path("pactl") {
        eprintln!(
            "\n!!!!!! SKIP {TEST_NAME}: pulseaudio/pactl not installed (scripts/install-deps.sh installs them) !!!!!!\n"
        );
        return;
    }
    let pulse = start_pulse();
    let server = format!("unix:{}", pulse.dir.join("native").display());
    pactl(&server, &["set-default-sink", "nullsink"]);
    pactl(&server, &["set-default-source", "nullsink.monitor"]);
    let output = Command::new(std::env::current_exe().expect("the test binary has a path"))
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("PULSE_SERVER", &server)
        .env("HOME", &pulse.dir)
        .env("XDG_RUNTIME_DIR", &pulse.dir)
        .output()
        .expect("the test binary runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    println!("{text}");
    eprintln!("{err}");
    assert!(output.status.success(), "child failed");
    assert!(text.contains("1 passed"), "the child ran the device test");
    drop(pulse);
}

/// In the child: play 3 s of 1 kHz through the default output, record the default input.
fn child_round_trip() {
    let devices = list_devices().expect("devices list");
    println!("devices: {devices:#?}");
    let mut sink = CpalSink::open(DeviceSelector::Default).expect("default output opens");
    let mut source = CpalSource::open(DeviceSelector::Default).expect("default input opens");
    println!("output {:?}, input {:?}", sink.format(), source.format());
    let mut tone = ToneSource::new(1000.0, -6.0);
    let mut out = vec![0i16; FRAME_SAMPLES];
    let mut captured = Vec::new();
    let start = Instant::now();
    for k in 0..150u32 {
        tone.read_frame(&mut out).expect("tone");
        sink.write_frame(&out).expect("sink takes the frame");
        let mut frame = vec![0i16; FRAME_SAMPLES];
        if source.read_frame(&mut frame).expect("source gives a frame") == SourceStatus::Audio {
            captured.extend_from_slice(&frame);
        }
        if k % 25 == 0 {
            println!("frame {k}: {} ms queued for playout", sink.queued_ms());
        }
        let next = start + Duration::from_millis(20 * u64::from(k + 1));
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    println!("sink {:?}, source {:?}", sink.stats(), source.stats());
    assert!(
        captured.len() >= 48_000,
        "captured {} samples",
        captured.len()
    );
    let tail = &captured[captured.len() - 48_000..];
    let hz = util::zero_crossing_hz(tail, 48_000.0);
    let rms = util::rms(tail);
    let share = util::tone_share(tail, 48_000.0, 1000.0);
    println!("captured: {hz:.1} Hz, rms {rms:.0}, 1 kHz share {share:.3}");
    assert!((hz - 1000.0).abs() < 15.0, "frequency {hz}");
    // -6 dBFS peak = 16422, RMS 11612; allow for level changes in the server.
    assert!(rms > 3000.0, "level {rms}");
    assert!(share > 0.8, "tone share {share}");
}
