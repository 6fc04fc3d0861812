//! Capture processing: acoustic echo cancellation, noise suppression and automatic gain
//! control on the microphone signal, before it is encoded.
//!
//! [`CaptureProcessor`] is the chain WebRTC's audio processing module runs, in the same order:
//! echo cancellation (AEC3, with what the loudspeaker played as the far-end reference), then
//! noise suppression (the WebRTC noise suppressor), then adaptive digital gain control
//! (AGC2, with its limiter). The three processors come from the `aec3` crate, a Rust port of
//! WebRTC's; why that crate and not the others is measured in docs/decisions.md.
//!
//! Like the rest of the media core it is sans-IO and runs where the caller puts it: the
//! [`driver`](crate::driver) calls it in its 20 ms media tick, never in the audio device's
//! callback. Every buffer is allocated in [`CaptureProcessor::new`]; a frame then only
//! reads and writes them. Each stage is switched on or off at any time with
//! [`CaptureProcessor::set_config`]; a stage that is off costs nothing and leaves the signal
//! untouched.
//!
//! ```
//! use tincan_media::codec::FRAME_SAMPLES;
//! use tincan_media::dsp::{CaptureProcessor, ProcessingConfig, ProcessingRate};
//!
//! let mut chain = CaptureProcessor::new(ProcessingConfig::default(), ProcessingRate::Full);
//! let played = vec![0i16; FRAME_SAMPLES]; // what the loudspeaker played this tick
//! let mut mic = vec![0i16; FRAME_SAMPLES]; // what the microphone heard
//! chain.analyze_render(&played);
//! chain.process_capture(&mut mic);
//! // Silence stays silence (give or take the canceller's comfort noise).
//! assert!(mic.iter().all(|&s| s.abs() < 16));
//! ```

use aec3::api::{EchoCanceller3Config, EchoControl};
use aec3::audio_processing::aec3::echo_canceller3::EchoCanceller3;
use aec3::audio_processing::audio_buffer::AudioBuffer;
use aec3::audio_processing::gain_controller2::{GainController2, GainController2Config};
use aec3::audio_processing::ns::{NoiseSuppressor, NsConfig, SuppressionLevel};
use aec3::audio_processing::stream_config::StreamConfig;

use crate::SAMPLE_RATE;

/// Samples in one 10 ms block at the device rate: the unit the processors work in.
pub const BLOCK_SAMPLES: usize = SAMPLE_RATE as usize / 100;

/// Which stages of the capture chain run.
///
/// The default is all three on, as in WebRTC's and baresip's voice defaults and pjsua's
/// (which cancels echo and suppresses noise out of the box): a softphone is most often used on a
/// laptop's loudspeaker and microphone, where the far end hears itself without echo
/// cancellation. Headset users can switch echo cancellation off to save its CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessingConfig {
    /// Acoustic echo cancellation against what the loudspeaker played.
    pub echo_cancellation: bool,
    /// Stationary noise suppression (fans, hum, hiss).
    pub noise_suppression: bool,
    /// Adaptive digital gain: a quiet talker is brought up towards a common speech level,
    /// a limiter keeps peaks below full scale.
    pub auto_gain: bool,
}

impl Default for ProcessingConfig {
    fn default() -> Self {
        ProcessingConfig {
            echo_cancellation: true,
            noise_suppression: true,
            auto_gain: true,
        }
    }
}

impl ProcessingConfig {
    /// Every stage off: the chain passes the microphone through untouched.
    pub const OFF: ProcessingConfig = ProcessingConfig {
        echo_cancellation: false,
        noise_suppression: false,
        auto_gain: false,
    };

    /// Whether any stage runs.
    pub fn any(&self) -> bool {
        self.echo_cancellation || self.noise_suppression || self.auto_gain
    }
}

/// The rate the processors run at; the chain converts from and to the 48 kHz device rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessingRate {
    /// 16 kHz: enough for a narrowband or wideband call (G.711, G.722). Measured, it costs
    /// more CPU than [`Full`](Self::Full) (aec3's resampling from and back to 48 kHz costs
    /// more than the two upper bands save; docs/benchmarks-media.md), so the driver does
    /// not use it.
    Wide,
    /// 48 kHz: the full band. What the driver runs, whatever the codec.
    Full,
}

impl ProcessingRate {
    /// The rate in Hz.
    pub fn hz(self) -> u32 {
        match self {
            ProcessingRate::Wide => 16_000,
            ProcessingRate::Full => 48_000,
        }
    }
}

/// What the echo canceller reports about the echo path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoMetrics {
    /// Echo return loss (dB): how much quieter the echo is than the far-end signal.
    pub echo_return_loss_db: f64,
    /// Echo return loss enhancement (dB): how much the canceller removed, as it estimates it.
    pub erle_db: f64,
    /// The estimated delay from loudspeaker to microphone, in ms.
    pub delay_ms: i32,
}

/// The capture chain: echo cancellation, noise suppression, gain control. See the
/// [module documentation](self).
pub struct CaptureProcessor {
    config: ProcessingConfig,
    rate: ProcessingRate,
    /// The 48 kHz device stream, one channel of 10 ms.
    stream: StreamConfig,
    capture: AudioBuffer,
    render: AudioBuffer,
    echo: EchoCanceller3,
    noise: NoiseSuppressor,
    gain: GainController2,
    /// One 10 ms block as floats in [-1, 1), in and out.
    block_in: [f32; BLOCK_SAMPLES],
    block_out: [f32; BLOCK_SAMPLES],
}

// SAFETY: the chain is moved into the driver's task, which tokio may run on any thread; it is
// never shared (`&mut self` everywhere, no `Sync`). `aec3` 0.4 keeps some of its parts as
// `Box<dyn Trait>` without a `Send` bound (the block processor, the AGC2 estimators, the VAD,
// the near-end detector), which is all that keeps the compiler from deriving `Send`. Every
// such box holds one of the crate's own plain-data types (floats, vectors, FFT plans): none
// holds an `Rc`, a `Cell`, a raw pointer or thread-local state (its only `Rc<RefCell<_>>` are
// test doubles under `#[cfg(test)]`), so moving them across threads is sound. Checked for the
// version in Cargo.lock; an upgrade of `aec3` re-checks this (`grep -rn "Rc<\|Cell<\|\*mut"`).
#[allow(unsafe_code)]
unsafe impl Send for CaptureProcessor {}

impl std::fmt::Debug for CaptureProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaptureProcessor")
            .field("config", &self.config)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl CaptureProcessor {
    /// A chain for mono 48 kHz device audio, processing at `rate`. This is where every
    /// buffer is allocated (a few hundred kilobytes with echo cancellation at 48 kHz).
    pub fn new(config: ProcessingConfig, rate: ProcessingRate) -> CaptureProcessor {
        let device = SAMPLE_RATE as usize;
        let internal = rate.hz() as usize;
        let mut gain_config = GainController2Config::default();
        // We do not steer the operating system's microphone volume: digital gain only.
        gain_config.input_volume_controller.enabled = false;
        gain_config.adaptive_digital.enabled = true;
        CaptureProcessor {
            config,
            rate,
            stream: StreamConfig::new(device, 1, false),
            capture: AudioBuffer::from_sample_rates(device, 1, internal, 1, device),
            render: AudioBuffer::from_sample_rates(device, 1, internal, 1, device),
            echo: EchoCanceller3::new(EchoCanceller3Config::default(), internal as i32, 1, 1),
            noise: NoiseSuppressor::new(
                NsConfig {
                    target_level: SuppressionLevel::K12dB,
                    analyze_linear_aec_output_when_available: false,
                },
                internal,
                1,
            ),
            gain: GainController2::new(gain_config, Default::default(), internal, 1, true),
            block_in: [0.0; BLOCK_SAMPLES],
            block_out: [0.0; BLOCK_SAMPLES],
        }
    }

    /// Which stages run.
    pub fn config(&self) -> ProcessingConfig {
        self.config
    }

    /// Switches stages on or off from the next frame on. A stage switched back on goes on
    /// from the state it had (the echo canceller re-converges in a second or two if the echo
    /// path changed meanwhile).
    pub fn set_config(&mut self, config: ProcessingConfig) {
        self.config = config;
    }

    /// The rate the processors run at.
    pub fn rate(&self) -> ProcessingRate {
        self.rate
    }

    /// Gives the echo canceller what the loudspeaker is playing: 48 kHz mono, a whole
    /// number of 10 ms blocks (the driver's 20 ms frame is two). Call it once per frame
    /// played, alongside [`process_capture`](Self::process_capture) for the frame captured.
    /// A frame of another length is ignored (its tail if it is longer). Does nothing while
    /// echo cancellation is off.
    pub fn analyze_render(&mut self, frame: &[i16]) {
        if !self.config.echo_cancellation {
            return;
        }
        for block in frame.chunks_exact(BLOCK_SAMPLES) {
            to_float(block, &mut self.block_in);
            self.render.copy_from(&[&self.block_in[..]], &self.stream);
            self.render.split_into_frequency_bands();
            self.echo.analyze_render(&mut self.render);
        }
    }

    /// Processes what the microphone captured, in place: 48 kHz mono, a whole number of
    /// 10 ms blocks. A trailing part shorter than a block is left as it is. With every stage
    /// off the frame is not touched at all.
    pub fn process_capture(&mut self, frame: &mut [i16]) {
        if !self.config.any() {
            return;
        }
        for block in frame.chunks_exact_mut(BLOCK_SAMPLES) {
            self.process_block(block);
        }
    }

    fn process_block(&mut self, block: &mut [i16]) {
        let config = self.config;
        to_float(block, &mut self.block_in);
        self.capture.copy_from(&[&self.block_in[..]], &self.stream);
        if config.echo_cancellation {
            self.echo.analyze_capture(&mut self.capture);
        }
        if config.echo_cancellation || config.noise_suppression {
            // Three bands at 48 kHz (a no-op at 16 kHz): the processors work on the lowest.
            self.capture.split_into_frequency_bands();
            if config.echo_cancellation {
                self.echo.process_capture(&mut self.capture, false);
            }
            if config.noise_suppression {
                self.noise.analyze(&self.capture);
                self.noise.process(&mut self.capture);
            }
            self.capture.merge_frequency_bands();
        }
        if config.auto_gain {
            self.gain.process(false, &mut self.capture);
        }
        self.capture
            .copy_to_stream(&self.stream, &mut [&mut self.block_out[..]]);
        for (out, &v) in block.iter_mut().zip(self.block_out.iter()) {
            *out = crate::device::f32_to_i16(v);
        }
    }

    /// What the echo canceller currently estimates about the echo path.
    pub fn echo_metrics(&self) -> EchoMetrics {
        let m = self.echo.metrics();
        EchoMetrics {
            echo_return_loss_db: m.echo_return_loss,
            erle_db: m.echo_return_loss_enhancement,
            delay_ms: m.delay_ms,
        }
    }
}

fn to_float(block: &[i16], out: &mut [f32; BLOCK_SAMPLES]) {
    for (o, &s) in out.iter_mut().zip(block) {
        *o = f32::from(s) / 32768.0;
    }
}
