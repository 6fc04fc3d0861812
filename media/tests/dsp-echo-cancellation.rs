//! Echo cancellation on a simulated laptop: the far end's speech played through a room
//! (20-60 ms bulk delay, a 100-300 ms reverberant tail, the echo 6 dB below what is played)
//! into the microphone, with the microphone's own noise floor. The echo return loss
//! enhancement (ERLE) is measured in 0.5 s windows wherever there is echo; converged means
//! every window from then on removes at least 25 dB. Computed figures from fixed seeds, not
//! timings: they hold on any machine.
//!
//! `TINCAN_DSP_WAV_DIR=/tmp cargo test -p tincan-media --test dsp-echo-cancellation -- --nocapture`
//! prints the windows and writes the signals for listening.

#[path = "dsp-util/mod.rs"]
mod util;

use tincan_media::dsp::{CaptureProcessor, ProcessingConfig, ProcessingRate};
use util::{
    RATE, Room, converged_at, erle_from, erle_windows, far_end, maybe_write, mic_floor, mix, run,
};

const ECHO_ONLY: ProcessingConfig = ProcessingConfig {
    echo_cancellation: true,
    noise_suppression: false,
    auto_gain: false,
};

/// Plays the far end through `room`; returns the microphone's echo and the processed capture.
fn single_talk(room: &Room, config: ProcessingConfig, name: &str) -> (Vec<f64>, Vec<i16>) {
    let far = far_end(0.0);
    let echo = room.echo(&far);
    let mic = mix(&[&echo, &mic_floor(11, far.len(), -70.0)]);
    let mut chain = CaptureProcessor::new(config, ProcessingRate::Full);
    let out = run(&mut chain, &far, &mic);
    maybe_write(&format!("{name}-mic"), &mic);
    maybe_write(&format!("{name}-out"), &out);
    let windows = erle_windows(&echo, &out, RATE / 2);
    eprintln!(
        "{name}: ERLE per 0.5 s {:?}; canceller's estimate {:?}",
        windows
            .iter()
            .map(|w| format!("{:.1}s {:.1}dB", w.0, w.1))
            .collect::<Vec<_>>(),
        chain.echo_metrics()
    );
    (echo, out)
}

#[test]
fn short_room_converges_within_two_seconds() {
    // 20 ms to the loudspeaker's direct path, a 100 ms tail.
    let room = Room::laptop(1, 20, 100, 6.0);
    let (echo, out) = single_talk(&room, ECHO_ONLY, "aec-short-room");
    let windows = erle_windows(&echo, &out, RATE / 2);
    let converged = converged_at(&windows, 25.0).expect("the echo is cancelled at all");
    assert!(converged <= 2.0, "converged at {converged} s: {windows:?}");
    let late = erle_from(&echo, &out, 6.0);
    assert!(late >= 40.0, "ERLE after 6 s {late:.1} dB");
}

#[test]
fn reverberant_room_converges_and_removes_forty_db() {
    // 60 ms to the direct path, a 300 ms tail: longer than the linear filter, the residual
    // echo suppressor removes the rest.
    let room = Room::laptop(3, 60, 300, 6.0);
    let (echo, out) = single_talk(&room, ECHO_ONLY, "aec-long-room");
    let windows = erle_windows(&echo, &out, RATE / 2);
    let converged = converged_at(&windows, 25.0).expect("the echo is cancelled at all");
    // Measured 4.5 s (docs/benchmarks-media.md).
    assert!(converged <= 6.0, "converged at {converged} s: {windows:?}");
    let late = erle_from(&echo, &out, 6.0);
    assert!(late >= 40.0, "ERLE after 6 s {late:.1} dB");
    assert!(erle_from(&echo, &out, 0.0) >= 25.0);
}

#[test]
fn echo_cancellation_off_leaves_the_echo() {
    let room = Room::laptop(1, 20, 100, 6.0);
    let (echo, out) = single_talk(&room, ProcessingConfig::OFF, "aec-off");
    let erle = erle_from(&echo, &out, 0.0);
    assert!(erle.abs() < 1.0, "ERLE without the canceller {erle:.1} dB");
}
