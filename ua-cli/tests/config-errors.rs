//! Every kind of bad config file gives an error with the file, line, column and key.

use tincan::config::{Config, ConfigError};

/// Parses `text` and returns (line, column, key, full message).
fn error(text: &str) -> (usize, usize, Option<String>, String) {
    let e = Config::from_str_named(text, "test.toml").expect_err("the file is invalid");
    let shown = e.to_string();
    match e {
        ConfigError::Invalid {
            line, column, key, ..
        } => (line, column, key, shown),
        other => panic!("not an Invalid error: {other}"),
    }
}

const ACCOUNT: &str = "[[account]]\nname = \"a\"\naor = \"sip:alice@example.com\"\n";

#[track_caller]
fn check(text: &str, line: usize, key: &str, needle: &str) {
    let (l, _c, k, shown) = error(text);
    assert_eq!(l, line, "{shown}");
    assert_eq!(k.as_deref(), Some(key), "{shown}");
    assert!(
        shown.starts_with(&format!("test.toml:{line}:")),
        "no file:line prefix: {shown}"
    );
    assert!(shown.contains(&format!("key `{key}`")), "{shown}");
    assert!(shown.contains(needle), "{needle:?} missing in: {shown}");
    // The offending line is quoted under the message.
    let quoted = text.lines().nth(line - 1).unwrap();
    assert!(shown.contains(&format!("{line} | {quoted}")), "{shown}");
}

#[test]
fn toml_syntax_error() {
    let (line, column, _key, shown) = error("[network]\ndns_server = \"127.0.0.1:53\nbind = 1\n");
    assert_eq!(line, 2, "{shown}");
    assert!(column > 1, "{shown}");
    assert!(shown.starts_with("test.toml:2:"), "{shown}");
}

#[test]
fn unknown_top_level_section() {
    let (line, column, _key, shown) = error("[netwrk]\ndns_server = \"127.0.0.1:53\"\n");
    assert_eq!((line, column), (1, 2), "{shown}");
    assert!(shown.contains("netwrk"), "{shown}");
    assert!(
        shown.contains("network") && shown.contains("account"),
        "valid keys listed: {shown}"
    );
}

#[test]
fn unknown_key_in_network_lists_the_valid_ones() {
    check(
        "[network]\ndns_sever = \"127.0.0.1:53\"\n",
        2,
        "dns_sever",
        "expected one of `dns_server`, `bind`, `keepalive_interval`",
    );
}

#[test]
fn unknown_key_in_an_account() {
    check(
        &format!("{ACCOUNT}password = \"x\"\nexpire = 60\n"),
        5,
        "expire",
        "`expires`",
    );
}

#[test]
fn wrong_type() {
    check(
        &format!("{ACCOUNT}password = \"x\"\nexpires = \"soon\"\n"),
        5,
        "expires",
        "invalid type",
    );
}

#[test]
fn bad_socket_address() {
    check(
        "[network]\ndns_server = \"127.0.0.1\"\n",
        2,
        "dns_server",
        "ADDR:PORT",
    );
    check(
        "[network]\nbind = \"localhost:5060\"\n",
        2,
        "bind",
        "ADDR:PORT",
    );
}

#[test]
fn aor_must_be_a_sip_uri() {
    check(
        "[[account]]\nname = \"a\"\naor = \"tel:+15551234\"\npassword = \"x\"\n",
        3,
        "aor",
        "not a sip: or sips: URI",
    );
    check(
        "[[account]]\nname = \"a\"\naor = \"alice@example.com\"\npassword = \"x\"\n",
        3,
        "aor",
        "in account \"a\"",
    );
}

#[test]
fn aor_without_user_needs_a_username() {
    check(
        "[[account]]\nname = \"a\"\naor = \"sip:example.com\"\npassword = \"x\"\n",
        3,
        "aor",
        "set `username`",
    );
}

#[test]
fn duplicate_account_names() {
    check(
        &format!("{ACCOUNT}password = \"x\"\n{ACCOUNT}password = \"y\"\n"),
        6,
        "name",
        "unique",
    );
}

#[test]
fn no_password_source() {
    check(ACCOUNT, 2, "password", "no password");
}

#[test]
fn two_password_sources() {
    check(
        &format!("{ACCOUNT}password = \"x\"\npassword_env = \"P\"\n"),
        5,
        "password",
        "more than one",
    );
}

#[test]
fn bad_registrar() {
    check(
        &format!(
            "{ACCOUNT}password = \"x\"\nregistrars = [\"sip:ok.example.com\", \"http://x\"]\n"
        ),
        5,
        "registrars",
        "\"http://x\"",
    );
}

#[test]
fn bad_enum_values() {
    check(
        &format!("{ACCOUNT}password = \"x\"\ntransport = \"sctp\"\n"),
        5,
        "transport",
        "`auto`, `udp`, `tcp`",
    );
    check(
        &format!("{ACCOUNT}password = \"x\"\nregister_mode = \"both\"\n"),
        5,
        "register_mode",
        "`failover`",
    );
}

#[test]
fn zero_expires() {
    check(
        &format!("{ACCOUNT}password = \"x\"\nexpires = 0\n"),
        5,
        "expires",
        "at least 1",
    );
}

#[test]
fn bad_instance_id() {
    check(
        &format!("{ACCOUNT}password = \"x\"\ninstance_id = \"urn:uuid:1234\"\n"),
        5,
        "instance_id",
        "urn:uuid",
    );
}

#[test]
fn missing_required_key() {
    let (line, _c, _k, shown) = error("[[account]]\nname = \"a\"\npassword = \"x\"\n");
    assert!(shown.contains("missing field `aor`"), "{shown}");
    assert!(shown.starts_with(&format!("test.toml:{line}:")), "{shown}");
}

#[test]
fn an_error_never_shows_a_password() {
    let text = format!("{ACCOUNT}password = \"hunter2\"\npassword_command = \"pass show sip\"\n");
    let e = Config::from_str_named(&text, "test.toml").unwrap_err();
    // The quoted line is the second source, not the password line.
    assert!(!e.to_string().contains("hunter2"), "{e}");
    assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
}

#[test]
fn bad_realms_are_named_with_their_line() {
    let text = format!("{ACCOUNT}password = \"x\"\nrealm = \"\"\n");
    check(&text, 5, "realm", "empty realm");
    let text = format!("{ACCOUNT}password = \"x\"\nrealm = []\n");
    check(&text, 5, "realm", "an empty list");
    let text = format!("{ACCOUNT}password = \"x\"\nrealm = [\"a\", \"*\"]\n");
    check(&text, 5, "realm", "stands alone");
    let text = format!("{ACCOUNT}password = \"x\"\nrealm = 5\n");
    check(&text, 5, "realm", "is not a realm");
    let text = format!("{ACCOUNT}password = \"x\"\nrealm = [\"a\", 5]\n");
    check(&text, 5, "realm", "is not a realm string");
}

#[test]
fn bad_codecs_and_srtp_are_named_with_their_line() {
    let account = format!("{ACCOUNT}password = \"x\"\n");
    check(
        &format!("{account}codecs = [\"pcma\", \"g729\"]\n"),
        5,
        "codecs",
        "unknown codec \"g729\": the codecs are opus, g722, pcmu, pcma",
    );
    check(
        &format!("{account}codecs = []\n"),
        5,
        "codecs",
        "an empty list",
    );
    check(
        &format!("{account}codecs = [\"pcmu\", \"PCMU\"]\n"),
        5,
        "codecs",
        "listed twice",
    );
    check(
        &format!("{account}srtp = \"mandatory\"\n"),
        5,
        "srtp",
        "\"mandatory\" is not an SRTP policy: use \"off\", \"optional\" or \"required\"",
    );
    check(
        &format!("{account}input_device = \" \"\n"),
        5,
        "input_device",
        "empty device name",
    );
    check("[audio]\nring_tone = \"\"\n", 2, "ring_tone", "empty path");
}

#[test]
fn unknown_key_in_audio_lists_the_valid_ones() {
    check(
        "[audio]\ninput = \"USB\"\n",
        2,
        "input",
        "expected one of `input_device`, `output_device`, `ring_device`, `ring_tone`",
    );
}
