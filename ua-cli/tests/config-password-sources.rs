//! `password`, `password_env` and `password_command`: read on demand, clear errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tincan::config::{Config, ConfigError, ConfigWarning};

fn account_with(source: &str) -> Config {
    Config::from_str_named(
        &format!("[[account]]\nname = \"a\"\naor = \"sip:alice@example.com\"\n{source}\n"),
        "test.toml",
    )
    .expect("a valid file")
}

#[test]
fn literal_password() {
    let c = account_with("password = \"hunter2\"");
    let p = c.accounts[0].password().unwrap();
    assert_eq!(p.expose(), "hunter2");
    assert_eq!(p.to_string(), "<redacted>");
    assert!(!format!("{p:?}").contains("hunter2"));
}

#[test]
fn password_from_the_environment() {
    // Cargo sets CARGO_PKG_NAME for the test process: a variable surely present.
    let c = account_with("password_env = \"CARGO_PKG_NAME\"");
    assert_eq!(c.accounts[0].password().unwrap().expose(), "tincan");
}

#[test]
fn missing_environment_variable_is_named() {
    let c = account_with("password_env = \"TINCAN_TEST_SURELY_UNSET_VARIABLE\"");
    let e = c.accounts[0].password().unwrap_err();
    assert!(matches!(e, ConfigError::PasswordEnv { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("TINCAN_TEST_SURELY_UNSET_VARIABLE"), "{msg}");
    assert!(msg.contains("is not set") && msg.contains("\"a\""), "{msg}");
}

#[test]
fn password_from_a_command_is_its_first_line() {
    let c = account_with(r#"password_command = "printf 's3cret with spaces\nsecond line\n'""#);
    assert_eq!(
        c.accounts[0].password().unwrap().expose(),
        "s3cret with spaces"
    );
}

#[test]
fn failing_command_is_named_by_its_program_alone() {
    // The command line may hold a secret (a token, a passphrase): the error names the
    // program (its first word), the exit status and the first line of its standard error,
    // never the arguments.
    let c = account_with(
        r#"password_command = "printf tok-3141 >/dev/null; echo nope >&2; echo more >&2; exit 3""#,
    );
    let e = c.accounts[0].password().unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::PasswordCommand { .. }), "{e:?}");
    assert!(
        msg.contains("\"printf\"") && msg.contains("failed") && msg.contains("exit status: 3"),
        "{msg}"
    );
    assert!(msg.contains("nope") && !msg.contains("more"), "{msg}");
    assert!(
        !msg.contains("tok-3141") && !msg.contains("/dev/null"),
        "the arguments are not shown: {msg}"
    );
    assert!(!format!("{e:?}").contains("tok-3141"), "{e:?}");
}

#[test]
fn an_environment_assignment_is_not_shown_as_the_program() {
    let c = account_with(r#"password_command = "TOKEN=tok-2718 false""#);
    let msg = c.accounts[0].password().unwrap_err().to_string();
    assert!(msg.contains("\"false\""), "{msg}");
    assert!(!msg.contains("tok-2718"), "{msg}");
}

#[test]
fn command_printing_nothing_is_an_error() {
    let c = account_with(r#"password_command = "true""#);
    let msg = c.accounts[0].password().unwrap_err().to_string();
    assert!(msg.contains("printed nothing"), "{msg}");
}

#[test]
fn sources_are_read_only_when_asked() {
    // Loading never runs the command: a command that would fail is fine until password().
    let c = account_with(r#"password_command = "exit 1""#);
    assert_eq!(c.accounts.len(), 1);
    assert!(c.accounts[0].password().is_err());
}

/// A fresh directory for this test.
fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "tincan-password-sources-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create a temp dir");
    d
}

/// Whether a process is still there (a zombie counts as gone: it no longer runs).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn a_hanging_command_is_killed_after_the_timeout() {
    // The command records its own PID and a background child's, then hangs: the call
    // returns an error after the timeout, and both processes are gone.
    let d = temp_dir("hang");
    let pids = d.join("pids");
    let c = account_with(&format!(
        "password_command = \"echo $$ > {p}; sleep 60 >/dev/null 2>&1 & echo $! >> {p}; sleep 3; echo late\"",
        p = pids.display()
    ));
    let e = c.accounts[0]
        .password_within(Duration::from_millis(300))
        .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::PasswordCommand { .. }), "{e:?}");
    assert!(
        msg.contains("\"echo\"") && msg.contains("did not finish") && msg.contains("killed"),
        "{msg}"
    );
    let text = std::fs::read_to_string(&pids).expect("the command wrote its PIDs");
    let pids: Vec<u32> = text.lines().map(|l| l.trim().parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{text}");
    // The shell is reaped at once; its orphaned child is reaped by init: wait for that.
    assert!(!running(pids[0]), "the command's shell still runs");
    let gone = (0..500).any(|_| {
        let g = !running(pids[1]);
        if !g {
            std::thread::sleep(Duration::from_millis(10));
        }
        g
    });
    assert!(gone, "the command's child {} still runs", pids[1]);
}

#[test]
fn the_default_timeout_is_ten_seconds() {
    assert_eq!(
        tincan::config::PASSWORD_COMMAND_TIMEOUT,
        Duration::from_secs(10)
    );
}

fn write_config(dir: &Path, text: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let f = dir.join("config.toml");
    std::fs::write(&f, text).expect("write the config");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).expect("chmod");
    f
}

const INLINE: &str =
    "[[account]]\nname = \"a\"\naor = \"sip:alice@example.com\"\npassword = \"hunter2\"\n";

#[test]
fn an_inline_password_in_a_file_others_can_read_is_warned_about() {
    let d = temp_dir("mode");
    let f = write_config(&d, INLINE, 0o644);
    let c = Config::load(Some(&f)).expect("loads: a warning, not an error");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(matches!(
        &c.warnings[0],
        ConfigWarning::PasswordFileReadable { mode: 0o644, .. }
    ));
    let text = c.warnings[0].to_string();
    assert!(
        text.contains(&f.display().to_string())
            && text.contains(&format!("chmod 600 {}", f.display())),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    // Group-readable is as bad.
    let f = write_config(&d, INLINE, 0o640);
    assert_eq!(Config::load(Some(&f)).unwrap().warnings.len(), 1);
}

#[test]
fn a_private_file_or_no_inline_password_gives_no_warning() {
    let d = temp_dir("private");
    let f = write_config(&d, INLINE, 0o600);
    assert!(Config::load(Some(&f)).unwrap().warnings.is_empty());
    let no_secret = INLINE.replace("password = \"hunter2\"", "password_env = \"X\"");
    let f = write_config(&d, &no_secret, 0o644);
    assert!(Config::load(Some(&f)).unwrap().warnings.is_empty());
}
