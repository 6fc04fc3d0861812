//! A complete, valid config file: every key read, defaults filled in.

use tincan::config::{Config, PasswordSource, RegisterMode, TransportChoice};
use tincan_media::codec::CodecKind;
use tincan_media::sdp::SrtpPolicy;

const FULL: &str = r#"
# Tincan test config
[network]
dns_server = "127.0.0.1:5353"
bind = "[::1]:5070"

[audio]
input_device = "Built-in Microphone"
output_device = "Built-in Speakers"
ring_device = "HDMI"
ring_tone = "/usr/share/sounds/ring.wav"
ringback = false

[[account]]
name = "work"
aor = "sip:alice@example.com"
username = "alice-auth"
password = "hunter2"
transport = "tls"
registrars = ["sip:reg1.example.com;transport=tcp", "sips:reg2.example.com:5061"]
register_mode = "all"
expires = 600
outbound = false
instance_id = "urn:uuid:00000000-0000-1000-8000-00A0C91E6BF6"
display_name = "Alice Smith"
codecs = ["pcma", "Opus", "G722"]
srtp = "required"
auto_answer = true
input_device = "USB Headset Mic"
output_device = "USB Headset"
ring_device = "Speakers"

[[account]]
name = "home"
aor = "sips:bob@example.org"
password_env = "HOME_SIP_PASSWORD"
"#;

#[test]
fn every_key_is_read() {
    let c = Config::from_str_named(FULL, "full.toml").expect("the file is valid");
    assert_eq!(
        c.network.dns_server,
        Some("127.0.0.1:5353".parse().unwrap())
    );
    assert_eq!(c.network.bind, Some("[::1]:5070".parse().unwrap()));
    assert_eq!(c.accounts.len(), 2);
    let w = c.account("work").expect("declared");
    assert_eq!(w.aor.to_string(), "sip:alice@example.com");
    assert_eq!(w.username, "alice-auth");
    assert_eq!(
        w.password_source,
        PasswordSource::Literal(tincan::config::Secret::new("hunter2"))
    );
    assert_eq!(w.transport, TransportChoice::Tls);
    assert_eq!(
        w.transport.transport(),
        Some(tincan_sip::transport::Transport::Tls)
    );
    let regs: Vec<String> = w.registrars.iter().map(ToString::to_string).collect();
    assert_eq!(
        regs,
        [
            "sip:reg1.example.com;transport=tcp",
            "sips:reg2.example.com:5061"
        ]
    );
    assert_eq!(w.registrar_uris().len(), 2);
    assert_eq!(w.register_mode, RegisterMode::All);
    assert_eq!(w.expires, 600);
    assert!(!w.outbound);
    // Written in upper case, kept in lower case (UUIDs compare case-insensitively).
    assert_eq!(
        w.instance_id,
        "urn:uuid:00000000-0000-1000-8000-00a0c91e6bf6"
    );
    assert_eq!(w.display_name.as_deref(), Some("Alice Smith"));
    assert_eq!(
        w.codecs,
        Some(vec![CodecKind::Pcma, CodecKind::Opus, CodecKind::G722])
    );
    assert_eq!(w.srtp, Some(SrtpPolicy::Required));
    assert!(w.auto_answer);
    assert_eq!(w.input_device.as_deref(), Some("USB Headset Mic"));
    assert_eq!(w.output_device.as_deref(), Some("USB Headset"));
    assert_eq!(w.ring_device.as_deref(), Some("Speakers"));
    assert_eq!(c.audio.input_device.as_deref(), Some("Built-in Microphone"));
    assert_eq!(c.audio.output_device.as_deref(), Some("Built-in Speakers"));
    assert_eq!(c.audio.ring_device.as_deref(), Some("HDMI"));
    assert_eq!(
        c.audio.ring_tone.as_deref(),
        Some(std::path::Path::new("/usr/share/sounds/ring.wav"))
    );
    assert_eq!(c.audio.ringback, Some(false));
}

#[test]
fn defaults() {
    let c = Config::from_str_named(FULL, "full.toml").expect("the file is valid");
    let h = c.account("home").expect("declared");
    assert_eq!(h.username, "bob", "the aor's user part");
    assert_eq!(
        h.password_source,
        PasswordSource::Env("HOME_SIP_PASSWORD".into())
    );
    assert_eq!(h.transport, TransportChoice::Auto);
    assert_eq!(h.transport.transport(), None);
    assert!(h.registrars.is_empty());
    // Without registrars, the aor's domain is what RFC 3263 resolves.
    let regs: Vec<String> = h.registrar_uris().iter().map(ToString::to_string).collect();
    assert_eq!(regs, ["sips:example.org"]);
    assert_eq!(h.register_mode, RegisterMode::Failover);
    assert_eq!(h.expires, 3600);
    assert!(h.outbound);
    assert!(h.instance_id.starts_with("urn:uuid:"), "{}", h.instance_id);
    // What the phone uses: the phone's own defaults unless the account says.
    assert_eq!(h.display_name, None);
    assert_eq!((h.codecs.clone(), h.srtp), (None, None));
    assert!(!h.auto_answer);
    assert_eq!(
        (&h.input_device, &h.output_device, &h.ring_device),
        (&None, &None, &None)
    );
    // Stable: the same aor gives the same instance id in another file.
    let again = Config::from_str_named(
        "[[account]]\nname = \"x\"\naor = \"sips:bob@example.org\"\npassword = \"p\"\n",
        "again.toml",
    )
    .unwrap();
    assert_eq!(again.accounts[0].instance_id, h.instance_id);
}

#[test]
fn an_empty_file_is_an_empty_config() {
    let c = Config::from_str_named("", "empty.toml").unwrap();
    assert_eq!(c, Config::default());
    assert!(c.accounts.is_empty());
    assert_eq!(c.network.dns_server, None);
}

#[test]
fn the_user_part_is_unescaped_for_the_username() {
    let c = Config::from_str_named(
        "[[account]]\nname = \"a\"\naor = \"sip:al%69ce@example.com\"\npassword = \"p\"\n",
        "escaped.toml",
    )
    .unwrap();
    assert_eq!(c.accounts[0].username, "alice");
}

#[test]
fn debug_output_never_shows_a_password() {
    let c = Config::from_str_named(FULL, "full.toml").unwrap();
    let debug = format!("{c:?} {c:#?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[test]
fn realm_one_a_list_or_any() {
    use tincan::config::RealmPolicy;
    let realm = |line: &str| {
        let text = format!(
            "[[account]]\nname = \"a\"\naor = \"sip:alice@example.com\"\npassword = \"x\"\n{line}\n"
        );
        Config::from_str_named(&text, "t.toml").unwrap().accounts[0]
            .realm
            .clone()
    };
    assert_eq!(realm(""), RealmPolicy::FirstChallenge);
    assert_eq!(
        realm("realm = \"example.com\""),
        RealmPolicy::Only(vec!["example.com".into()])
    );
    assert_eq!(
        realm("realm = [\"a.example\", \"b.example\"]"),
        RealmPolicy::Only(vec!["a.example".into(), "b.example".into()])
    );
    assert_eq!(realm("realm = \"*\""), RealmPolicy::Any);
    // The phone's account takes it over.
    let text = "[[account]]\nname = \"a\"\naor = \"sip:alice@example.com\"\npassword = \"x\"\nrealm = \"r\"\n";
    let c = Config::from_str_named(text, "t.toml").unwrap();
    let ac = tincan::phone::AccountConfig::from_config(&c.accounts[0]).unwrap();
    assert_eq!(ac.realm, RealmPolicy::Only(vec!["r".into()]));
}
