//! Noise suppression: the near end's speech with generated fan noise (rumble, blade hum,
//! hiss) at 0, 5 and 10 dB SNR. The SNR of the output (speech-active power less the noise
//! power over the noise power, measured where the clean speech is and is not) rises by
//! several dB; speech is not lost (its active level stays within a few dB).

#[path = "dsp-util/mod.rs"]
mod util;

use tincan_media::dsp::{CaptureProcessor, ProcessingConfig, ProcessingRate};
use util::{active_level_dbfs, fan_noise, float, maybe_write, mix, near_end, run, speech_snr};

const NOISE_ONLY: ProcessingConfig = ProcessingConfig {
    echo_cancellation: false,
    noise_suppression: true,
    auto_gain: false,
};

#[test]
fn fan_noise_is_suppressed_and_speech_kept() {
    let speech = near_end(-6.0);
    let level = active_level_dbfs(&speech, &speech, 0.0);
    let silence = vec![0i16; speech.len()];
    for snr in [0.0, 5.0, 10.0] {
        let noisy = mix(&[
            &float(&speech),
            &fan_noise(3, speech.len(), 120.0, level - snr),
        ]);
        for rate in [ProcessingRate::Full, ProcessingRate::Wide] {
            let mut chain = CaptureProcessor::new(NOISE_ONLY, rate);
            let out = run(&mut chain, &silence, &noisy);
            if snr == 5.0 && rate == ProcessingRate::Full {
                maybe_write("ns-clean", &speech);
                maybe_write("ns-noisy", &noisy);
                maybe_write("ns-out", &out);
            }
            // After the first 2 s, while the noise estimate settles.
            let before = speech_snr(&speech, &noisy, 2.0);
            let after = speech_snr(&speech, &out, 2.0);
            let kept =
                active_level_dbfs(&speech, &out, 2.0) - active_level_dbfs(&speech, &noisy, 2.0);
            eprintln!(
                "{rate:?} at {snr} dB: SNR {before:.1} -> {after:.1} dB, speech level {kept:+.1} dB"
            );
            assert!(
                after - before >= MIN_IMPROVEMENT_DB,
                "{rate:?} at {snr} dB: SNR {before:.1} -> {after:.1} dB"
            );
            assert!(
                kept > -6.0,
                "{rate:?} at {snr} dB: speech level {kept:+.1} dB"
            );
        }
    }
}

/// Measured 5.5-6.5 dB (docs/benchmarks-media.md), less a margin.
const MIN_IMPROVEMENT_DB: f64 = 4.0;
