//! A private tmux server for tests of the full-screen phone in a real terminal: a fixed-size
//! window running a shell, keys typed with `send-keys`, the screen read with `capture-pane`.
//!
//! Each [`Tmux`] starts its own server (`tmux -L <unique socket name>`), so tests run in
//! parallel and never touch the user's tmux; the server is killed by its socket when the
//! [`Tmux`] is dropped, also when the test panics (then the last screen is printed).
//!
//! ```no_run
//! use std::time::Duration;
//! use tincan_interop_tests::tmux::Tmux;
//!
//! let tmux = Tmux::start("demo", 100, 30).expect("tmux starts");
//! tmux.type_line("echo ok-$((40+2))").expect("typed");
//! tmux.wait_for_text("ok-42", Duration::from_secs(20)).expect("the shell answers");
//! ```

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::peer::PeerError;

/// How often the screen is read while waiting for it to change.
const POLL: Duration = Duration::from_millis(50);

/// A private tmux server with one window of a fixed size running an interactive shell
/// (`bash --norc --noprofile`, prompt `$ `); killed on drop.
#[derive(Debug)]
pub struct Tmux {
    socket: String,
    /// The socket's path (`#{socket_path}`), removed on drop: `kill-server` leaves it.
    socket_path: Option<std::path::PathBuf>,
    width: u16,
    height: u16,
}

impl Tmux {
    /// Starts a tmux server on a socket of its own (named after `name`, the process and a
    /// counter) with a detached `width` x `height` window running a shell, and waits for the
    /// shell's prompt.
    pub fn start(name: &str, width: u16, height: u16) -> Result<Self, PeerError> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "tincan-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut tmux = Tmux {
            socket,
            socket_path: None,
            width,
            height,
        };
        let (w, h) = (width.to_string(), height.to_string());
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &w,
            "-y",
            &h,
            "-e",
            "PS1=$ ",
            "-e",
            "HISTFILE=/dev/null",
            "bash",
            "--norc",
            "--noprofile",
            "-i",
        ])?;
        tmux.socket_path = Some(tmux.format("#{socket_path}")?.into());
        // Keep the window at its size whatever clients attach, and the pane after its
        // shell exits (to read what it printed last).
        tmux.run(&["set-option", "-g", "window-size", "manual"])?;
        tmux.run(&["set-option", "-g", "remain-on-exit", "on"])?;
        tmux.wait_until(Duration::from_secs(20), "the shell's prompt", |screen| {
            screen.lines().any(|l| l.starts_with('$'))
        })?;
        Ok(tmux)
    }

    /// The socket name (`tmux -L <socket>` attaches to it, to watch a test).
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// The window's size (columns, rows).
    pub fn size(&self) -> (u16, u16) {
        (self.width, self.height)
    }

    /// Resizes the window to `width` x `height` (the program in it gets SIGWINCH).
    pub fn resize(&mut self, width: u16, height: u16) -> Result<(), PeerError> {
        let (w, h) = (width.to_string(), height.to_string());
        self.run(&["resize-window", "-t", "t", "-x", &w, "-y", &h])?;
        self.width = width;
        self.height = height;
        Ok(())
    }

    /// Runs `tmux -L <socket> args...`; an error when tmux fails.
    fn run(&self, args: &[&str]) -> Result<Output, PeerError> {
        let out = Command::new(crate::program("tmux"))
            // a test run from inside tmux still gets a server of its own
            .env_remove("TMUX")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .map_err(|e| PeerError::io("running tmux", e))?;
        if !out.status.success() {
            return Err(PeerError::io(
                "running tmux",
                std::io::Error::other(format!(
                    "tmux {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )),
            ));
        }
        Ok(out)
    }

    /// Sends tmux key names (`Enter`, `Tab`, `Escape`, `C-c`, `a`, `X`...), one key each.
    pub fn send_keys(&self, keys: &[&str]) -> Result<(), PeerError> {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.run(&args).map(drop)
    }

    /// Types `text` literally (`send-keys -l`: no key names).
    pub fn type_text(&self, text: &str) -> Result<(), PeerError> {
        self.run(&["send-keys", "-t", "t", "-l", text]).map(drop)
    }

    /// Types `line` literally, then Enter.
    pub fn type_line(&self, line: &str) -> Result<(), PeerError> {
        self.type_text(line)?;
        self.send_keys(&["Enter"])
    }

    /// Starts `sh <script>` from the shell (the script should `exec` the program, so that the
    /// shell gets its prompt back when the program ends).
    pub fn run_script(&self, script: &Path) -> Result<(), PeerError> {
        self.type_line(&format!("sh '{}'", script.display()))
    }

    /// The screen as text, one line per row (`capture-pane -p`: no colours, trailing
    /// blanks trimmed).
    pub fn capture(&self) -> Result<String, PeerError> {
        let out = self.run(&["capture-pane", "-p", "-t", "t"])?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A tmux format of the pane (`#{alternate_on}`, `#{pane_pid}`, `#{cursor_y}`...).
    pub fn format(&self, format: &str) -> Result<String, PeerError> {
        let out = self.run(&["display-message", "-p", "-t", "t", format])?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Whether the program in the pane uses the alternate screen (a full-screen program is
    /// up; false again once it has restored the terminal).
    pub fn alternate_screen(&self) -> Result<bool, PeerError> {
        Ok(self.format("#{alternate_on}")? == "1")
    }

    /// Reads the screen until `ready` returns true (every 50 ms), at most `timeout`; returns
    /// that screen. The error names `what` and shows the last screen.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        ready: impl Fn(&str) -> bool,
    ) -> Result<String, PeerError> {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.capture()?;
            if ready(&screen) {
                return Ok(screen);
            }
            if Instant::now() >= deadline {
                return Err(PeerError::Timeout {
                    name: format!("tmux {}", self.socket),
                    after: timeout,
                    waiting_for: what.to_owned(),
                    log_tail: screen,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the screen contains `text`; returns the screen.
    pub fn wait_for_text(&self, text: &str, timeout: Duration) -> Result<String, PeerError> {
        self.wait_until(timeout, &format!("{text:?} on the screen"), |s| {
            s.contains(text)
        })
    }

    /// Waits until a line of the screen contains every one of `words`; returns that line.
    pub fn wait_for_line(&self, words: &[&str], timeout: Duration) -> Result<String, PeerError> {
        let screen = self.wait_until(timeout, &format!("a line with {words:?}"), |s| {
            line_with(s, words).is_some()
        })?;
        Ok(line_with(&screen, words).unwrap_or_default().to_owned())
    }
}

/// The first line of `screen` containing every one of `words`.
pub fn line_with<'a>(screen: &'a str, words: &[&str]) -> Option<&'a str> {
    screen
        .lines()
        .find(|line| words.iter().all(|w| line.contains(w)))
}

/// Whether a line of `screen` says an account is registered (`registered`, `registered at
/// ...`; not `not registered`, `registering...` or `unregistered`).
pub fn shows_registered(screen: &str) -> bool {
    screen.lines().any(|line| {
        line.match_indices("registered").any(|(at, _)| {
            let before = &line[..at];
            !before.ends_with("not ") && !before.ends_with("un")
        })
    })
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(screen) = self.capture()
        {
            eprintln!("--- last screen of tmux {} ---\n{screen}---", self.socket);
        }
        // kill-server hangs up every pane's processes (SIGHUP) and removes the socket.
        let _ = self.run(&["kill-server"]);
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_is_told_from_its_negations() {
        assert!(shows_registered(
            "| alice  registered at udp:127.0.0.1:5060 |"
        ));
        assert!(shows_registered("| alice  registered |"));
        assert!(!shows_registered("| alice  not registered: timeout |"));
        assert!(!shows_registered("| alice  registering... |"));
        assert!(!shows_registered("| alice  unregistered |"));
        assert!(!shows_registered("| alice  not registering |"));
    }

    #[test]
    fn a_line_with_all_words() {
        let screen = "a b\n> to sip:bob  talking  0:01\n";
        assert_eq!(
            line_with(screen, &["bob", "talking"]),
            Some("> to sip:bob  talking  0:01")
        );
        assert_eq!(line_with(screen, &["bob", "on hold"]), None);
    }
}
