//! Mute and the level meters, in virtual time: a muted session keeps sending RTP at its pace
//! but the peer plays silence, across hold and resume; unmuted, the tone is back. Both sides
//! report the captured and played levels five times a second.
#![allow(clippy::disallowed_methods)]

#[path = "e2e-util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tincan_media::codec::CodecKind;
use tincan_media::session::{
    Direction, LEVEL_FLOOR_DBFS, Level, MediaEvent, MediaSession, SessionConfig,
};
use util::{Impairment, Network, Pair, addr, rms};

fn pair(codec: CodecKind, pt: u8) -> Pair {
    let t0 = Instant::now();
    let (a_addr, b_addr) = (addr("127.0.0.1:4000"), addr("127.0.0.1:5000"));
    let mut ca = SessionConfig::new(0xA, codec, pt, b_addr);
    ca.levels = true;
    let mut cb = SessionConfig::new(0xB, codec, pt, a_addr);
    cb.levels = true;
    let a = MediaSession::new(ca, t0).unwrap();
    let b = MediaSession::new(cb, t0).unwrap();
    Pair::new(
        t0,
        a,
        b,
        a_addr,
        b_addr,
        Network::new(3, Impairment::clean(Duration::from_millis(5))),
    )
}

/// The levels reported since `from` (an index into the events).
fn levels(events: &[MediaEvent], from: usize) -> Vec<(Level, Level)> {
    events[from..]
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Levels { input, output } => Some((*input, *output)),
            _ => None,
        })
        .collect()
}

/// Mutes A, runs `ms`, and returns what B played after the first 200 ms (the jitter buffer
/// still holds audio captured before the mute) and how many packets B received meanwhile.
fn muted_for(p: &mut Pair, ms: u64) -> (Vec<i16>, u64) {
    let received = p.b.stats().packets_received;
    p.played_b.clear();
    p.run(ms);
    let settled = p.played_b.split_off(200 * 48);
    (settled, p.b.stats().packets_received - received)
}

fn mute_sends_silence_and_survives_hold(codec: CodecKind, pt: u8, quiet: f64) {
    let mut p = pair(codec, pt);
    p.run(1000);
    assert!(rms(&p.played_b[24_000..]) > 3000.0, "the tone plays");
    assert!(!p.a.is_muted());
    p.a.set_muted(true);
    assert!(p.a.is_muted());
    let (played, received) = muted_for(&mut p, 2000);
    assert!(rms(&played) <= quiet, "muted: {} rms", rms(&played));
    // Packets keep coming (Opus silence without DTX is a small packet every 20 ms).
    assert!(received >= 90, "rtp keeps flowing while muted: {received}");
    // Hold and resume: still muted.
    p.a.set_direction(Direction::SendOnly);
    p.b.set_direction(Direction::RecvOnly);
    p.run(1000);
    p.a.set_direction(Direction::SendRecv);
    p.b.set_direction(Direction::SendRecv);
    let (played, received) = muted_for(&mut p, 2000);
    assert!(received >= 90);
    assert!(
        rms(&played) <= quiet,
        "muted after resume: {} rms",
        rms(&played)
    );
    p.a.set_muted(false);
    let (played, _) = muted_for(&mut p, 2000);
    assert!(rms(&played) > 3000.0, "unmuted: {} rms", rms(&played));
}

#[test]
fn muted_pcmu_sends_silence_and_stays_muted_across_hold() {
    mute_sends_silence_and_survives_hold(CodecKind::Pcmu, 0, 0.0);
}

#[test]
fn muted_opus_sends_silence_and_stays_muted_across_hold() {
    mute_sends_silence_and_survives_hold(CodecKind::Opus, 111, 10.0);
}

#[test]
fn levels_are_reported_five_times_a_second_for_input_and_output() {
    let mut p = pair(CodecKind::Pcmu, 0);
    p.run(1000);
    let start = p.events_b.len();
    p.run(2000);
    let seen = levels(&p.events_b, start);
    assert_eq!(seen.len(), 10, "every 200 ms of playout");
    // A tone of amplitude 8000: peak 20 log10(8000/32768) = -12.2 dBFS, RMS 3 dB below.
    for (input, output) in &seen {
        assert!((input.peak_dbfs - -12.25).abs() < 0.2, "{input:?}");
        assert!((input.rms_dbfs - -15.26).abs() < 0.2, "{input:?}");
        // G.711 round trip: within a dB.
        assert!((output.peak_dbfs - -12.25).abs() < 1.0, "{output:?}");
        assert!((output.rms_dbfs - -15.26).abs() < 1.0, "{output:?}");
    }
    // A muted microphone is still metered; the peer plays silence.
    p.a.set_muted(true);
    p.run(500);
    let (start_a, start_b) = (p.events_a.len(), p.events_b.len());
    p.run(1000);
    for (input, _) in levels(&p.events_a, start_a) {
        assert!(
            input.rms_dbfs > -16.0,
            "the microphone still shows: {input:?}"
        );
    }
    for (_, output) in levels(&p.events_b, start_b) {
        assert_eq!(output, Level::SILENT);
        assert_eq!(output.peak_dbfs, LEVEL_FLOOR_DBFS);
    }
    // No capture at all is silence too.
    p.source_b = None;
    let start = p.events_b.len();
    p.run(1000);
    // (The first window still holds frames captured before.)
    for (input, _) in levels(&p.events_b, start).into_iter().skip(1) {
        assert_eq!(input, Level::SILENT);
    }
}

/// Levels cost nothing unless asked for.
#[test]
fn levels_are_off_unless_asked_for() {
    let t0 = Instant::now();
    let config = SessionConfig::new(0xA, CodecKind::Pcmu, 0, addr("127.0.0.1:5000"));
    assert!(!config.levels);
    let mut s = MediaSession::new(config, t0).unwrap();
    for i in 0..100 {
        let now = t0 + Duration::from_millis(20 * i);
        s.send_frame(now, &[1000; 960]).unwrap();
        s.playout(now);
    }
    while let Some(e) = s.poll_event() {
        assert!(!matches!(e, MediaEvent::Levels { .. }), "{e:?}");
    }
}
