//! Automatic gain: a quiet talker (-30 dB and -20 dB below the recording, speech at about
//! -50 and -40 dBFS) is brought up to a common speech level within a few seconds; a loud
//! talker is not pushed into clipping; the limiter keeps every sample below full scale.

#[path = "dsp-util/mod.rs"]
mod util;

use tincan_media::dsp::{CaptureProcessor, ProcessingConfig, ProcessingRate};
use util::{RATE, active_level_dbfs, float, mic_floor, mix, near_end, run};

const GAIN_ONLY: ProcessingConfig = ProcessingConfig {
    echo_cancellation: false,
    noise_suppression: false,
    auto_gain: true,
};

/// The speech level the gain controller settles at (measured about -23 dBFS), and how far
/// from it a talker may stay.
const TARGET_DBFS: f64 = -23.0;
const TOLERANCE_DB: f64 = 5.0;

fn through_gain(gain_db: f64) -> (Vec<i16>, Vec<i16>, Vec<i16>) {
    let speech = near_end(gain_db);
    let mic = mix(&[&float(&speech), &mic_floor(11, speech.len(), -80.0)]);
    let mut chain = CaptureProcessor::new(GAIN_ONLY, ProcessingRate::Full);
    let out = run(&mut chain, &vec![0; speech.len()], &mic);
    (speech, mic, out)
}

#[test]
fn quiet_talkers_are_brought_up_to_the_target() {
    for gain in [-30.0, -20.0] {
        let (speech, mic, out) = through_gain(gain);
        let before = active_level_dbfs(&speech, &mic, 0.0);
        let after = active_level_dbfs(&speech, &out, 6.0);
        let peak = out.iter().map(|s| i32::from(*s).abs()).max().unwrap_or(0);
        eprintln!("talker at {before:.1} dBFS: {after:.1} dBFS after 6 s, peak {peak}");
        assert!(
            (after - TARGET_DBFS).abs() <= TOLERANCE_DB,
            "{before:.1} -> {after:.1} dBFS"
        );
        assert!(peak < 32_000, "peak {peak}");
    }
}

#[test]
fn a_loud_talker_is_not_clipped() {
    let (speech, mic, out) = through_gain(0.0);
    let before = active_level_dbfs(&speech, &mic, 0.0);
    let after = active_level_dbfs(&speech, &out, 6.0);
    let peak = out[2 * RATE..]
        .iter()
        .map(|s| i32::from(*s).abs())
        .max()
        .unwrap_or(0);
    eprintln!("loud talker at {before:.1} dBFS: {after:.1} dBFS after 6 s, peak {peak}");
    assert!(peak < 32_000, "peak {peak}");
    assert!(after <= before + 1.0, "{before:.1} -> {after:.1} dBFS");
}
