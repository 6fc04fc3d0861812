//! RFC 4475 torture messages: the verdict of a Tincan user agent for each one.
//!
//! `valid` messages are accepted; `invalid` ones are rejected with the status RFC 4475 gives
//! (or dropped, for responses); `valid-but-semantically-odd` ones parse without error and get
//! the answer RFC 4475 recommends for a user agent. Where the RFC says "acceptable to reject",
//! Tincan rejects (docs/message.md lists each choice).

use std::path::PathBuf;

use bytes::Bytes;
use tincan_sip::message::{Message, Verdict, verdict};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc4475")
}

fn manifest() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(data_dir().join("MANIFEST.tsv"))
        .expect("MANIFEST.tsv is test data");
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut f = l.split('\t');
            (f.next().unwrap().to_owned(), f.next().unwrap().to_owned())
        })
        .collect()
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(format!("{name}.dat"))).expect("torture message exists")
}

/// Expected UA verdicts: status for a rejected request, 0 for drop, None for accept.
fn expected(name: &str, class: &str) -> Option<u16> {
    match (name, class) {
        (_, "valid") => None,
        ("badvers", _) => Some(505),
        (_, "invalid") => Some(400),
        ("insuf" | "multi01", _) => Some(400),
        ("unkscm", _) => Some(416),
        _ => None,
    }
}

#[test]
fn every_torture_message_gets_the_rfc_verdict() {
    let mut failures = Vec::new();
    for (name, class) in manifest() {
        let bytes = read(&name);
        let got = verdict(&bytes);
        let want = expected(&name, &class);
        let ok = match (&got, want) {
            (Verdict::Accept, None) => true,
            (Verdict::Reject { status, .. }, Some(s)) => *status == s,
            (Verdict::Drop, Some(0)) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!("{name} ({class}): got {got}, want {want:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "wrong verdicts:\n{}",
        failures.join("\n")
    );
}

#[test]
fn semantically_odd_messages_parse() {
    for (name, class) in manifest() {
        if class == "valid-but-semantically-odd" {
            let msg = Message::parse(Bytes::from(read(&name)));
            assert!(msg.is_ok(), "{name}: {:?}", msg.err());
        }
    }
}

#[test]
fn valid_messages_round_trip() {
    for (name, class) in manifest() {
        if class != "valid" {
            continue;
        }
        let msg = Message::parse(Bytes::from(read(&name))).unwrap();
        let printed = msg.to_bytes();
        let again = Message::parse(printed.clone())
            .unwrap_or_else(|e| panic!("{name}: reprint does not parse: {e}"));
        assert_eq!(msg, again, "{name}");
        assert_eq!(again.to_bytes(), printed, "{name}: printing is stable");
    }
}

#[test]
fn dblreq_ignores_the_trailing_request() {
    let msg = Message::parse(Bytes::from(read("dblreq"))).unwrap();
    assert_eq!(msg.method().unwrap().as_str(), "REGISTER");
    assert!(msg.body().is_empty());
}

#[test]
fn mpart01_body_is_framed_by_content_length() {
    let msg = Message::parse(Bytes::from(read("mpart01"))).unwrap();
    let len: usize = msg
        .header(tincan_sip::message::HeaderName::ContentLength)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(msg.body().len(), len);
}

#[test]
fn escnull_keeps_the_whole_user() {
    let msg = Message::parse(Bytes::from(read("escnull"))).unwrap();
    let to = msg.to().unwrap().unwrap();
    let uri = to.uri().unwrap();
    let user = uri.as_sip().unwrap().user_decoded().unwrap();
    assert_eq!(&*user, b"null-\0-null");
    assert_eq!(msg.contacts().count(), 2);
}
