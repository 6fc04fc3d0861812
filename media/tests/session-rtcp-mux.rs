//! RTCP with and without rtcp-mux (RFC 5761): with it, RTCP shares the RTP port and is told
//! apart by packet type; without it, RTCP goes to the RTP port + 1 from our RTCP socket.
//! Either way reports flow both ways and give a round-trip time (RFC 3550 §6.4.1).
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::rtp::{PortKind, is_rtcp};
use tincan_media::session::{MediaEvent, MediaSession, SessionConfig};
use util::{Impairment, Network, Pair, addr};

/// How long a pair runs before the round trip is known from either side: a peer's first report
/// comes at most 2.5 s x 1.5 / (e - 3/2) = 3.08 s in, the next 6.16 s later (RFC 3550 §6.2,
/// A.7), so the first report quoting the other's SR is out by 9.24 s whatever the seeds draw.
const RUN_MS: u64 = 10_000;

fn pair(mux: bool) -> Pair {
    let t0 = Instant::now();
    let (a_addr, b_addr) = (addr("127.0.0.1:4000"), addr("127.0.0.1:5000"));
    let mut ca = SessionConfig::new(0xA, CodecKind::Pcmu, 0, b_addr);
    ca.rtcp_mux = mux;
    let mut cb = SessionConfig::new(0xB, CodecKind::Pcmu, 0, a_addr);
    cb.rtcp_mux = mux;
    cb.seed = 99;
    let a = MediaSession::new(ca, t0).unwrap();
    let b = MediaSession::new(cb, t0).unwrap();
    let net = Network::new(1, Impairment::clean(Duration::from_millis(25)));
    Pair::new(t0, a, b, a_addr, b_addr, net)
}

#[test]
fn muxed_rtcp_uses_the_rtp_port() {
    let mut p = pair(true);
    p.run(RUN_MS);
    assert_eq!(p.a.remote_rtcp(), p.b_addr);
    let reports = p
        .events_a
        .iter()
        .filter(|e| matches!(e, MediaEvent::Stats(_)))
        .count();
    assert!(reports > 0);
    let rtt = p.a.stats().rtt.expect("rtt from b's report");
    assert!(
        rtt >= Duration::from_millis(49) && rtt <= Duration::from_millis(51),
        "{rtt:?}"
    );
}

#[test]
fn separate_rtcp_goes_to_port_plus_one() {
    let mut p = pair(false);
    p.run(RUN_MS);
    let mut b_rtcp = p.b_addr;
    b_rtcp.set_port(5001);
    assert_eq!(p.a.remote_rtcp(), b_rtcp);
    let rtt = p.b.stats().rtt.expect("rtt from a's report");
    assert!(
        rtt >= Duration::from_millis(49) && rtt <= Duration::from_millis(51),
        "{rtt:?}"
    );
}

#[test]
fn transmits_name_the_right_socket() {
    for mux in [true, false] {
        let t0 = Instant::now();
        let mut c = SessionConfig::new(0xA, CodecKind::Pcmu, 0, addr("127.0.0.1:5000"));
        c.rtcp_mux = mux;
        let mut a = MediaSession::new(c, t0).unwrap();
        let mut now = t0;
        let mut rtcp = None;
        for _ in 0..400 {
            a.send_frame(now, &[0; 960]).unwrap();
            if a.poll_timeout().is_some_and(|t| t <= now) {
                a.handle_timeout(now);
            }
            while let Some(t) = a.poll_transmit() {
                if is_rtcp(&t.bytes) {
                    rtcp = Some(t);
                } else {
                    assert_eq!((t.kind, t.to.port()), (PortKind::Rtp, 5000));
                }
            }
            now += Duration::from_millis(20);
        }
        let rtcp = rtcp.expect("an rtcp report within 8 s");
        if mux {
            assert_eq!((rtcp.kind, rtcp.to.port()), (PortKind::Rtp, 5000));
        } else {
            assert_eq!((rtcp.kind, rtcp.to.port()), (PortKind::Rtcp, 5001));
        }
    }
}
