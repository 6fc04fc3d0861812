//! DTMF: RFC 4733 telephone-events sent by one session are reported by the other, with the
//! key and its duration, and do not disturb the audio that follows.
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::session::{MediaEvent, MediaSession, SessionConfig, SessionError};
use util::{Impairment, Network, Pair, addr};

fn config(ssrc: u32, codec: CodecKind, pt: u8, to: &str) -> SessionConfig {
    let mut c = SessionConfig::new(ssrc, codec, pt, addr(to));
    c.telephone_event_payload_type = Some(101);
    c
}

#[test]
fn keys_arrive_with_their_duration() {
    for (codec, pt) in [(CodecKind::Pcmu, 0), (CodecKind::Opus, 111)] {
        let t0 = Instant::now();
        let a = MediaSession::new(config(1, codec, pt, "127.0.0.1:5000"), t0).unwrap();
        let b = MediaSession::new(config(2, codec, pt, "127.0.0.1:4000"), t0).unwrap();
        let net = Network::new(3, Impairment::clean(Duration::from_millis(15)));
        let mut pair = Pair::new(
            t0,
            a,
            b,
            addr("127.0.0.1:4000"),
            addr("127.0.0.1:5000"),
            net,
        );
        pair.run(200);
        let now = pair.now;
        pair.a
            .send_dtmf(now, '5', Duration::from_millis(100))
            .unwrap();
        pair.a
            .send_dtmf(now, '#', Duration::from_millis(160))
            .unwrap();
        pair.run(1000);
        let digits: Vec<_> = pair
            .events_b
            .iter()
            .filter_map(|e| match e {
                MediaEvent::DtmfReceived { digit, duration } => Some((*digit, *duration)),
                _ => None,
            })
            .collect();
        assert_eq!(
            digits,
            vec![
                ('5', Duration::from_millis(100)),
                ('#', Duration::from_millis(160))
            ],
            "{codec}"
        );
    }
}

#[test]
fn dtmf_needs_a_negotiated_payload_type() {
    let t0 = Instant::now();
    let mut a = MediaSession::new(
        SessionConfig::new(1, CodecKind::Pcmu, 0, addr("127.0.0.1:5000")),
        t0,
    )
    .unwrap();
    assert!(matches!(
        a.send_dtmf(t0, '1', Duration::from_millis(100)),
        Err(SessionError::Dtmf(_))
    ));
    let mut b = MediaSession::new(config(1, CodecKind::Pcmu, 0, "127.0.0.1:5000"), t0).unwrap();
    assert!(matches!(
        b.send_dtmf(t0, 'x', Duration::from_millis(100)),
        Err(SessionError::Dtmf(_))
    ));
}
