//! Double talk: once the echo canceller has converged on the far end alone (6 s), the near
//! end talks over it, about 3 dB above the echo. The near end's speech must come through:
//! its level stays within a few dB of what the microphone heard, and its segmental SNR
//! against the clean near end (residual echo and any suppression of the near end both count
//! as noise) stays above a floor. PESQ of the same signals is in docs/benchmarks-media.md.

#[path = "dsp-util/mod.rs"]
mod util;

use tincan_media::dsp::{CaptureProcessor, ProcessingConfig, ProcessingRate};
use util::{
    RATE, Room, active_level_dbfs, far_end, float, maybe_write, mic_floor, mix, near_end, run,
    segmental_snr,
};

#[test]
fn near_end_speech_survives_double_talk() {
    let far = far_end(0.0);
    let echo = Room::laptop(2, 40, 200, 6.0).echo(&far);
    // The near end from 6 s on, about 3 dB above the echo.
    let start = 6 * RATE;
    let mut near = vec![0i16; far.len()];
    near[start..].copy_from_slice(&near_end(-6.0)[..far.len() - start]);
    let mic = mix(&[&echo, &float(&near), &mic_floor(11, far.len(), -70.0)]);
    let config = ProcessingConfig {
        echo_cancellation: true,
        noise_suppression: false,
        auto_gain: false,
    };
    let mut chain = CaptureProcessor::new(config, ProcessingRate::Full);
    let out = run(&mut chain, &far, &mic);
    maybe_write("dt-near", &near);
    maybe_write("dt-mic", &mic);
    maybe_write("dt-out", &out);
    let unprocessed = segmental_snr(&near, &mic, 6.0);
    let processed = segmental_snr(&near, &out, 6.0);
    let kept = active_level_dbfs(&near, &out, 6.0) - active_level_dbfs(&near, &near, 6.0);
    eprintln!(
        "near end in double talk: segmental SNR {unprocessed:.1} dB unprocessed, \
         {processed:.1} dB processed; level {kept:+.1} dB"
    );
    assert!(
        processed >= FLOOR_DB,
        "near end at {processed:.1} dB segmental SNR"
    );
    assert!(kept >= -6.0, "near end level {kept:+.1} dB");
}

/// Measured 4.7 dB (the microphone itself: 4.8 dB; docs/benchmarks-media.md), less a margin.
const FLOOR_DB: f64 = 3.0;
