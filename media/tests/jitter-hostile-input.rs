//! Peer input never panics the jitter buffer, the playout or the decoders: seeded random
//! payloads, sequence numbers and timestamps (jumps, wraps, duplicates, garbage codec data)
//! for every codec, and every frame that comes out is a full 20 ms frame.

#[path = "codec-util/mod.rs"]
mod util;

use std::time::{Duration, Instant};

use tincan_media::codec::comfort_noise::ComfortNoiseGenerator;
use tincan_media::codec::telephone_event::TelephoneEventReceiver;
use tincan_media::codec::{CodecKind, FRAME_SAMPLES};
use tincan_media::jitter::JitterConfig;
use tincan_media::jitter::playout::Playout;

use util::Rng;

#[test]
fn random_packets_never_panic() {
    #[allow(clippy::disallowed_methods)] // the virtual clock starts at the real now
    let t0 = Instant::now();
    for (n, kind) in CodecKind::ALL.into_iter().enumerate() {
        let mut rng = Rng(0xbad_5eed + n as u64);
        let mut playout = Playout::new(
            JitterConfig::for_codec(kind),
            kind.decoder().expect("decoder"),
        );
        let mut dtmf = TelephoneEventReceiver::new();
        let mut cn = ComfortNoiseGenerator::new(1);
        let mut seq = 0u64;
        let mut ts = 0u32;
        for k in 0..6000u64 {
            let now = t0 + Duration::from_millis(k * 20 + (rng.uniform() * 30.0) as u64);
            // Mostly a plausible stream, with jumps, wraps, repeats and reordering.
            let r = rng.uniform();
            if r < 0.01 {
                ts = ts.wrapping_add((rng.uniform() * u32::MAX as f64) as u32);
            } else if r < 0.02 {
                seq = seq.wrapping_add((rng.uniform() * 70_000.0) as u64);
            } else if r < 0.05 {
                ts = ts.wrapping_sub(960 * 3);
                seq = seq.saturating_sub(3);
            } else {
                ts = ts.wrapping_add(kind.frame_samples() as u32);
                seq += 1;
            }
            let len = if rng.uniform() < 0.1 {
                0
            } else {
                (rng.uniform() * 400.0) as usize
            };
            let payload: Vec<u8> = (0..len).map(|_| (rng.uniform() * 256.0) as u8).collect();
            let _ = dtmf.handle(ts, &payload);
            let _ = cn.update(&payload);
            playout.insert(now, seq, ts, payload, rng.uniform() < 0.05);
            if rng.uniform() < 0.9 {
                let frame = playout.pop(now + Duration::from_millis(5));
                assert_eq!(frame.pcm.len(), FRAME_SAMPLES);
            }
        }
        let st = playout.stats();
        println!("{kind}: {st:?}, decode errors {}", playout.decode_errors());
        assert!(st.received == 6000);
    }
}
