//! The rest of the RFC 4475 torture messages and the RFC 5118 IPv6 torture messages: the
//! verdict of a Tincan user agent for each one, plus the few parse results the RFCs spell out.
//!
//! `valid` messages are accepted; `invalid` requests are rejected with the status the RFC gives,
//! invalid responses are dropped; `valid-but-semantically-odd` messages parse and get the answer
//! the RFC recommends where that answer is a stateless check (416, 420, 400), else accept.
//! Where the RFC says "acceptable to reject", the expectation is to reject.
//!
//! The data is in `tests/data/rfc4475-extra/` and `tests/data/rfc5118/` (see the README and
//! `MANIFEST.tsv` there).

use std::net::Ipv6Addr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use bytes::Bytes;
use tincan_sip::message::{Host, Message, Uri, Verdict, diagnose};

/// Checks that fail today because of parser defects, by check id (`name` for the verdict,
/// `name/what` for the others). They are printed loudly on every run; a listed check that
/// passes fails the run so that the list is kept honest: delete its line when it is fixed.
///
/// `ipv6-bug-abnf-3-colons`: RFC 5118 §4.10 says an implementation must tolerate
/// `[2001:db8:::192.0.2.1]` (three colons before the IPv4 part, which RFC 3261's ABNF allows by
/// accident) as well as the correct two-colon form; Tincan rejects the Request-URI with 400.
const KNOWN_FAILURES: &[&str] = &[];

/// The corpora: directory under `tests/data/`.
const CORPORA: &[&str] = &["rfc4475-extra", "rfc5118"];

/// What a user agent does with a message, per the RFC.
#[derive(Debug, Clone, Copy)]
enum Want {
    Accept,
    /// Rejected statelessly with one of these statuses (the first is the RFC's preference).
    Reject(&'static [u16]),
    Drop,
}

fn want(name: &str) -> Want {
    match name {
        // RFC 4475 §3.1.1: valid.
        "esc02" | "lwsdisp" | "semiuri" | "unreason" => Want::Accept,
        // RFC 4475 §3.1.2: invalid.
        "scalarlg" | "bigcode" => Want::Drop,
        "quotbal" | "lwsruri" | "baddn" => Want::Reject(&[400]),
        "mismatch02" => Want::Reject(&[501, 400]),
        // RFC 4475 §3.3, §3.4: semantically odd.
        "novelsc" => Want::Reject(&[416]),
        "bext01" => Want::Reject(&[420]),
        "mcl01" => Want::Reject(&[400]),
        "zeromf" | "cparam02" | "regescrt" | "inv2543" => Want::Accept,
        // RFC 5118 §4.
        "ipv6-bad" => Want::Reject(&[400]),
        "ipv6-good"
        | "port-ambiguous"
        | "port-unambiguous"
        | "via-received-param-with-delim"
        | "via-received-param-no-delim"
        | "ipv6-in-sdp"
        | "mult-ip-in-header"
        | "mult-ip-in-sdp"
        | "ipv4-mapped-ipv6"
        | "ipv6-bug-abnf-3-colons"
        | "ipv6-correct-abnf-2-colons" => Want::Accept,
        other => panic!("{other}: no expectation; add one for every manifest entry"),
    }
}

struct Case {
    corpus: &'static str,
    name: String,
    class: String,
}

fn data_dir(corpus: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(corpus)
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for &corpus in CORPORA {
        let text = std::fs::read_to_string(data_dir(corpus).join("MANIFEST.tsv"))
            .expect("MANIFEST.tsv is test data");
        for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
            let mut f = line.split('\t');
            let name = f.next().expect("manifest name column").to_owned();
            let class = f.next().expect("manifest expected column").to_owned();
            out.push(Case {
                corpus,
                name,
                class,
            });
        }
    }
    out
}

fn read(name: &str) -> Vec<u8> {
    for &corpus in CORPORA {
        let path = data_dir(corpus).join(format!("{name}.dat"));
        if path.exists() {
            return std::fs::read(path).expect("torture message is readable");
        }
    }
    panic!("{name}.dat is in no corpus")
}

fn parse(name: &str) -> Result<Message, String> {
    let bytes = Bytes::from(read(name));
    match catch_unwind(AssertUnwindSafe(|| Message::parse(bytes))) {
        Ok(Ok(msg)) => Ok(msg),
        Ok(Err(e)) => Err(format!("does not parse: {e}")),
        Err(_) => Err("the parser panicked".into()),
    }
}

/// Runs checks: an unexpected failure or a fixed known failure fails the test; known failures
/// are printed.
fn run(what: &str, checks: Vec<(String, Result<(), String>)>) {
    let mut unexpected = Vec::new();
    let mut known = Vec::new();
    let mut fixed = Vec::new();
    for (id, result) in checks {
        match (result, KNOWN_FAILURES.contains(&id.as_str())) {
            (Ok(()), false) => {}
            (Ok(()), true) => fixed.push(id),
            (Err(e), true) => known.push(format!("  {id}: {e}")),
            (Err(e), false) => unexpected.push(format!("  {id}: {e}")),
        }
    }
    if !known.is_empty() {
        eprintln!(
            "\n!!!!!!!! {what}: {} KNOWN FAILURE(S) (parser defects, see KNOWN_FAILURES) !!!!!!!!\n{}\n",
            known.len(),
            known.join("\n")
        );
    }
    assert!(
        unexpected.is_empty() && fixed.is_empty(),
        "{what}:\nwrong:\n{}\nlisted in KNOWN_FAILURES but passing now (delete the line):\n{}",
        unexpected.join("\n"),
        fixed.join("\n")
    );
}

fn verdict_check(name: &str) -> Result<(), String> {
    let bytes = read(name);
    let (got, defect) = catch_unwind(AssertUnwindSafe(|| diagnose(&bytes)))
        .map_err(|_| "the UA check panicked".to_string())?;
    let want = want(name);
    let ok = match (&got, want) {
        (Verdict::Accept, Want::Accept) => true,
        (Verdict::Reject { status, .. }, Want::Reject(allowed)) => allowed.contains(status),
        (Verdict::Drop, Want::Drop) => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let why = defect.map(|d| format!(" ({d})")).unwrap_or_default();
        Err(format!("got {got}{why}, want {want:?}"))
    }
}

#[test]
fn manifests_match_the_data_files() {
    for &corpus in CORPORA {
        let dir = data_dir(corpus);
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("corpus directory exists")
            .map(|e| e.expect("directory entry").file_name().into_string())
            .map(|n| n.expect("ASCII file name"))
            .filter_map(|n| n.strip_suffix(".dat").map(str::to_owned))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = cases()
            .into_iter()
            .filter(|c| c.corpus == corpus)
            .map(|c| c.name)
            .collect();
        listed.sort();
        assert_eq!(on_disk, listed, "{corpus}: MANIFEST.tsv and *.dat disagree");
        let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).expect("SHA256SUMS exists");
        let mut summed: Vec<String> = sums
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter_map(|n| n.strip_suffix(".dat").map(str::to_owned))
            .collect();
        summed.sort();
        assert_eq!(on_disk, summed, "{corpus}: SHA256SUMS and *.dat disagree");
    }
    assert_eq!(cases().len(), 17 + 12);
}

#[test]
fn classes_agree_with_expectations() {
    for c in cases() {
        let w = want(&c.name);
        let consistent = match c.class.as_str() {
            "valid" => matches!(w, Want::Accept),
            "invalid" => !matches!(w, Want::Accept),
            "valid-but-semantically-odd" => true,
            other => panic!("{}: unknown class {other}", c.name),
        };
        assert!(consistent, "{}: class {} but want {w:?}", c.name, c.class);
    }
}

#[test]
fn every_message_gets_the_rfc_verdict() {
    let checks = cases()
        .into_iter()
        .map(|c| {
            let r = verdict_check(&c.name);
            (c.name, r)
        })
        .collect();
    run("UA verdicts", checks);
}

/// `mcl01` is left out: RFC 4475 §3.3.9 says that two conflicting Content-Length values are,
/// for framing, the same as an invalid Content-Length (like `ncl`), so refusing to parse it is
/// allowed; its verdict (400) is checked with the others.
#[test]
fn valid_and_semantically_odd_messages_parse() {
    let checks = cases()
        .into_iter()
        .filter(|c| c.class != "invalid" && c.name != "mcl01")
        .map(|c| {
            let r = parse(&c.name).map(|_| ());
            (format!("{}/parses", c.name), r)
        })
        .collect();
    run("Message::parse", checks);
}

#[test]
fn valid_messages_round_trip() {
    let checks = cases()
        .into_iter()
        .filter(|c| c.class == "valid")
        .map(|c| {
            let r = parse(&c.name).and_then(|msg| {
                let printed = msg.to_bytes();
                let again = Message::parse(printed.clone())
                    .map_err(|e| format!("reprint does not parse: {e}"))?;
                if msg != again {
                    return Err("reprint parses to a different message".into());
                }
                if again.to_bytes() != printed {
                    return Err("printing is not stable".into());
                }
                Ok(())
            });
            (format!("{}/round-trip", c.name), r)
        })
        .collect();
    run("round trip", checks);
}

fn request_sip_uri<T>(
    msg: &Message,
    f: impl FnOnce(&tincan_sip::message::SipUri<'_>) -> T,
) -> Result<T, String> {
    match msg.uri() {
        Some(Uri::Sip(u)) => Ok(f(&u)),
        Some(other) => Err(format!("Request-URI is not a SIP URI: {other:?}")),
        None => Err("no Request-URI".into()),
    }
}

fn v6(s: &str) -> Host<'static> {
    Host::V6(s.parse::<Ipv6Addr>().expect("test address is valid"))
}

fn expect_eq<T: PartialEq + std::fmt::Debug>(got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("got {got:?}, want {want:?}"))
    }
}

fn esc02_percent_is_not_an_escape() -> Result<(), String> {
    let msg = parse("esc02")?;
    let method = msg.method().ok_or("not a request")?.as_str().to_owned();
    expect_eq(method.as_str(), "RE%47IST%45R")?;
    // `C%6Fntact` is an unknown header, not a Contact: two values, not three.
    expect_eq(msg.contacts().count(), 2)?;
    let from = msg.from().ok_or("no From")?.map_err(|e| e.to_string())?;
    expect_eq(from.display_name.as_deref(), Some("%Z%45"))
}

fn lwsdisp_display_name_is_the_token() -> Result<(), String> {
    let msg = parse("lwsdisp")?;
    let from = msg.from().ok_or("no From")?.map_err(|e| e.to_string())?;
    expect_eq(from.display_name.as_deref(), Some("caller"))
}

fn semiuri_user_holds_the_parameter() -> Result<(), String> {
    let msg = parse("semiuri")?;
    request_sip_uri(&msg, |u| {
        let user = u.user_decoded().map(|c| c.into_owned());
        expect_eq(user.as_deref(), Some(&b"user;par=u@example.net"[..]))?;
        expect_eq(&u.host, &Host::Name("example.com".into()))
    })?
}

fn unreason_keeps_the_utf8_reason() -> Result<(), String> {
    let bytes = read("unreason");
    let line_end = bytes
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or("no CRLF")?;
    let phrase =
        std::str::from_utf8(&bytes[b"SIP/2.0 200 ".len()..line_end]).map_err(|e| e.to_string())?;
    let msg = parse("unreason")?;
    expect_eq(msg.status(), Some(200))?;
    expect_eq(msg.reason().as_deref(), Some(phrase))?;
    expect_eq(msg.body().len(), 154)
}

fn zeromf_max_forwards_is_zero() -> Result<(), String> {
    let msg = parse("zeromf")?;
    let mf = msg
        .max_forwards()
        .ok_or("no Max-Forwards")?
        .map_err(|e| e.to_string())?;
    expect_eq(mf.0, 0)
}

fn cparam02_param_is_a_url_param() -> Result<(), String> {
    let msg = parse("cparam02")?;
    let contact = msg
        .contacts()
        .next()
        .ok_or("no Contact")?
        .map_err(|e| e.to_string())?;
    let Some(addr) = contact_uri(&contact) else {
        return Err(format!("Contact has no SIP URI: {contact:?}"));
    };
    expect_eq(addr.params.get("unknownparam").is_some(), true)?;
    // ... and not a contact-param.
    let header_params = contact
        .address()
        .map(|a| a.params.get("unknownparam").is_some());
    expect_eq(header_params, Some(false))
}

fn regescrt_contact_keeps_the_escaped_header() -> Result<(), String> {
    let msg = parse("regescrt")?;
    let contact = msg
        .contacts()
        .next()
        .ok_or("no Contact")?
        .map_err(|e| e.to_string())?;
    let Some(addr) = contact_uri(&contact) else {
        return Err(format!("Contact has no SIP URI: {contact:?}"));
    };
    expect_eq(
        addr.headers.as_deref(),
        Some("Route=%3Csip:sip.example.com%3E"),
    )
}

fn inv2543_body_is_the_rest_of_the_datagram() -> Result<(), String> {
    let bytes = read("inv2543");
    let start = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no empty line")?
        + 4;
    let msg = parse("inv2543")?;
    expect_eq(&msg.body()[..], &bytes[start..])
}

fn contact_uri<'c>(
    contact: &'c tincan_sip::message::typed::Contact<'_>,
) -> Option<tincan_sip::message::SipUri<'c>> {
    match contact.address()?.uri().ok()? {
        tincan_sip::message::Uri::Sip(u) => Some(u),
        _ => None,
    }
}

fn request_host_port(name: &str, host: &str, port: Option<u16>) -> Result<(), String> {
    let msg = parse(name)?;
    request_sip_uri(&msg, |u| {
        expect_eq(&u.host, &v6(host))?;
        expect_eq(u.port, port)
    })?
}

fn top_via_received_is(name: &str, addr: &str) -> Result<(), String> {
    let msg = parse(name)?;
    let via = msg.top_via().ok_or("no Via")?.map_err(|e| e.to_string())?;
    let received = via.received().ok_or("no received parameter")?;
    let bare = received.trim_start_matches('[').trim_end_matches(']');
    let got: Ipv6Addr = bare
        .parse()
        .map_err(|e| format!("received={received}: {e}"))?;
    expect_eq(
        got,
        addr.parse::<Ipv6Addr>().expect("test address is valid"),
    )
}

fn mult_ip_in_header_vias() -> Result<(), String> {
    let msg = parse("mult-ip-in-header")?;
    let vias = msg
        .vias()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    expect_eq(vias.len(), 3)?;
    expect_eq(&vias[0].host, &v6("2001:db8::9:1"))?;
    expect_eq(vias[0].port, Some(6050))?;
    expect_eq(&vias[2].host, &v6("2001:db8::9:255"))?;
    expect_eq(vias[2].received(), Some("192.0.2.200"))
}

fn ipv4_mapped_addresses() -> Result<(), String> {
    let msg = parse("ipv4-mapped-ipv6")?;
    let via = msg.top_via().ok_or("no Via")?.map_err(|e| e.to_string())?;
    expect_eq(&via.host, &v6("::ffff:192.0.2.10"))?;
    expect_eq(via.port, Some(19823))?;
    let contact = msg
        .contacts()
        .next()
        .ok_or("no Contact")?
        .map_err(|e| e.to_string())?;
    let uri = contact_uri(&contact).ok_or("Contact has no SIP URI")?;
    expect_eq(&uri.host, &v6("::ffff:192.0.2.2"))
}

fn sdp_bodies_are_whole() -> Result<(), String> {
    for (name, len) in [
        ("ipv6-in-sdp", 251),
        ("mult-ip-in-sdp", 189),
        ("ipv4-mapped-ipv6", 245),
    ] {
        let msg = parse(name)?;
        expect_eq(msg.body().len(), len).map_err(|e| format!("{name}: {e}"))?;
    }
    Ok(())
}

/// One named parse check.
type Check = fn() -> Result<(), String>;

#[test]
fn parse_results_the_rfcs_spell_out() {
    let checks: Vec<(&str, Check)> = vec![
        (
            "esc02/percent-is-not-an-escape",
            esc02_percent_is_not_an_escape,
        ),
        ("lwsdisp/display-name", lwsdisp_display_name_is_the_token),
        ("semiuri/user-part", semiuri_user_holds_the_parameter),
        ("unreason/reason-phrase", unreason_keeps_the_utf8_reason),
        ("zeromf/max-forwards", zeromf_max_forwards_is_zero),
        ("cparam02/url-param", cparam02_param_is_a_url_param),
        (
            "regescrt/uri-header",
            regescrt_contact_keeps_the_escaped_header,
        ),
        ("inv2543/body", inv2543_body_is_the_rest_of_the_datagram),
        ("port-ambiguous/host", || {
            // RFC 5118 §4.3: the would-be port is the last group of the address.
            request_host_port("port-ambiguous", "2001:db8::10:5070", None)
        }),
        ("port-unambiguous/host-port", || {
            request_host_port("port-unambiguous", "2001:db8::10", Some(5070))
        }),
        ("ipv6-good/host", || {
            request_host_port("ipv6-good", "2001:db8::10", None)
        }),
        ("via-received-param-with-delim/received", || {
            top_via_received_is("via-received-param-with-delim", "2001:db8::9:255")
        }),
        ("via-received-param-no-delim/received", || {
            top_via_received_is("via-received-param-no-delim", "2001:db8::9:255")
        }),
        ("mult-ip-in-header/vias", mult_ip_in_header_vias),
        ("ipv4-mapped-ipv6/addresses", ipv4_mapped_addresses),
        ("rfc5118-sdp/bodies", sdp_bodies_are_whole),
        ("ipv6-correct-abnf-2-colons/host", || {
            request_host_port("ipv6-correct-abnf-2-colons", "2001:db8::192.0.2.1", None)
        }),
        ("ipv6-bug-abnf-3-colons/host", || {
            // RFC 5118 §4.10: tolerate the extra colon; the address is the two-colon one.
            request_host_port("ipv6-bug-abnf-3-colons", "2001:db8::192.0.2.1", None)
        }),
    ];
    let results = checks
        .into_iter()
        .map(|(id, f)| {
            let r = catch_unwind(f).unwrap_or_else(|_| Err("panicked".into()));
            (id.to_owned(), r)
        })
        .collect();
    run("parse results", results);
}
