//! The full-screen phone (in tmux) with an account of two registrars, the first dead (ICMP
//! port unreachable), the second the lab kamailio: the screen opens at once with
//! `registering...`, then shows the account registered at kamailio and its other registrar
//! down: the resilience story visible. Prints the time from the start to the screen and to
//! the registration (a measurement, not asserted).

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tincan_interop_tests::{Kamailio, WorkDir, require_peers, tincan_binary};

/// How long a screen may take to show something on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(60);

/// A tmux server of our own (its socket in the test's directory), killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn start(dir: &Path, command: &str) -> Tmux {
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
        t
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

    /// Waits (polling every 5 ms) until the screen contains every one of `texts`.
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
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
        let _ = std::fs::remove_file(&self.socket);
    }
}

#[test]
fn the_phone_shows_its_account_registered_at_kamailio_and_the_dead_registrar_down() {
    if !require_peers(&["kamailio", "kamcmd", "tmux"]) {
        return;
    }
    let kamailio = Kamailio::builder()
        .secondary(false)
        .start()
        .expect("kamailio starts");
    let registrar = kamailio.addr();
    let dead = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = WorkDir::new("phone-screen-registrars").expect("scratch dir");
    let password = kamailio.password("alice").expect("a lab user");
    let config = dir
        .write(
            "config.toml",
            format!(
                "[[account]]\nname = \"alice\"\naor = \"sip:alice@example.test\"\n\
                 password = \"{password}\"\ntransport = \"udp\"\n\
                 registrars = [\"sip:127.0.0.1:{dead}\", \"sip:{registrar}\"]\n\
                 expires = 300\noutbound = false\n"
            ),
        )
        .expect("config written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let bin = tincan_binary();
    let command = format!(
        "env XDG_DATA_HOME={d}/data {bin} --config {c} phone --no-audio --bind 127.0.0.1:0 \
         --no-history; echo EXITED $?; sleep 600",
        d = dir.path().display(),
        bin = bin.display(),
        c = config.display(),
    );
    let started = Instant::now();
    let tmux = Tmux::start(dir.path(), &command);
    tmux.wait_for(&["alice  "]);
    let screen_at = started.elapsed();
    let screen = tmux.wait_for(&[
        &format!("alice  registered at udp:{registrar}"),
        "(1 other: 0 up, 1 down)",
    ]);
    let registered_at = started.elapsed();
    assert!(screen.contains("listening on udp:127.0.0.1:"), "{screen}");
    println!(
        "phone in tmux: screen after {} ms, registered at kamailio (after the dead registrar) \
         after {} ms",
        screen_at.as_millis(),
        registered_at.as_millis()
    );
    // The binding is at kamailio.
    let contacts = kamailio.contacts("alice").expect("kamcmd answers");
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    let ok = tmux
        .tmux()
        .args(["send-keys", "-t", "t", "q"])
        .status()
        .expect("tmux runs")
        .success();
    assert!(ok);
    tmux.wait_for(&["EXITED 0"]);
}
