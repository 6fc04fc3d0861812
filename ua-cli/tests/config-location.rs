//! Where the config file is found: --config, TINCAN_CONFIG, XDG_CONFIG_HOME, ~/.config.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use tincan::config::{Config, ConfigError};

fn os(s: &str) -> Option<OsString> {
    Some(OsString::from(s))
}

#[test]
fn precedence() {
    let over = Path::new("/o/c.toml");
    assert_eq!(
        Config::locate(Some(over), os("/env.toml"), os("/xdg"), os("/home/u")),
        Some((over.to_owned(), true))
    );
    assert_eq!(
        Config::locate(None, os("/env.toml"), os("/xdg"), os("/home/u")),
        Some((PathBuf::from("/env.toml"), true))
    );
    assert_eq!(
        Config::locate(None, os(""), os("/xdg"), os("/home/u")),
        Some((PathBuf::from("/xdg/tincan/config.toml"), false))
    );
    assert_eq!(
        Config::locate(None, None, None, os("/home/u")),
        Some((PathBuf::from("/home/u/.config/tincan/config.toml"), false))
    );
    // A relative XDG_CONFIG_HOME is ignored (XDG Base Directory spec).
    assert_eq!(
        Config::locate(None, None, os("rel"), os("/home/u")),
        Some((PathBuf::from("/home/u/.config/tincan/config.toml"), false))
    );
    assert_eq!(Config::locate(None, None, None, None), None);
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tincan-config-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("create a temp dir");
    d
}

#[test]
fn an_explicit_file_must_exist() {
    let e = Config::load(Some(Path::new("/nonexistent/tincan.toml"))).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
    assert!(e.to_string().contains("/nonexistent/tincan.toml"), "{e}");
}

#[test]
fn load_records_the_path() {
    let d = temp_dir("load");
    let f = d.join("c.toml");
    std::fs::write(&f, "[network]\ndns_server = \"127.0.0.1:53\"\n").unwrap();
    let c = Config::load(Some(&f)).unwrap();
    assert_eq!(c.path.as_deref(), Some(f.as_path()));
    assert_eq!(c.network.dns_server, Some("127.0.0.1:53".parse().unwrap()));
    std::fs::remove_dir_all(d).ok();
}

/// Runs `tincan resolve sip:192.0.2.1` (no DNS needed) with this environment; returns the
/// exit code and stderr.
fn tincan_resolve(extra: &[&str], env: &[(&str, &Path)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tincan"));
    cmd.args(extra).args(["resolve", "sip:192.0.2.1"]);
    cmd.env_remove("TINCAN_CONFIG")
        .env_remove("XDG_CONFIG_HOME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the tincan binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_binary_reads_tincan_config_and_xdg_and_the_option_wins() {
    let d = temp_dir("env");
    let bad = d.join("bad.toml");
    std::fs::write(&bad, "[network]\nbind = \"nope\"\n").unwrap();
    let good = d.join("good.toml");
    std::fs::write(&good, "[network]\nbind = \"127.0.0.1:0\"\n").unwrap();

    // TINCAN_CONFIG names a bad file: usage error with the place and the key.
    let (code, err) = tincan_resolve(&[], &[("TINCAN_CONFIG", &bad), ("HOME", &d)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.toml:2:8: key `bind`"), "{err}");

    // --config wins over TINCAN_CONFIG.
    let (code, err) = tincan_resolve(
        &["--config", good.to_str().unwrap()],
        &[("TINCAN_CONFIG", &bad), ("HOME", &d)],
    );
    assert_eq!(code, 0, "{err}");

    // A missing file named by TINCAN_CONFIG is an error...
    let missing = d.join("missing.toml");
    let (code, err) = tincan_resolve(&[], &[("TINCAN_CONFIG", &missing), ("HOME", &d)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("missing.toml"), "{err}");

    // ...but a missing default file is not.
    let (code, err) = tincan_resolve(&[], &[("HOME", &d), ("XDG_CONFIG_HOME", &d)]);
    assert_eq!(code, 0, "{err}");

    // The default file under XDG_CONFIG_HOME is read.
    std::fs::create_dir_all(d.join("tincan")).unwrap();
    std::fs::copy(&bad, d.join("tincan/config.toml")).unwrap();
    let (code, err) = tincan_resolve(&[], &[("HOME", &d), ("XDG_CONFIG_HOME", &d)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("tincan/config.toml:2:8"), "{err}");
    std::fs::remove_dir_all(d).ok();
}
