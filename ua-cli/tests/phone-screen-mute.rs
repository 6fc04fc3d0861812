//! Mute and the level meters on the full-screen phone in a real terminal (tmux, issue 14):
//! during a call the quality box shows the jitter buffer's delay and the `in`/`out` meters;
//! `m` mutes the selected call (its line and its input meter say `muted`), `m` again unmutes
//! it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

/// How long a screen may take to show something on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tincan-phone-screen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tincan(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tincan"));
    c.env("XDG_CONFIG_HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("HOME", dir)
        .env_remove("TINCAN_CONFIG");
    c
}

/// A tmux server of our own (its socket in the test's directory), killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Runs `command` (a shell command line) in an 80x24 window; `None` without tmux.
    fn start(dir: &Path, command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            skip::skip("tmux is not installed (Debian package tmux)");
            return None;
        }
        let t = Tmux {
            socket: dir.join("tmux.socket"),
        };
        let ok = t
            .tmux()
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "80",
                "-y",
                "24",
                command,
            ])
            .status()
            .expect("tmux runs")
            .success();
        assert!(ok, "tmux new-session failed");
        Some(t)
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains every one of `texts`; returns it.
    fn wait_for(&self, texts: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if texts.iter().all(|t| screen.contains(t)) {
                return screen;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "no {texts:?} on the screen after {PATIENCE:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the screen no longer contains `text`.
    fn wait_gone(&self, text: &str) {
        let start = Instant::now();
        while self.screen().contains(text) {
            assert!(
                start.elapsed() < PATIENCE,
                "{text:?} stays on the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let ok = self
            .tmux()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .expect("tmux runs")
            .success();
        assert!(ok);
    }

    fn type_text(&self, text: &str) {
        let ok = self
            .tmux()
            .args(["send-keys", "-t", "t", "-l", text])
            .status()
            .expect("tmux runs")
            .success();
        assert!(ok);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A child process killed (by its PID) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shell command line that runs the phone in `dir` with `args`, then says how it exited
/// and keeps the window open.
fn phone_command(dir: &Path, args: &str) -> String {
    format!(
        "env XDG_CONFIG_HOME={d} XDG_DATA_HOME={d}/data HOME={d} {bin} --config {d}/config.toml \
         {args}; echo EXITED $?; sleep 600",
        d = dir.display(),
        bin = env!("CARGO_BIN_EXE_tincan"),
    )
}

#[test]
fn m_mutes_the_call_and_the_meters_show() {
    let dir = scratch("mute");
    std::fs::write(dir.join("config.toml"), "").unwrap();
    let mut listener = Killed(
        tincan(&dir)
            .args([
                "listen",
                "--bind",
                "127.0.0.1:0",
                "--auto-answer",
                "--no-audio",
                "--no-history",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tincan listen runs"),
    );
    let mut lines = BufReader::new(listener.0.stdout.take().unwrap()).lines();
    let listening: Value = lines
        .by_ref()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .find(|v: &Value| v["event"] == "listening")
        .expect("a listening event");
    std::thread::spawn(move || lines.for_each(drop));
    let address = listening["address"].as_str().unwrap().to_owned();
    let uri = format!("sip:bob@{address}");
    let Some(tmux) = Tmux::start(
        &dir,
        &phone_command(&dir, "phone --no-audio --no-history --bind 127.0.0.1:0"),
    ) else {
        return;
    };
    tmux.wait_for(&["no accounts", "listening on udp:127.0.0.1:"]);
    tmux.keys(&["d"]);
    tmux.type_text(&uri);
    tmux.keys(&["Enter"]);
    // Silence both ways (--no-audio): empty bars at -inf.
    tmux.wait_for(&["talking", "in  ", "out ", "-inf dB", "buffer "]);
    tmux.keys(&["m"]);
    let screen = tmux.wait_for(&["rtp  muted", "-inf dB  muted"]);
    assert!(screen.contains("talking"), "{screen}");
    tmux.keys(&["m"]);
    tmux.wait_gone("muted");
    tmux.keys(&["h"]);
    tmux.wait_for(&[&format!("call with {uri} ended: local hangup")]);
    tmux.wait_gone("-inf dB");
    tmux.keys(&["q"]);
    tmux.wait_for(&["EXITED 0"]);
    // The tmux server is stopped through its socket, which lives in `dir`.
    drop(tmux);
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}
