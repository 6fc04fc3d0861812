//! An account's own `codecs`, `srtp` and `display_name` in virtual time: a call placed through
//! an account with `codecs = ["pcma"]` offers PCMA alone, with the account's display name in
//! its From; a call to an account whose SRTP is required is refused 488 when the caller
//! offers plain RTP, while the phone's default policy (optional) takes it. A call's own
//! parameters win over its account's. The account's REGISTER carries its display name in
//! From and To. Issue 14, point 5.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, P1, Sim, account};
use tincan::phone::{AccountId, CallEnd, CallEvent, CallParams, EndReason};
use tincan_media::codec::CodecKind;
use tincan_media::sdp::SrtpPolicy;

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

/// The INVITEs `node` sent, whole.
fn invites(sim: &Sim, node: usize) -> Vec<String> {
    sim.nodes[node]
        .sent_messages
        .iter()
        .map(|(_, _, m)| String::from_utf8_lossy(m).into_owned())
        .filter(|m| m.starts_with("INVITE "))
        .collect()
}

/// The `m=audio` line and the `a=rtpmap` lines of the audio codecs (not telephone-event)
/// of an INVITE's offer.
fn offered(invite: &str) -> Vec<&str> {
    invite
        .lines()
        .filter(|l| {
            l.starts_with("m=audio")
                || (l.starts_with("a=rtpmap") && !l.contains("telephone-event"))
        })
        .collect()
}

#[test]
fn a_call_through_an_account_offers_its_codecs_only_with_its_display_name() {
    let mut sim = Sim::new(14, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    // Alice's account sends its calls to Bob as its "registrar"; it does not register.
    let mut a = account("alice", &[BOB]);
    a.register = false;
    a.codecs = Some(vec![CodecKind::Pcma]);
    a.display_name = Some("Alice \"Al\" Smith".into());
    sim.add_account(alice, a);

    let call = sim
        .act(alice, |c, now| {
            c.call(
                now,
                &format!("sip:bob@{BOB}"),
                CallParams {
                    account: Some(AccountId(0)),
                    ..CallParams::default()
                },
            )
        })
        .expect("a callable uri");
    sim.run_for(Duration::from_millis(200));
    let sent = invites(&sim, alice);
    let invite = sent.first().expect("an INVITE");
    let media = offered(invite);
    assert_eq!(media.len(), 2, "one m= line, one rtpmap: {media:?}");
    assert!(
        media[0].ends_with(" RTP/AVP 8 101"),
        "PCMA alone (and telephone-event): {media:?}"
    );
    assert_eq!(media[1], "a=rtpmap:8 PCMA/8000");
    let from = invite
        .lines()
        .find(|l| l.starts_with("From:"))
        .expect("a From");
    assert!(
        from.starts_with(r#"From: "Alice \"Al\" Smith" <sip:alice@"#),
        "{from}"
    );

    let incoming = sim.incoming(bob);
    assert_eq!(incoming.len(), 1);
    sim.act(bob, |c, now| c.accept(now, incoming[0]))
        .expect("accepted");
    sim.run_for(Duration::from_secs(1));
    let codec = sim
        .call_events(alice)
        .into_iter()
        .find_map(|(_, c, e)| match e {
            CallEvent::Answered { codec, .. } if c == call => Some(codec),
            _ => None,
        });
    assert_eq!(codec, Some(CodecKind::Pcma));

    // The call's own codecs win over the account's.
    sim.act(alice, |c, now| {
        c.call(
            now,
            &format!("sip:bob@{BOB}"),
            CallParams {
                account: Some(AccountId(0)),
                codecs: Some(vec![CodecKind::Pcmu]),
                ..CallParams::default()
            },
        )
    })
    .expect("a callable uri");
    sim.run_for(Duration::from_millis(200));
    let sent = invites(&sim, alice);
    let media = offered(sent.last().expect("a second INVITE"));
    assert_eq!(media[1..], ["a=rtpmap:0 PCMU/8000"], "{media:?}");
}

/// Alice calls Bob's account `bob` offering plain RTP; Bob answers. How the call ended
/// for Alice: `None` while it is up.
fn plain_rtp_call_to(srtp: Option<SrtpPolicy>) -> Option<CallEnd> {
    let mut sim = Sim::new(15, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    let mut b = account("bob", &[ALICE]);
    b.register = false;
    b.srtp = srtp;
    sim.add_account(bob, b);
    let call = sim
        .act(alice, |c, now| {
            c.call(
                now,
                &format!("sip:bob@{BOB}"),
                CallParams {
                    srtp: Some(SrtpPolicy::Off),
                    ..CallParams::default()
                },
            )
        })
        .expect("a callable uri");
    sim.run_for(Duration::from_millis(200));
    let incoming = sim.incoming(bob);
    assert_eq!(incoming.len(), 1);
    sim.act(bob, |c, now| c.accept(now, incoming[0]))
        .expect("accepted");
    sim.run_for(Duration::from_secs(1));
    sim.call_events(alice)
        .into_iter()
        .find_map(|(_, c, e)| match e {
            CallEvent::Ended(end) if c == call => Some(end),
            _ => None,
        })
}

#[test]
fn a_call_to_an_account_with_srtp_required_refuses_plain_rtp_488() {
    let end = plain_rtp_call_to(Some(SrtpPolicy::Required)).expect("the call ended");
    assert_eq!(end.reason, EndReason::Rejected, "{end:?}");
    assert_eq!(end.status, Some(488), "{end:?}");
    // Without the account's key the phone's policy (optional) takes the call.
    assert!(plain_rtp_call_to(None).is_none(), "the call is up");
}

#[test]
fn an_account_registers_with_its_display_name_in_from_and_to() {
    let mut sim = Sim::new(16, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    sim.add_proxy(P1);
    let mut a = account("alice", &[P1]);
    a.display_name = Some("Alice Smith".into());
    sim.add_account(alice, a);
    sim.run_for(Duration::from_secs(2));
    let register = sim.nodes[alice]
        .sent_messages
        .iter()
        .map(|(_, _, m)| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.starts_with("REGISTER "))
        .expect("a REGISTER");
    let header = |name: &str| {
        register
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {register}"))
            .to_owned()
    };
    assert!(
        header("From:").starts_with("From: Alice Smith <sip:alice@example.test>;tag="),
        "{register}"
    );
    assert_eq!(header("To:"), "To: Alice Smith <sip:alice@example.test>");
}
