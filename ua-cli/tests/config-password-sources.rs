//! `password`, `password_env` and `password_command`: read on demand, clear errors.

use tincan::config::{Config, ConfigError};

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
fn failing_command_is_named() {
    let c = account_with(r#"password_command = "echo nope >&2; exit 3""#);
    let e = c.accounts[0].password().unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::PasswordCommand { .. }), "{e:?}");
    assert!(msg.contains("exit 3") && msg.contains("failed"), "{msg}");
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
