//! Smoke tests of the kamailio launcher: sipp REGISTERs with digest auth over UDP, TCP and
//! [::1], a wrong password is refused, users can be added, two instances run side by side,
//! and sipsak sees the same.

use std::time::Duration;

use tincan_interop_tests::{
    Kamailio, Sipp, Transport, free_udp_port, ports, require_peers, sipsak,
};

fn register(kamailio: &Kamailio, user: &str, password: &str) -> Sipp {
    Sipp::lab_scenario("register_auth_uac.xml")
        .remote(kamailio.addr())
        .inf_rows([Sipp::auth_row(user, kamailio.domain(), password, None)])
        .calls(1)
        .timeout(Duration::from_secs(10))
        .trace_msg()
}

#[test]
fn sipp_registers_over_udp_tcp_and_ipv6() {
    if !require_peers(&["kamailio", "kamcmd", "sipp"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");

    let udp = register(&kamailio, "alice", "alicepw")
        .run()
        .expect("sipp runs");
    assert_eq!(udp.exit_code, Some(0), "{}", udp.summary());
    assert!(
        udp.messages().contains("SIP/2.0 401 Unauthorized"),
        "{}",
        udp.messages()
    );

    let tcp = register(&kamailio, "bob", "bobpw")
        .transport(Transport::Tcp)
        .run()
        .expect("sipp runs");
    assert_eq!(tcp.exit_code, Some(0), "{}", tcp.summary());

    let v6_addr = kamailio.addr_v6().expect("started with IPv6");
    let v6 = register(&kamailio, "carol", "carolpw")
        .remote(v6_addr)
        .local_ip(ports::V6)
        .run()
        .expect("sipp runs");
    assert_eq!(v6.exit_code, Some(0), "{}", v6.summary());

    let alice = kamailio.contacts("alice").expect("kamcmd works");
    assert_eq!(alice.len(), 1, "{alice:?}");
    let bob = kamailio.contacts("bob").expect("kamcmd works");
    assert!(bob[0].contains("transport=TCP"), "{bob:?}");
    let carol = kamailio.contacts("carol").expect("kamcmd works");
    assert!(carol[0].contains("[::1]"), "{carol:?}");

    kamailio.unregister("alice").expect("kamcmd works");
    assert!(kamailio.contacts("alice").expect("kamcmd works").is_empty());
}

#[test]
fn wrong_password_is_refused() {
    if !require_peers(&["kamailio", "sipp", "sipsak"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    let bad = register(&kamailio, "alice", "wrongpw")
        .run()
        .expect("sipp runs");
    assert_ne!(bad.exit_code, Some(0), "{}", bad.summary());
    assert_eq!(bad.successful, 0, "{}", bad.summary());
    // kamailio re-challenges a wrong password (401 again, never 200)
    assert!(
        !bad.messages().contains("SIP/2.0 200 OK"),
        "{}",
        bad.messages()
    );

    let good =
        sipsak::register(kamailio.addr(), "uat", "uatpw", free_udp_port()).expect("sipsak runs");
    assert!(good.success(), "{}", good.output);
    let wrong =
        sipsak::register(kamailio.addr(), "uat", "nope", free_udp_port()).expect("sipsak runs");
    assert!(!wrong.success(), "{}", wrong.output);
}

#[test]
fn two_instances_with_an_added_user() {
    if !require_peers(&["kamailio", "sipp", "kamcmd"]) {
        return;
    }
    let first = Kamailio::builder()
        .user("dave", "davepw")
        .start()
        .expect("kamailio 1 starts");
    let mut second = Kamailio::builder()
        .user("dave", "otherpw")
        .secondary(false)
        .start()
        .expect("kamailio 2 starts");
    assert_ne!(first.port(), second.port());
    assert_eq!(first.password("dave"), Some("davepw"));

    let one = register(&first, "dave", "davepw").run().expect("sipp runs");
    assert_eq!(one.exit_code, Some(0), "{}", one.summary());
    let two = register(&second, "dave", "otherpw")
        .run()
        .expect("sipp runs");
    assert_eq!(two.exit_code, Some(0), "{}", two.summary());
    let secondary = register(&first, "alice", "alicepw")
        .remote(first.secondary_addr().expect("secondary listener"))
        .run()
        .expect("sipp runs");
    assert_eq!(secondary.exit_code, Some(0), "{}", secondary.summary());

    second.add_user("erin", "erinpw").expect("kamcmd works");
    assert_eq!(second.password("erin"), Some("erinpw"));
    let erin = register(&second, "erin", "erinpw")
        .run()
        .expect("sipp runs");
    assert_eq!(erin.exit_code, Some(0), "{}", erin.summary());
    let contacts = second
        .wait_registered("erin", Duration::from_secs(2))
        .expect("erin is registered");
    assert_eq!(contacts.len(), 1, "{contacts:?}");

    assert_eq!(first.contacts("dave").expect("kamcmd works").len(), 1);
    assert_eq!(second.contacts("dave").expect("kamcmd works").len(), 1);
    assert!(second.contacts("alice").expect("kamcmd works").is_empty());
}

#[test]
fn kamailio_routes_a_call_between_registered_sipps() {
    if !require_peers(&["kamailio", "sipp"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    // bob registers with the port where the sipp UAS will then listen
    let bob_port = ports::free_port();
    let reg = register(&kamailio, "bob", "bobpw")
        .local_port(bob_port)
        .run()
        .expect("sipp runs");
    assert_eq!(reg.exit_code, Some(0), "{}", reg.summary());
    let uas = Sipp::lab_scenario("uas_pcmu_opus_bye.xml")
        .local_port(bob_port)
        .calls(1)
        .timeout(Duration::from_secs(20))
        .spawn()
        .expect("sipp uas starts");
    let call = Sipp::lab_scenario("uac_call.xml")
        .remote(kamailio.addr())
        .inf_rows([Sipp::auth_row(
            "alice",
            "example.test",
            "alicepw",
            Some("bob"),
        )])
        .calls(1)
        .timeout(Duration::from_secs(20))
        .trace_msg()
        .run()
        .expect("sipp uac runs");
    assert_eq!(call.exit_code, Some(0), "{}", call.summary());
    let messages = call.messages();
    assert!(
        messages.contains("SIP/2.0 407 Proxy Authentication Required"),
        "{messages}"
    );
    assert!(messages.contains("a=rtpmap:111 opus/48000/2"), "{messages}");
    // the UAS hangs up after 2 s; its BYE comes through kamailio's Record-Route
    assert!(messages.contains("BYE sip:alice@127.0.0.1:"), "{messages}");
    let uas = uas.wait(Duration::from_secs(10));
    assert_eq!(uas.exit_code, Some(0), "{}", uas.summary());
}
