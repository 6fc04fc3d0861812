//! Garbage never panics the ICE agent or the SDP reader, and unauthenticated STUN is
//! dropped: no answer, no peer-reflexive candidate, no pair (RFC 8445 §7.3, RFC 8489 §9.1.3).

use std::net::SocketAddr;
use std::time::Instant;

use rand_core::{Rng, SeedableRng};
use rand_xorshift::XorShiftRng;
use tincan_media::ice::stun::{self, Builder, Class};
use tincan_media::ice::{Agent, AgentConfig, Credentials, RemoteIce, Role};
use tincan_media::sdp::SessionDescription;
use tincan_media::sdp::ice::read_ice;

const LOCAL: &str = "198.51.100.10:5000";
const PEER: &str = "198.51.100.20:6000";

fn agent(now: Instant) -> (Agent, Credentials) {
    let ours = Credentials::new("ours", "oursoursoursoursoursours").unwrap();
    let theirs = Credentials::new("them", "themthemthemthemthemthem").unwrap();
    let mut agent = Agent::new(AgentConfig {
        role: Role::Controlled,
        credentials: ours.clone(),
        tie_breaker: 5,
        seed: 9,
    });
    agent.add_host(LOCAL.parse().unwrap());
    agent.set_remote(
        RemoteIce {
            credentials: theirs,
            lite: false,
            candidates: vec![tincan_media::ice::Candidate::host(PEER.parse().unwrap(), 1)],
        },
        now,
    );
    while agent.poll_transmit().is_some() {}
    (agent, ours)
}

fn check(username: &str, key: Option<&[u8]>, fingerprint: bool) -> Vec<u8> {
    let mut data = Builder::new(Class::Request, stun::BINDING, [3; 12])
        .username(username)
        .priority(1_862_270_975)
        .ice_controlling(99)
        .finish(key);
    if !fingerprint {
        data.truncate(data.len() - 8);
        let length = (data.len() - stun::HEADER_LEN) as u16;
        data[2..4].copy_from_slice(&length.to_be_bytes());
    }
    data
}

#[test]
#[allow(clippy::disallowed_methods)] // a test: the agent itself never reads the clock
fn unauthenticated_checks_get_no_answer() {
    let now = Instant::now();
    let (mut agent, ours) = agent(now);
    let (local, stranger): (SocketAddr, SocketAddr) =
        (LOCAL.parse().unwrap(), "203.0.113.66:1234".parse().unwrap());
    let bad = [
        check("ours:them", Some(b"wrong password"), true),
        check("ours:them", None, true),
        check("ours:them", Some(ours.pwd.as_bytes()), false),
        check("nope:them", Some(ours.pwd.as_bytes()), true),
        check("ours", Some(ours.pwd.as_bytes()), true),
    ];
    for data in &bad {
        assert!(agent.handle_packet(now, local, stranger, data));
        assert!(
            agent.poll_transmit().is_none(),
            "answered an unauthenticated check"
        );
    }
    // The same check, well authenticated, is answered from the socket it came to.
    let good = check("ours:them", Some(ours.pwd.as_bytes()), true);
    assert!(agent.handle_packet(now, local, stranger, &good));
    let answer = agent.poll_transmit().expect("an answer");
    assert_eq!((answer.source, answer.destination), (local, stranger));
    let parsed = stun::Message::parse(&answer.payload).unwrap();
    assert_eq!(parsed.class, Some(Class::Success));
    assert_eq!(parsed.mapped_address, Some(stranger));
    assert!(parsed.verify_integrity(&answer.payload, ours.pwd.as_bytes()));
}

#[test]
#[allow(clippy::disallowed_methods)]
fn random_datagrams_never_panic() {
    let mut now = Instant::now();
    let (mut agent, ours) = agent(now);
    let local: SocketAddr = LOCAL.parse().unwrap();
    let peer: SocketAddr = PEER.parse().unwrap();
    let mut rng = XorShiftRng::seed_from_u64(42);
    // RTP is not STUN: handed back to the caller.
    assert!(!agent.handle_packet(now, local, peer, &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]));
    let good = check("ours:them", Some(ours.pwd.as_bytes()), true);
    for round in 0..20_000u32 {
        let data: Vec<u8> = if round % 2 == 0 {
            // A valid message with a few bytes flipped.
            let mut data = good.clone();
            for _ in 0..1 + rng.next_u32() % 4 {
                let i = (rng.next_u32() as usize) % data.len();
                data[i] ^= 1 << (rng.next_u32() % 8);
            }
            data
        } else {
            let len = (rng.next_u32() % 120) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            if len >= stun::HEADER_LEN {
                data[0] &= 0x01;
                data[2..4].copy_from_slice(&((len - stun::HEADER_LEN) as u16 & !3).to_be_bytes());
                data[4..8].copy_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
            }
            data
        };
        agent.handle_packet(now, local, peer, &data);
        if round % 100 == 0 {
            now += std::time::Duration::from_millis(50);
            agent.handle_timeout(now);
        }
        while agent.poll_transmit().is_some() {}
        while agent.poll_event().is_some() {}
    }
}

#[test]
fn garbage_sdp_candidates_never_panic() {
    let mut rng = XorShiftRng::seed_from_u64(7);
    let words = [
        "1",
        "0",
        "UDP",
        "TCP",
        "typ",
        "host",
        "srflx",
        "raddr",
        "rport",
        "10.0.0.1",
        "::1",
        "99999999999",
        "65536",
        "-1",
        "",
        "\u{fffd}",
        "generation",
        "x",
    ];
    for _ in 0..5_000 {
        let n = rng.next_u32() % 12;
        let candidate: Vec<&str> = (0..n)
            .map(|_| words[(rng.next_u32() as usize) % words.len()])
            .collect();
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
             a=candidate:{}\r\n",
            candidate.join(" ")
        );
        if let Ok(sdp) = SessionDescription::parse(&text) {
            let _ = read_ice(&sdp, &sdp.media[0]);
        }
    }
}
