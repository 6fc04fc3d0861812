//! The full-screen phone in a real terminal, for the tests of `ua-cli/tests/phone-screen-*.rs`:
//! a private tmux server, the `tincan` binary with its own XDG directories, processes killed
//! when dropped. Each test crate that includes this module also includes
//! `interop-tests/src/skip.rs` as `skip` (a missing tmux skips, or fails under `CI=true`).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How long a screen may take to show something on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("tincan-phone-screen-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn tincan(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tincan"));
    c.env("XDG_CONFIG_HOME", dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("HOME", dir)
        .env_remove("TINCAN_CONFIG");
    c
}

/// A tmux server of our own (its socket in the test's directory), killed when dropped.
pub struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// Runs `command` (a shell command line) in an 80x24 window; `None` without tmux.
    pub fn start(dir: &Path, command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            crate::skip::skip("tmux is not installed (Debian package tmux)");
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

    pub fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.socket);
        c
    }

    pub fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen contains every one of `texts`; returns it.
    pub fn wait_for(&self, texts: &[&str]) -> String {
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
    pub fn wait_gone(&self, text: &str) {
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

    pub fn keys(&self, keys: &[&str]) {
        let ok = self
            .tmux()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .expect("tmux runs")
            .success();
        assert!(ok);
    }

    pub fn type_text(&self, text: &str) {
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
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shell command line that runs the phone in `dir` with `args`, then says how it exited
/// and keeps the window open.
pub fn phone_command(dir: &Path, args: &str) -> String {
    format!(
        "env XDG_CONFIG_HOME={d} XDG_DATA_HOME={d}/data HOME={d} {bin} --config {d}/config.toml \
         {args}; echo EXITED $?; sleep 600",
        d = dir.display(),
        bin = env!("CARGO_BIN_EXE_tincan"),
    )
}
