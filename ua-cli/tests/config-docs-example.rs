//! The full example of docs/config.md is a valid file, and the documented error messages are
//! the ones Tincan prints.

use std::path::Path;

use tincan::config::{Config, RegisterMode, TransportChoice};

fn docs() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md");
    std::fs::read_to_string(p).expect("docs/config.md is readable")
}

/// The fenced blocks of the given language, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        match &mut current {
            None if t == format!("```{lang}") => current = Some(String::new()),
            Some(b) if t == "```" => {
                out.push(std::mem::take(b));
                current = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn the_full_example_is_valid() {
    let toml = blocks(&docs(), "toml");
    let c = Config::from_str_named(&toml[0], "docs/config.md").expect("the example is valid");
    assert_eq!(c.accounts.len(), 3);
    let work = c.account("work").unwrap();
    assert_eq!(work.username, "asmith");
    assert_eq!(work.transport, TransportChoice::Tls);
    assert_eq!(work.register_mode, RegisterMode::All);
    assert_eq!(work.registrars.len(), 2);
    let lab = c.account("lab").unwrap();
    assert_eq!(lab.username, "1001");
    assert!(!lab.outbound);
    let home = c.account("home").unwrap();
    assert_eq!(home.display_name.as_deref(), Some("Alice Smith"));
    assert!(home.auto_answer);
    assert!(home.presence);
    assert_eq!(home.watch, ["bob", "sip:carol@example.net"]);
    assert_eq!(work.srtp, Some(tincan_media::sdp::SrtpPolicy::Required));
    assert_eq!(work.codecs.as_ref().map(Vec::len), Some(2));
    assert!(c.audio.ring_tone.is_some());
}

#[test]
fn the_documented_errors_are_the_real_ones() {
    let text = docs();
    let shown = blocks(&text, "text");
    let unknown = shown
        .iter()
        .find(|b| b.contains("unknown field `expire`"))
        .expect("the unknown-key example");
    let e = Config::from_str_named(
        "[[account]]\nname = \"a\"\naor = \"sip:a@example.com\"\npassword = \"x\"\nexpire = 60\n",
        "/home/alice/.config/tincan/config.toml",
    )
    .unwrap_err();
    assert_eq!(format!("tincan: {e}\n"), *unknown);

    let tel = shown
        .iter()
        .find(|b| b.contains("tel:+15551234"))
        .expect("the bad-aor example");
    let e = Config::from_str_named(
        "[[account]]\nname = \"work\"\naor = \"tel:+15551234\"\npassword = \"x\"\n",
        "config.toml",
    )
    .unwrap_err();
    assert_eq!(format!("tincan: {e}\n"), *tel);
}
