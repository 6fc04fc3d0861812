//! Requests that do not fit a dialog (RFC 3261 §12.2.2): a lower CSeq than the last one gets
//! 500; a request for a dialog nobody knows gets 481 (the phone glue's policy), and neither
//! touches the call. A session asked about a request of another dialog answers 481 too.

mod util;

use std::time::Duration;

use tincan_sip::dialog::{RequestOutcome, SessionEvent, SessionState};
use tincan_sip::endpoint::Event;
use tincan_sip::message::{HeaderName, Method};
use util::NetConfig;
use util::ua::{alice_and_bob, connected, header, run, secs, sent};

fn responses(events: &[(Duration, Event)]) -> Vec<(f64, u16, String)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::Response { response, .. } => Some((
                t.as_secs_f64(),
                response.status().unwrap(),
                response.cseq().unwrap().unwrap().to_string(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn old_cseq_gets_500_and_unknown_dialog_481() {
    let (mut sim, mut phones) = alice_and_bob(8, NetConfig::perfect());
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    // A copy of Alice's dialog as it is now (last CSeq 1): it will build stale requests.
    let mut stale = phones[0].session(a).dialog().unwrap().clone();
    for digit in ['1', '2'] {
        phones[0]
            .act(&mut sim, a, |s| {
                s.send_dtmf_info(digit, Duration::from_millis(100))
            })
            .unwrap();
    }
    run(&mut sim, &mut phones, secs(2.0));
    let dtmf: Vec<char> = phones[1]
        .events_of(b)
        .into_iter()
        .filter_map(|(_, e)| match e {
            SessionEvent::Dtmf { digit, .. } => Some(digit),
            _ => None,
        })
        .collect();
    assert_eq!(dtmf, ['1', '2'], "INFOs with CSeq 2 and 3");

    // CSeq 2 after 3: 500 (§12.2.2), and the call goes on.
    let old = stale.request(Method::Options);
    assert_eq!(old.cseq().unwrap().unwrap().seq, 2);
    let target = sim.target(1);
    sim.nodes[0]
        .ep
        .send_request(sim.now, old, target.clone())
        .unwrap();
    // A BYE with a To tag Bob never gave: 481 from the glue, Bob's call untouched.
    let mut unknown = stale.request(Method::Bye);
    unknown.set_header(HeaderName::To, "<sip:bob@127.0.0.1:5070>;tag=nosuch");
    sim.nodes[0]
        .ep
        .send_request(sim.now, unknown, target)
        .unwrap();
    run(&mut sim, &mut phones, secs(3.0));

    assert_eq!(
        responses(&phones[0].unclaimed),
        [
            (2.02, 500, "2 OPTIONS".to_owned()),
            (2.02, 481, "3 BYE".to_owned())
        ]
    );
    assert_eq!(phones[1].glue_responses, [(secs(2.01), 481, Method::Bye)]);
    let r500 = &sent(&sim, 1, "SIP/2.0 500")[0].1;
    assert_eq!(header(r500, "CSeq"), Some("2 OPTIONS"));
    assert_eq!(phones[0].session(a).state(), SessionState::Confirmed);
    assert_eq!(phones[1].session(b).state(), SessionState::Confirmed);
    assert!(phones[1].ends(b).is_empty());

    // The session itself refuses a request of another dialog rather than taking it.
    let mut foreign = stale.request(Method::Bye);
    foreign.set_header(HeaderName::To, "<sip:bob@127.0.0.1:5070>;tag=nosuch");
    let outcome = phones[1].calls[b].session.on_request(sim.now, &foreign);
    assert!(
        matches!(&outcome, RequestOutcome::Respond(r) if r.status() == Some(481)),
        "{outcome:?}"
    );
    assert_eq!(phones[1].session(b).state(), SessionState::Confirmed);
    for p in &phones {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
    }
}

#[test]
fn the_callee_session_takes_the_invites_call_id() {
    let (mut sim, mut phones) = alice_and_bob(9, NetConfig::perfect());
    let (a, b) = connected(&mut sim, &mut phones, secs(1.0));
    let call_id = phones[0].session(a).call_id().to_owned();
    assert_eq!(phones[1].session(b).call_id(), call_id);
    // Requests of the call match it before any dialog check: a CANCEL-like request with no
    // To tag and the same Call-ID belongs to the UAS session.
    let mut probe = phones[0].session(a).invite().clone();
    probe.set_header(HeaderName::CSeq, "1 CANCEL");
    assert!(phones[1].session(b).matches_request(&probe));
}
