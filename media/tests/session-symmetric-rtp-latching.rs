//! Symmetric RTP (RFC 4961) with latching probation (issue 19, finding 1: RTP hijack).
//!
//! A is told by SDP to send to 127.0.0.1:5000. RTP from any other address is dropped and only
//! counts towards that address's probation: 10 packets of one SSRC in a row, no faster than
//! 10 ms apart on average, with no packet from the current source in between; once the
//! current source has been heard, it must also have been silent for a second. Then A sends
//! there and reports `RemoteLatched`. So one stranger's packet never moves A's audio, nor does
//! a flood while the peer talks; a peer behind a NAT (its packets from another address than
//! its `c=`) and a peer that moved are still followed.
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::rtcp::{self, Report};
use tincan_media::rtp::{PortKind, is_rtcp};
use tincan_media::session::{MediaEvent, MediaSession, SessionConfig};
use tincan_media::srtp::{CryptoAttribute, CryptoSuite};
use util::{Tone, addr, rms};

const SDP_B: &str = "127.0.0.1:5000";
const NAT_B: &str = "127.0.0.9:7000";
const STRANGER: &str = "127.0.0.66:6666";

/// Session A under test, stepped in 1 ms of virtual time: it captures and plays a frame every
/// 20 ms; where its RTP went is recorded.
struct Bench {
    t0: Instant,
    now: Instant,
    a: MediaSession,
    /// (ms since start, destination) of every RTP packet A sent.
    rtp_to: Vec<(u64, SocketAddr)>,
    events: Vec<MediaEvent>,
    played: Vec<i16>,
}

impl Bench {
    fn new(config: SessionConfig) -> Self {
        let t0 = Instant::now();
        Self {
            t0,
            now: t0,
            a: MediaSession::new(config, t0).unwrap(),
            rtp_to: Vec::new(),
            events: Vec::new(),
            played: Vec::new(),
        }
    }

    fn plain() -> Self {
        Self::new(SessionConfig::new(0xA, CodecKind::Pcmu, 0, addr(SDP_B)))
    }

    fn ms(&self) -> u64 {
        self.now.duration_since(self.t0).as_millis() as u64
    }

    fn deliver(&mut self, from: &str, port: PortKind, bytes: &[u8]) {
        self.a.handle_packet(self.now, addr(from), port, bytes);
    }

    /// One millisecond.
    fn step(&mut self) {
        let now = self.now;
        if self.ms().is_multiple_of(20) {
            self.a.send_frame(now, &[0; 960]).unwrap();
            self.played.extend(self.a.playout(now));
        }
        if self.a.poll_timeout().is_some_and(|t| t <= now) {
            self.a.handle_timeout(now);
        }
        while let Some(t) = self.a.poll_transmit() {
            if t.kind == PortKind::Rtp && !is_rtcp(&t.bytes) {
                self.rtp_to.push((self.ms(), t.to));
            }
        }
        self.events
            .extend(std::iter::from_fn(|| self.a.poll_event()));
        self.now += Duration::from_millis(1);
    }

    fn sent_to(&self, to: &str) -> usize {
        self.rtp_to.iter().filter(|(_, a)| *a == addr(to)).count()
    }

    fn latched(&self) -> Vec<SocketAddr> {
        self.events
            .iter()
            .filter_map(|e| match e {
                MediaEvent::RemoteLatched {
                    kind: PortKind::Rtp,
                    address,
                    ..
                } => Some(*address),
                _ => None,
            })
            .collect()
    }
}

/// Somebody sending a PCMU stream (the peer, or a stranger who guessed the payload type).
struct Sender {
    session: MediaSession,
    tone: Tone,
}

impl Sender {
    fn new(ssrc: u32, now: Instant) -> Self {
        Self::with(
            SessionConfig::new(ssrc, CodecKind::Pcmu, 0, addr("127.0.0.1:4000")),
            now,
        )
    }

    fn with(mut config: SessionConfig, now: Instant) -> Self {
        config.seed = u64::from(config.local_ssrc) * 7919;
        Self {
            session: MediaSession::new(config, now).unwrap(),
            tone: Tone::new(440.0, 8000.0),
        }
    }

    /// Its next RTP packet.
    fn packet(&mut self, now: Instant) -> Vec<u8> {
        self.session.send_frame(now, &self.tone.frame()).unwrap();
        self.session.poll_transmit().unwrap().bytes
    }
}

/// Runs `ms` milliseconds: the peer sends every 20 ms from `peer_from` (if any), the
/// stranger every `stranger_every` ms (if any), `burst` packets at a time.
fn run(
    bench: &mut Bench,
    ms: u64,
    peer: Option<(&mut Sender, &str)>,
    stranger: Option<(&mut Sender, u64, usize)>,
) {
    let mut peer = peer;
    let mut stranger = stranger;
    for _ in 0..ms {
        let now = bench.now;
        let t = bench.ms();
        if let Some((s, from)) = peer.as_mut()
            && t % 20 == 10
        {
            let p = s.packet(now);
            bench.deliver(from, PortKind::Rtp, &p);
        }
        if let Some((s, every, burst)) = stranger.as_mut()
            && t.is_multiple_of(*every)
        {
            for _ in 0..*burst {
                let p = s.packet(now);
                bench.deliver(STRANGER, PortKind::Rtp, &p);
            }
        }
        bench.step();
    }
}

/// The finding: one packet from a third address, right after the answer and before the
/// peer's first, made A send the call's audio there.
#[test]
fn one_stranger_packet_does_not_move_the_media() {
    let mut bench = Bench::plain();
    let mut peer = Sender::new(0xB, bench.now);
    let mut stranger = Sender::new(0x666, bench.now);
    bench.step();
    let p = stranger.packet(bench.now);
    bench.deliver(STRANGER, PortKind::Rtp, &p);
    run(&mut bench, 2000, Some((&mut peer, SDP_B)), None);
    // Once more in the middle of the call.
    let p = stranger.packet(bench.now);
    bench.deliver(STRANGER, PortKind::Rtp, &p);
    run(&mut bench, 1000, Some((&mut peer, SDP_B)), None);
    assert_eq!(bench.sent_to(STRANGER), 0, "{:?}", bench.latched());
    assert_eq!(bench.sent_to(SDP_B), bench.rtp_to.len());
    assert!(bench.latched().is_empty());
    assert_eq!(bench.a.remote_ssrc(), Some(0xB));
    let stats = bench.a.stats();
    assert_eq!(stats.packets_lost, 0);
    assert!(rms(&bench.played[bench.played.len() - 48_000..]) > 5000.0);
}

/// A stranger floods at 200 packets/s with a steady SSRC from the answer on, while the peer
/// talks; then in bursts of 30 packets every 20 ms (1500/s, ten at a time fit between two of
/// the peer's packets). A's audio never goes to the stranger, and the peer's stream plays
/// undisturbed (no loss, no SSRC change).
#[test]
fn a_stranger_flood_while_the_peer_talks_does_not_move_the_media() {
    for (every, burst) in [(5, 1), (20, 30)] {
        let mut bench = Bench::plain();
        let mut peer = Sender::new(0xB, bench.now);
        let mut stranger = Sender::new(0x666, bench.now);
        run(
            &mut bench,
            3000,
            Some((&mut peer, SDP_B)),
            Some((&mut stranger, every, burst)),
        );
        assert_eq!(bench.sent_to(STRANGER), 0, "{every}/{burst}");
        assert_eq!(bench.sent_to(SDP_B), 150, "{every}/{burst}");
        assert!(bench.latched().is_empty(), "{every}/{burst}");
        assert_eq!(bench.a.remote_ssrc(), Some(0xB));
        let ssrc_changes = bench
            .events
            .iter()
            .filter(|e| matches!(e, MediaEvent::SsrcChanged { .. }))
            .count();
        assert_eq!(ssrc_changes, 1, "only the peer's stream appeared");
        let stats = bench.a.stats();
        assert_eq!(stats.packets_received, 150, "the peer's packets only");
        assert_eq!(stats.packets_lost, 0);
        assert!(rms(&bench.played[bench.played.len() - 48_000..]) > 5000.0);
    }
}

/// NAT: the peer's packets come from another address than its `c=`, which is never heard.
/// Its 10th packet in a row moves A's RTP there, and A says so.
#[test]
fn a_peer_behind_a_nat_is_latched_after_probation() {
    let mut bench = Bench::plain();
    let mut peer = Sender::new(0xB, bench.now);
    // The peer's packets arrive at 10, 30, ..., 190 ms: the 10th at 190 ms.
    run(&mut bench, 190, Some((&mut peer, NAT_B)), None);
    assert_eq!(bench.sent_to(NAT_B), 0, "9 packets are not enough");
    run(&mut bench, 1810, Some((&mut peer, NAT_B)), None);
    assert_eq!(bench.latched(), [addr(NAT_B)]);
    assert!(
        bench
            .rtp_to
            .iter()
            .all(|&(t, to)| (t < 190 && to == addr(SDP_B)) || (t >= 190 && to == addr(NAT_B))),
        "{:?}",
        bench.rtp_to
    );
    assert_eq!(bench.a.remote_rtp(), addr(NAT_B));
    assert_eq!(bench.a.remote_ssrc(), Some(0xB));
    assert!(rms(&bench.played[bench.played.len() - 48_000..]) > 5000.0);
}

/// NAT, and a stranger sprays 200 packets/s meanwhile: the two interrupt each other's
/// probation, so A's audio stays at the signalled address: the stranger gets none.
#[test]
fn a_stranger_racing_a_peer_behind_a_nat_gets_nothing() {
    for (every, burst) in [(5, 1), (20, 30)] {
        let mut bench = Bench::plain();
        let mut peer = Sender::new(0xB, bench.now);
        let mut stranger = Sender::new(0x666, bench.now);
        run(
            &mut bench,
            3000,
            Some((&mut peer, NAT_B)),
            Some((&mut stranger, every, burst)),
        );
        assert_eq!(bench.sent_to(STRANGER), 0, "{every}/{burst}");
        assert_eq!(bench.sent_to(SDP_B), 150, "{every}/{burst}");
    }
}

/// The peer moves (its NAT binding changed): its old address falls silent and its packets
/// come from a new one. A follows once the old one has been silent for a second, not before.
#[test]
fn a_peer_that_moved_is_followed_after_a_second_of_silence() {
    let mut bench = Bench::plain();
    let mut peer = Sender::new(0xB, bench.now);
    run(&mut bench, 1000, Some((&mut peer, SDP_B)), None);
    // Last packet from SDP_B at 990 ms; from 1010 ms on they come from NAT_B.
    run(&mut bench, 2000, Some((&mut peer, NAT_B)), None);
    assert_eq!(bench.latched(), [addr(NAT_B)]);
    let first = bench
        .rtp_to
        .iter()
        .find(|(_, to)| *to == addr(NAT_B))
        .unwrap()
        .0;
    // The first packet from NAT_B at or after 990 + 1000 ms: 1990 ms.
    assert_eq!(first, 2000, "a's first frame after it");
    assert_eq!(
        bench.sent_to(SDP_B) + bench.sent_to(NAT_B),
        bench.rtp_to.len()
    );
    let stats = bench.a.stats();
    let tail = &bench.played[bench.played.len() - 24_000..];
    assert!(rms(tail) > 5000.0, "{} {stats:?}", rms(tail));
}

/// A stranger alone (the peer's address silent, e.g. it does not send at all yet) that sends
/// 10 packets in a row in one instant does not pass probation: they must span 90 ms.
#[test]
fn a_burst_is_no_probation() {
    let mut bench = Bench::plain();
    let mut stranger = Sender::new(0x666, bench.now);
    for _ in 0..50 {
        let p = stranger.packet(bench.now);
        bench.deliver(STRANGER, PortKind::Rtp, &p);
    }
    run(&mut bench, 1000, None, None);
    assert_eq!(bench.sent_to(STRANGER), 0);
    assert_eq!(bench.a.stats().packets_received, 0);
}

fn key(fill: u8) -> CryptoAttribute {
    CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, |b| {
        for (i, x) in b.iter_mut().enumerate() {
            *x = fill.wrapping_mul(31).wrapping_add(i as u8);
        }
    })
}

/// SRTP: a stranger's packets fail authentication and never count towards probation, even
/// 200 a second for 3 s with the real peer nowhere to be heard; the real peer behind a NAT is
/// latched after its 10 packets.
#[test]
fn srtp_packets_failing_authentication_never_count() {
    let (ka, kb) = (key(1), key(2));
    let mut config = SessionConfig::new(0xA, CodecKind::Pcmu, 0, addr(SDP_B));
    config.srtp = Some((ka.clone(), kb.clone()));
    let mut bench = Bench::new(config);
    let mut forger = SessionConfig::new(0x666, CodecKind::Pcmu, 0, addr("127.0.0.1:4000"));
    forger.srtp = Some((key(9), key(8)));
    let mut stranger = Sender::with(forger, bench.now);
    run(&mut bench, 3000, None, Some((&mut stranger, 5, 1)));
    assert_eq!(bench.sent_to(STRANGER), 0);
    assert_eq!(bench.a.stats().srtp_rejected, 600);
    assert!(bench.latched().is_empty());

    let mut real = SessionConfig::new(0xB, CodecKind::Pcmu, 0, addr("127.0.0.1:4000"));
    real.srtp = Some((kb, ka));
    let mut peer = Sender::with(real, bench.now);
    run(
        &mut bench,
        1000,
        Some((&mut peer, NAT_B)),
        Some((&mut stranger, 5, 1)),
    );
    assert_eq!(bench.latched(), [addr(NAT_B)]);
    assert_eq!(bench.sent_to(STRANGER), 0);
}

/// Without symmetric RTP A keeps sending to the SDP address, whoever sends.
#[test]
fn latching_off_keeps_the_sdp_address() {
    let mut config = SessionConfig::new(0xA, CodecKind::Pcmu, 0, addr(SDP_B));
    config.symmetric_rtp = false;
    let mut bench = Bench::new(config);
    let mut peer = Sender::new(0xB, bench.now);
    run(&mut bench, 1000, Some((&mut peer, NAT_B)), None);
    assert_eq!(bench.a.remote_rtp(), addr(SDP_B));
    assert_eq!(bench.sent_to(SDP_B), bench.rtp_to.len());
    assert!(bench.latched().is_empty());
    assert_eq!(
        bench.a.stats().packets_received,
        41,
        "from the 10th packet on"
    );
}

/// RTCP (its own port): a report from another host than the peer's moves nothing; the peer's
/// RTCP from another port of its host (a NAT) is latched at once.
#[test]
fn rtcp_is_latched_only_to_the_peers_host() {
    let mut bench = Bench::plain();
    let mut peer = Sender::new(0xB, bench.now);
    run(&mut bench, 500, Some((&mut peer, SDP_B)), None);
    let sdp_rtcp = bench.a.remote_rtcp();
    assert_eq!(sdp_rtcp, addr("127.0.0.1:5001"));
    let report = Report {
        ssrc: 0x666,
        sender_info: None,
        blocks: vec![],
    };
    let bytes = rtcp::build_compound(&report, "mallory");
    bench.deliver("127.0.0.66:6667", PortKind::Rtcp, &bytes);
    run(&mut bench, 100, Some((&mut peer, SDP_B)), None);
    assert_eq!(bench.a.remote_rtcp(), sdp_rtcp, "a stranger's rtcp");
    let report = Report {
        ssrc: 0xB,
        ..report
    };
    let bytes = rtcp::build_compound(&report, "bob");
    bench.deliver("127.0.0.1:7001", PortKind::Rtcp, &bytes);
    assert_eq!(bench.a.remote_rtcp(), addr("127.0.0.1:7001"));
}
