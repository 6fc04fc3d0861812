//! Signalling behind a NAT, in virtual time: a phone whose REGISTER reaches the registrar
//! from a public address (`received`/`rport` in the Via of the 200, RFC 3581) re-registers
//! with a Contact of that address, the old binding removed in the same REGISTER (pjsua's
//! contact rewrite); calls from the WAN then reach it, and its calls' Contacts name the
//! public address so in-dialog requests reach it too.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::net::SocketAddr;
use std::time::Duration;

use phone_sim::{NetConfig, P1, Sim, account};
use tincan::phone::{AccountEvent, CallId, CallParams, EndReason, PhoneEvent};
use tincan_sip::message::Message;

/// On the WAN, next to the proxy.
const ALICE: &str = "127.0.0.1:5061";
/// Bob's own (private) address, behind the NAT.
const BOB_LAN: &str = "192.168.1.20:5062";
/// The NAT's public address of Bob's mapping.
const BOB_PUBLIC: &str = "203.0.113.5:40000";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a socket address")
}

fn call(sim: &mut Sim, node: usize, uri: &str) -> CallId {
    sim.act(node, |c, now| c.call(now, uri, CallParams::default()))
        .expect("a callable uri")
}

fn wait_incoming(sim: &mut Sim, node: usize, limit: f64) -> CallId {
    let limit = sim.elapsed() + secs(limit);
    assert!(
        sim.run_until_with(limit, |s| !s.incoming(node).is_empty()),
        "no incoming call at node {node}; trace:\n{}",
        sim.trace.join("\n")
    );
    sim.incoming(node)[0]
}

fn rewrites(sim: &Sim, node: usize) -> Vec<(SocketAddr, SocketAddr)> {
    sim.phone(node)
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            PhoneEvent::Account {
                event: AccountEvent::ContactRewritten { from, to, .. },
                ..
            } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

/// The Contact values of every message a node sent whose first line starts with `prefix`.
fn contacts_sent(sim: &Sim, node: usize, prefix: &str) -> Vec<Vec<String>> {
    sim.nodes[node]
        .sent_messages
        .iter()
        .filter(|(_, _, b)| b.starts_with(prefix.as_bytes()))
        .filter_map(|(_, _, b)| Message::parse(b.clone()).ok())
        .map(|m| {
            m.contacts()
                .filter_map(Result::ok)
                .map(|c| c.to_string())
                .collect()
        })
        .collect()
}

/// Bob behind a NAT and Alice on the WAN, both registered at the proxy.
fn nat_setup(seed: u64) -> (Sim, usize, usize) {
    let mut sim = Sim::new(seed, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB_LAN, "bob");
    sim.behind_nat(bob, BOB_PUBLIC);
    sim.add_proxy(P1);
    sim.add_account(alice, account("alice", &[P1]));
    sim.add_account(bob, account("bob", &[P1]));
    sim.run_for(secs(2.0));
    (sim, alice, bob)
}

#[test]
fn behind_a_nat_the_contact_is_rewritten_to_the_address_the_registrar_saw() {
    let (mut sim, alice, bob) = nat_setup(1);
    assert_eq!(rewrites(&sim, bob), vec![(addr(BOB_LAN), addr(BOB_PUBLIC))]);
    assert!(
        rewrites(&sim, alice).is_empty(),
        "alice is not behind a NAT"
    );
    let bob_account = sim.core(bob).account_by_name("bob").expect("bob's account");
    assert_eq!(
        sim.core(bob).public_address(bob_account),
        Some(addr(BOB_PUBLIC))
    );
    assert!(sim.core(bob).is_registered(bob_account));
    // The registrar's location service now points at the NAT's mapping.
    assert_eq!(sim.locations.get("bob"), Some(&addr(BOB_PUBLIC)));
    // The rewriting REGISTER binds the public contact and removes the private one.
    let last = contacts_sent(&sim, bob, "REGISTER")
        .pop()
        .expect("a REGISTER");
    assert_eq!(
        last,
        [
            "<sip:bob@203.0.113.5:40000>;expires=600",
            "<sip:bob@192.168.1.20:5062>;expires=0"
        ]
    );
    // A refresh later binds the public contact alone, and rewrites nothing again.
    sim.run_for(secs(600.0));
    assert_eq!(rewrites(&sim, bob).len(), 1, "one rewrite only");
    let last = contacts_sent(&sim, bob, "REGISTER")
        .pop()
        .expect("a REGISTER");
    assert_eq!(last, ["<sip:bob@203.0.113.5:40000>;expires=600"]);
    assert_eq!(sim.locations.get("bob"), Some(&addr(BOB_PUBLIC)));
}

#[test]
fn a_call_from_the_wan_reaches_the_phone_behind_the_nat_and_ends_there() {
    let (mut sim, alice, bob) = nat_setup(2);
    let a = call(&mut sim, alice, "bob");
    let b = wait_incoming(&mut sim, bob, 5.0);
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    sim.run_for(secs(1.0));
    assert!(sim.answered(alice, a), "alice answered");
    // Bob's 200 names the public address, so Alice's BYE (through the record-routing
    // proxy) reaches him.
    let ok_contacts = contacts_sent(&sim, bob, "SIP/2.0 200");
    assert!(
        ok_contacts
            .iter()
            .any(|c| c == &["<sip:bob@203.0.113.5:40000>".to_owned()]),
        "bob's 200 names the public address: {ok_contacts:?}"
    );
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.run_for(secs(2.0));
    assert_eq!(
        sim.ended(bob, b).map(|e| e.1),
        Some(EndReason::RemoteHangup)
    );
}

#[test]
fn a_call_from_behind_the_nat_names_the_public_address_and_hears_the_bye() {
    let (mut sim, alice, bob) = nat_setup(3);
    let b = call(&mut sim, bob, "alice");
    let a = wait_incoming(&mut sim, alice, 5.0);
    sim.act(alice, |c, now| c.accept(now, a)).expect("accepted");
    sim.run_for(secs(1.0));
    assert!(sim.answered(bob, b), "bob answered");
    let invites = contacts_sent(&sim, bob, "INVITE");
    assert!(!invites.is_empty());
    for c in &invites {
        assert_eq!(c, &["<sip:bob@203.0.113.5:40000>".to_owned()]);
    }
    sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    sim.run_for(secs(2.0));
    assert_eq!(
        sim.ended(bob, b).map(|e| e.1),
        Some(EndReason::RemoteHangup)
    );
    // Shutting down removes the public binding.
    sim.act(bob, |c, now| c.shutdown(now));
    sim.run_for(secs(40.0));
    assert!(!sim.locations.contains_key("bob"), "{:?}", sim.locations);
}

#[test]
fn without_a_nat_nothing_is_rewritten() {
    let mut sim = Sim::new(4, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let proxy = sim.add_proxy(P1);
    sim.add_account(alice, account("alice", &[P1]));
    sim.run_for(secs(2.0));
    assert!(rewrites(&sim, alice).is_empty());
    let id = sim.core(alice).account_by_name("alice").expect("account");
    assert_eq!(sim.core(alice).public_address(id), None);
    // The challenge and the answer to it: no third REGISTER.
    let registers = sim
        .proxy(proxy)
        .received
        .iter()
        .filter(|(_, m)| m == "REGISTER")
        .count();
    assert_eq!(registers, 2);
}

#[test]
fn the_stun_learnt_address_of_the_rtp_port_goes_in_the_sdp() {
    let (mut sim, alice, bob) = nat_setup(5);
    sim.phone_mut(bob).media_public_ip = Some(addr(BOB_PUBLIC).ip());
    let b = call(&mut sim, bob, "alice");
    let a = wait_incoming(&mut sim, alice, 5.0);
    sim.act(alice, |c, now| c.accept(now, a)).expect("accepted");
    sim.run_for(secs(1.0));
    assert!(sim.answered(bob, b), "bob answered");
    let offers: Vec<String> = sim.nodes[bob]
        .sent_messages
        .iter()
        .filter(|(_, _, m)| m.starts_with(b"INVITE"))
        .map(|(_, _, m)| String::from_utf8_lossy(m).into_owned())
        .collect();
    assert!(!offers.is_empty());
    for o in &offers {
        assert!(o.contains("c=IN IP4 203.0.113.5\r\n"), "{o}");
        assert!(
            !o.contains("192.168.1.20\r\n"),
            "no private address in the SDP: {o}"
        );
        assert!(o.contains("m=audio 4"), "{o}");
    }
}

#[test]
fn over_an_outbound_flow_the_contact_is_not_rewritten() {
    let mut sim = Sim::new(6, NetConfig::perfect());
    let bob = sim.add_phone(BOB_LAN, "bob");
    sim.behind_nat(bob, BOB_PUBLIC);
    let proxy = sim.add_proxy(P1);
    sim.proxy_mut(proxy).outbound = true;
    let mut a = account("bob", &[P1]);
    a.instance_id = Some("urn:uuid:00000000-0000-4000-8000-000000000001".into());
    sim.add_account(bob, a);
    sim.run_for(secs(2.0));
    let id = sim.core(bob).account_by_name("bob").expect("account");
    assert!(sim.core(bob).is_registered(id));
    // The registrar reaches us over the flow (RFC 5626 §5.3): nothing to rewrite.
    assert!(rewrites(&sim, bob).is_empty());
    assert_eq!(sim.core(bob).public_address(id), None);
}

#[test]
fn an_outbound_account_at_a_registrar_without_outbound_is_rewritten() {
    let mut sim = Sim::new(7, NetConfig::perfect());
    let bob = sim.add_phone(BOB_LAN, "bob");
    sim.behind_nat(bob, BOB_PUBLIC);
    sim.add_proxy(P1);
    let mut a = account("bob", &[P1]);
    a.instance_id = Some("urn:uuid:00000000-0000-4000-8000-000000000001".into());
    sim.add_account(bob, a);
    sim.run_for(secs(2.0));
    assert_eq!(rewrites(&sim, bob), vec![(addr(BOB_LAN), addr(BOB_PUBLIC))]);
    assert_eq!(sim.locations.get("bob"), Some(&addr(BOB_PUBLIC)));
}
