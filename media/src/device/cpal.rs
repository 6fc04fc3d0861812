//! Real audio devices through cpal: device listing and selection, rate and channel
//! negotiation, and streams whose callbacks exchange samples with us through lock-free
//! SPSC rings (`rtrb`): the callback never locks, allocates or blocks.
//!
//! Devices run on their own clock. [`CpalSource`] keeps at most [`MAX_BACKLOG_FRAMES`] of
//! captured audio (older audio is dropped), and reports an underrun (silence) before the
//! device has delivered a frame. [`CpalSink`] primes [`PRIME_MS`] of audio before the
//! callback starts playing and after each underrun, and drops frames written when more than
//! [`MAX_QUEUED_MS`] are already queued.
//!
//! A stream that stops without an error (a capture device that delivers nothing, an output
//! whose queue does not drain, for [`STALL_FRAMES`]) counts as failed too: a dead sound
//! server does not always call the error callback. Failed streams are closed on a thread of
//! their own, as closing one can block in the backend.
//!
//! Stream errors from the backend are counted; a fatal one (device gone, stream
//! invalidated, server gone) is reported once by the next `read_frame`/`write_frame` as
//! [`DeviceError::StreamFailed`], after which the device is reopened (by the same
//! selector) at most once a second until it works again, meanwhile giving silence.
#![allow(clippy::disallowed_methods)] // device code runs on the wall clock (reopen pacing)

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};

use super::{AudioSink, AudioSource, DeviceError, SourceStatus, check_frame, f32_to_i16};
use crate::SAMPLE_RATE;
use crate::codec::FRAME_SAMPLES;
use crate::resample::Resampler;

/// Captured audio kept at most, in 20 ms frames (older audio is dropped).
pub const MAX_BACKLOG_FRAMES: usize = 5;

/// Audio the sink's callback waits for before playing, in ms.
pub const PRIME_MS: u32 = 40;

/// Audio queued for playout at most, in ms; frames beyond it are dropped.
pub const MAX_QUEUED_MS: u32 = 80;

/// Ring capacity, in ms of device audio.
const RING_MS: u32 = 1000;

/// Least time between two reopen attempts.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// Frames (20 ms) without progress after which a stream counts as failed even though the
/// backend reported nothing: a capture device that delivers nothing, an output whose queue
/// does not drain. 4 s: twice the start-up stall of PulseAudio's ALSA plugin (~2 s).
pub const STALL_FRAMES: u32 = 200;

/// An audio device as `tincan devices` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The cpal device id (`alsa:default`, `alsa:hw:0,0`...), stable for selection.
    pub id: String,
    /// The human name.
    pub name: String,
    /// Whether it captures.
    pub input: bool,
    /// Whether it plays.
    pub output: bool,
    /// Whether it is the host's default input.
    pub default_input: bool,
    /// Whether it is the host's default output.
    pub default_output: bool,
}

/// Which device to open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DeviceSelector {
    /// The host's default device.
    #[default]
    Default,
    /// A cpal device id, as [`DeviceInfo::id`].
    Id(String),
    /// A device name (exact, else the first case-insensitive substring match).
    Name(String),
}

impl DeviceSelector {
    /// Parses what a user typed: `default` (or nothing), an id `host:device`, or a name.
    pub fn parse(s: &str) -> DeviceSelector {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("default") {
            DeviceSelector::Default
        } else if s.parse::<cpal::DeviceId>().is_ok() {
            DeviceSelector::Id(s.to_owned())
        } else {
            DeviceSelector::Name(s.to_owned())
        }
    }
}

impl std::fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSelector::Default => f.write_str("the default device"),
            DeviceSelector::Id(id) => write!(f, "id {id}"),
            DeviceSelector::Name(n) => write!(f, "name {n:?}"),
        }
    }
}

fn backend(e: cpal::Error) -> DeviceError {
    DeviceError::Backend {
        kind: e.kind().to_string(),
        message: e.to_string(),
    }
}

fn device_id(d: &cpal::Device) -> Option<String> {
    d.id().ok().map(|id| id.to_string())
}

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|desc| desc.name().to_owned())
        .or_else(|_| d.id().map(|id| id.to_string()))
        .unwrap_or_else(|_| "unnamed device".to_owned())
}

/// libasound writes its configuration errors (a machine without a sound card gets eight
/// `ALSA lib ...` lines per device opened) straight to standard error. This sends them, for
/// the calling thread (where cpal looks devices up and opens them), to a buffer nobody reads:
/// the caller reports a missing device once, in its own words.
///
/// Each lookup gets a new buffer and the previous one is freed (installing a handler drops the
/// one before, `alsa::Output::local_error_handler`): one buffer for the life of the thread
/// kept every message, about a kilobyte for each call a headless `tincan listen` answered
/// (issue 19, finding 5).
fn quiet_alsa() {
    #[cfg(target_os = "linux")]
    {
        let _ = alsa::Output::local_error_handler();
    }
}

/// The default host, with libasound's error messages kept off standard error.
fn default_host() -> cpal::Host {
    quiet_alsa();
    cpal::default_host()
}

/// Lists the default host's audio devices.
pub fn list_devices() -> Result<Vec<DeviceInfo>, DeviceError> {
    let host = default_host();
    let default_of =
        |d: Option<cpal::Device>| d.and_then(|d| device_id(&d).map(|id| (id, device_name(&d))));
    let default_in = default_of(host.default_input_device());
    let default_out = default_of(host.default_output_device());
    let mut out = Vec::new();
    for d in host.devices().map_err(backend)? {
        out.push(DeviceInfo {
            name: device_name(&d),
            input: d.supports_input(),
            output: d.supports_output(),
            default_input: false,
            default_output: false,
            id: device_id(&d).unwrap_or_default(),
        });
    }
    mark_defaults(&mut out, default_in, true);
    mark_defaults(&mut out, default_out, false);
    Ok(out)
}

/// Marks the host's default input (`input`) or output device, given as its id and name, in
/// `devices`. A default the enumeration did not list is added first: ALSA's `default`, what
/// cpal opens for the default device, is listed only when the ALSA configuration gives it a
/// hint, and a list without it marked nothing.
fn mark_defaults(devices: &mut Vec<DeviceInfo>, default: Option<(String, String)>, input: bool) {
    let Some((id, name)) = default else {
        return;
    };
    if !devices.iter().any(|d| d.id == id) {
        devices.insert(
            0,
            DeviceInfo {
                id: id.clone(),
                name,
                input: false,
                output: false,
                default_input: false,
                default_output: false,
            },
        );
    }
    for d in devices.iter_mut().filter(|d| d.id == id) {
        // The default device of a direction works in that direction.
        if input {
            d.input = true;
            d.default_input = true;
        } else {
            d.output = true;
            d.default_output = true;
        }
    }
}

fn find_device(selector: &DeviceSelector, input: bool) -> Result<cpal::Device, DeviceError> {
    let host = default_host();
    let not_found = || DeviceError::NotFound(selector.to_string());
    let device = match selector {
        DeviceSelector::Default => {
            if input {
                host.default_input_device()
            } else {
                host.default_output_device()
            }
        }
        DeviceSelector::Id(id) => {
            let id: cpal::DeviceId = id.parse().map_err(backend)?;
            host.device_by_id(&id)
        }
        DeviceSelector::Name(name) => {
            let devices: Vec<cpal::Device> = host
                .devices()
                .map_err(backend)?
                .filter(|d| {
                    if input {
                        d.supports_input()
                    } else {
                        d.supports_output()
                    }
                })
                .collect();
            let lower = name.to_lowercase();
            let exact = devices.iter().position(|d| device_name(d) == *name);
            let partial = || {
                devices
                    .iter()
                    .position(|d| device_name(d).to_lowercase().contains(&lower))
            };
            exact.or_else(partial).map(|i| devices[i].clone())
        }
    };
    device.ok_or_else(not_found)
}

/// Picks a stream configuration: 48 kHz if the device offers it (fewest channels, a float
/// or 16-bit format preferred), else the device's default.
fn choose_config(
    device: &cpal::Device,
    input: bool,
) -> Result<cpal::SupportedStreamConfig, DeviceError> {
    let no_config = |e: cpal::Error| DeviceError::NoConfig {
        device: device_name(device),
        reason: e.to_string(),
    };
    let ranges: Vec<cpal::SupportedStreamConfigRange> = if input {
        device
            .supported_input_configs()
            .map_err(no_config)?
            .collect()
    } else {
        device
            .supported_output_configs()
            .map_err(no_config)?
            .collect()
    };
    let format_rank = |f: SampleFormat| match f {
        SampleFormat::F32 => 0,
        SampleFormat::I16 => 1,
        SampleFormat::I32 => 2,
        _ => 3,
    };
    let best = ranges
        .iter()
        .filter(|r| r.min_sample_rate() <= SAMPLE_RATE && r.max_sample_rate() >= SAMPLE_RATE)
        .filter(|r| format_rank(r.sample_format()) < 3)
        .min_by_key(|r| (r.channels(), format_rank(r.sample_format())));
    if let Some(range) = best {
        return Ok(range.with_sample_rate(SAMPLE_RATE));
    }
    if input {
        device.default_input_config().map_err(no_config)
    } else {
        device.default_output_config().map_err(no_config)
    }
}

/// The stream configuration: a device buffer of 20 ms when the device allows it (the
/// defaults of some hosts are much larger, adding their size to the latency).
fn stream_config(supported: &cpal::SupportedStreamConfig) -> cpal::StreamConfig {
    let mut config = supported.config();
    let want = supported.sample_rate() / 50;
    if let cpal::SupportedBufferSize::Range { min, max } = *supported.buffer_size()
        && (min..=max).contains(&want)
    {
        config.buffer_size = cpal::BufferSize::Fixed(want);
    }
    config
}

/// Counters the callbacks update (atomics only).
#[derive(Debug, Default)]
struct Shared {
    failed: AtomicBool,
    errors: AtomicU64,
    overflows: AtomicU64,
    underruns: AtomicU64,
    /// What the backend said when the stream failed (set once, by the audio thread).
    failure: std::sync::OnceLock<String>,
}

fn error_callback(shared: Arc<Shared>) -> impl FnMut(cpal::Error) + Send + 'static {
    move |e: cpal::Error| {
        shared.errors.fetch_add(1, Ordering::Relaxed);
        use cpal::ErrorKind as K;
        // Over- and underruns and a followed default device are not fatal; anything else
        // (device gone, stream invalidated, server gone, backend errors) is.
        // ALSA's PulseAudio plugin answers EIO to `snd_pcm_avail*` while its stream is still
        // connecting (seen at the first frames on a loaded machine); cpal's stream thread goes
        // on and the audio flows once the server is ready. A stream that never recovers is
        // caught by the stall check (nothing played for 4 s).
        let transient = e.kind() == K::BackendError && {
            let text = e.to_string();
            text.contains("snd_pcm_avail") && text.contains("I/O error")
        };
        if !transient && !matches!(e.kind(), K::Xrun | K::DeviceChanged | K::RealtimeDenied) {
            let _ = shared.failure.set(format!("{:?}: {e}", e.kind()));
            shared.failed.store(true, Ordering::Release);
        }
    }
}

/// Drops a failed stream on a thread of its own: closing a stream whose device or server
/// is gone can block in the backend, and must not block the caller's media loop.
fn drop_elsewhere(stream: cpal::Stream) {
    let spawned = std::thread::Builder::new()
        .name("tincan-audio-close".into())
        .spawn(move || drop(stream));
    // Without a thread, dropping here is the only option left.
    if let Err(e) = spawned {
        eprintln!("tincan: no thread to close a failed audio stream: {e}");
    }
}

/// Figures a device keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeviceStats {
    /// Stream errors the backend reported.
    pub errors: u64,
    /// Samples dropped because a ring was full.
    pub overflows: u64,
    /// Callback periods with no audio to play (sink) / frames read before audio came (source).
    pub underruns: u64,
    /// Times the stream was reopened after a failure.
    pub reopens: u64,
}

struct InputStream {
    stream: cpal::Stream,
    consumer: rtrb::Consumer<f32>,
    shared: Arc<Shared>,
    rate: u32,
    channels: u16,
    name: String,
}

fn open_input(selector: &DeviceSelector) -> Result<InputStream, DeviceError> {
    let device = find_device(selector, true)?;
    let supported = choose_config(&device, true)?;
    let config = stream_config(&supported);
    let (producer, consumer) =
        rtrb::RingBuffer::new((config.sample_rate * RING_MS / 1000) as usize);
    let shared = Arc::new(Shared::default());
    let channels = usize::from(config.channels.max(1));
    let stream = match supported.sample_format() {
        SampleFormat::F32 => {
            build_input::<f32>(&device, &config, channels, producer, shared.clone())
        }
        SampleFormat::I16 => {
            build_input::<i16>(&device, &config, channels, producer, shared.clone())
        }
        SampleFormat::I32 => {
            build_input::<i32>(&device, &config, channels, producer, shared.clone())
        }
        SampleFormat::U16 => {
            build_input::<u16>(&device, &config, channels, producer, shared.clone())
        }
        SampleFormat::U8 => build_input::<u8>(&device, &config, channels, producer, shared.clone()),
        other => {
            return Err(DeviceError::NoConfig {
                device: device_name(&device),
                reason: format!("sample format {other} not supported"),
            });
        }
    }?;
    stream.play().map_err(backend)?;
    Ok(InputStream {
        stream,
        consumer,
        shared,
        rate: config.sample_rate,
        channels: config.channels,
        name: device_name(&device),
    })
}

fn build_input<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    channels: usize,
    mut producer: rtrb::Producer<f32>,
    shared: Arc<Shared>,
) -> Result<cpal::Stream, DeviceError>
where
    T: SizedSample + Send + 'static,
    f32: FromSample<T>,
{
    let counters = shared.clone();
    let scale = 1.0 / channels as f32;
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _: &cpal::InputCallbackInfo| {
                // Real-time context: no locks, no allocation.
                for frame in data.chunks_exact(channels) {
                    let v: f32 = frame.iter().map(|&s| s.to_sample::<f32>()).sum::<f32>() * scale;
                    if producer.push(v).is_err() {
                        counters.overflows.fetch_add(1, Ordering::Relaxed);
                    }
                }
            },
            error_callback(shared),
            None,
        )
        .map_err(backend)
}

/// Captures from a cpal input device as 20 ms frames of 48 kHz mono.
pub struct CpalSource {
    selector: DeviceSelector,
    stream: Option<InputStream>,
    resampler: Resampler,
    fifo: VecDeque<i16>,
    raw: Vec<f32>,
    converted: Vec<f32>,
    last_attempt: Instant,
    reported: bool,
    stats: DeviceStats,
    underruns: u64,
    /// Consecutive reads that found no new samples.
    starved: u32,
}

impl std::fmt::Debug for CpalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpalSource")
            .field("selector", &self.selector)
            .field("device", &self.stream.as_ref().map(|s| &s.name))
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl CpalSource {
    /// Opens and starts an input device.
    pub fn open(selector: DeviceSelector) -> Result<CpalSource, DeviceError> {
        let stream = open_input(&selector)?;
        Ok(CpalSource {
            selector,
            resampler: Resampler::new(stream.rate, SAMPLE_RATE),
            stream: Some(stream),
            fifo: VecDeque::with_capacity(FRAME_SAMPLES * (MAX_BACKLOG_FRAMES + 2)),
            raw: Vec::with_capacity(48_000),
            converted: Vec::with_capacity(48_000),
            last_attempt: Instant::now(),
            reported: false,
            stats: DeviceStats::default(),
            underruns: 0,
            starved: 0,
        })
    }

    /// The device's name, rate and channel count, while open.
    pub fn format(&self) -> Option<(&str, u32, u16)> {
        self.stream
            .as_ref()
            .map(|s| (s.name.as_str(), s.rate, s.channels))
    }

    /// Counters.
    pub fn stats(&self) -> DeviceStats {
        let mut st = self.stats;
        if let Some(s) = &self.stream {
            st.errors += s.shared.errors.load(Ordering::Relaxed);
            st.overflows += s.shared.overflows.load(Ordering::Relaxed);
        }
        st.underruns = self.underruns;
        st
    }

    fn retire(&mut self) {
        if let Some(s) = self.stream.take() {
            self.stats.errors += s.shared.errors.load(Ordering::Relaxed);
            self.stats.overflows += s.shared.overflows.load(Ordering::Relaxed);
            drop_elsewhere(s.stream);
        }
    }

    fn try_reopen(&mut self) {
        if self.last_attempt.elapsed() < REOPEN_EVERY {
            return;
        }
        self.last_attempt = Instant::now();
        if let Ok(stream) = open_input(&self.selector) {
            self.resampler = Resampler::new(stream.rate, SAMPLE_RATE);
            self.fifo.clear();
            self.stream = Some(stream);
            self.stats.reopens += 1;
            self.reported = false;
        }
    }
}

impl AudioSource for CpalSource {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        check_frame(frame.len())?;
        let stalled = self.starved >= STALL_FRAMES;
        let failed = stalled
            || self
                .stream
                .as_ref()
                .is_none_or(|s| s.shared.failed.load(Ordering::Acquire));
        if failed {
            let name = self.stream.as_ref().map(|s| s.name.clone());
            self.retire();
            self.starved = 0;
            if !self.reported {
                self.reported = true;
                self.last_attempt = Instant::now();
                let message = if stalled {
                    "the input stream delivered nothing for 4 s"
                } else {
                    "the input stream stopped"
                };
                return Err(DeviceError::StreamFailed {
                    device: name.unwrap_or_else(|| self.selector.to_string()),
                    message: message.to_owned(),
                });
            }
            self.try_reopen();
            if self.stream.is_none() {
                frame.fill(0);
                self.underruns += 1;
                return Ok(SourceStatus::Underrun);
            }
        }
        let stream = self
            .stream
            .as_mut()
            .expect("reopened or never failed, checked above");
        let n = stream.consumer.slots();
        if n == 0 {
            self.starved += 1;
        } else {
            self.starved = 0;
        }
        if n > 0
            && let Ok(chunk) = stream.consumer.read_chunk(n)
        {
            self.raw.clear();
            let (a, b) = chunk.as_slices();
            self.raw.extend_from_slice(a);
            self.raw.extend_from_slice(b);
            chunk.commit_all();
            self.converted.clear();
            self.resampler.process_f32(&self.raw, &mut self.converted);
            self.fifo
                .extend(self.converted.iter().map(|&v| f32_to_i16(v)));
        }
        // Bound the latency: keep at most MAX_BACKLOG_FRAMES.
        let max = FRAME_SAMPLES * MAX_BACKLOG_FRAMES;
        if self.fifo.len() > max {
            let excess = self.fifo.len() - FRAME_SAMPLES * 2;
            self.fifo.drain(..excess);
        }
        if self.fifo.len() < FRAME_SAMPLES {
            frame.fill(0);
            self.underruns += 1;
            return Ok(SourceStatus::Underrun);
        }
        for (dst, src) in frame.iter_mut().zip(self.fifo.drain(..FRAME_SAMPLES)) {
            *dst = src;
        }
        Ok(SourceStatus::Audio)
    }
}

struct OutputStream {
    stream: cpal::Stream,
    producer: rtrb::Producer<f32>,
    shared: Arc<Shared>,
    rate: u32,
    channels: u16,
    name: String,
}

fn open_output(selector: &DeviceSelector) -> Result<OutputStream, DeviceError> {
    let device = find_device(selector, false)?;
    let supported = choose_config(&device, false)?;
    let config = stream_config(&supported);
    let (producer, consumer) =
        rtrb::RingBuffer::new((config.sample_rate * RING_MS / 1000) as usize);
    let shared = Arc::new(Shared::default());
    let channels = usize::from(config.channels.max(1));
    let prime = (config.sample_rate * PRIME_MS / 1000) as usize;
    let stream = match supported.sample_format() {
        SampleFormat::F32 => {
            build_output::<f32>(&device, &config, channels, prime, consumer, shared.clone())
        }
        SampleFormat::I16 => {
            build_output::<i16>(&device, &config, channels, prime, consumer, shared.clone())
        }
        SampleFormat::I32 => {
            build_output::<i32>(&device, &config, channels, prime, consumer, shared.clone())
        }
        SampleFormat::U16 => {
            build_output::<u16>(&device, &config, channels, prime, consumer, shared.clone())
        }
        SampleFormat::U8 => {
            build_output::<u8>(&device, &config, channels, prime, consumer, shared.clone())
        }
        other => {
            return Err(DeviceError::NoConfig {
                device: device_name(&device),
                reason: format!("sample format {other} not supported"),
            });
        }
    }?;
    stream.play().map_err(backend)?;
    Ok(OutputStream {
        stream,
        producer,
        shared,
        rate: config.sample_rate,
        channels: config.channels,
        name: device_name(&device),
    })
}

fn build_output<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    channels: usize,
    prime: usize,
    mut consumer: rtrb::Consumer<f32>,
    shared: Arc<Shared>,
) -> Result<cpal::Stream, DeviceError>
where
    T: SizedSample + FromSample<f32> + Send + 'static,
{
    let counters = shared.clone();
    let mut primed = false;
    device
        .build_output_stream::<T, _, _>(
            *config,
            move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
                // Real-time context: no locks, no allocation.
                if !primed && consumer.slots() >= prime {
                    primed = true;
                }
                let mut short = false;
                for frame in data.chunks_exact_mut(channels) {
                    let v = if primed {
                        match consumer.pop() {
                            Ok(v) => v,
                            Err(_) => {
                                short = true;
                                primed = false;
                                0.0
                            }
                        }
                    } else {
                        0.0
                    };
                    let s = T::from_sample(v);
                    frame.fill(s);
                }
                if short {
                    counters.underruns.fetch_add(1, Ordering::Relaxed);
                }
            },
            error_callback(shared),
            None,
        )
        .map_err(backend)
}

/// Plays 20 ms frames of 48 kHz mono on a cpal output device.
pub struct CpalSink {
    selector: DeviceSelector,
    stream: Option<OutputStream>,
    resampler: Resampler,
    converted: Vec<f32>,
    input: Vec<f32>,
    last_attempt: Instant,
    reported: bool,
    stats: DeviceStats,
    /// Consecutive writes that found the queue full (the device does not drain it).
    blocked: u32,
}

impl std::fmt::Debug for CpalSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CpalSink")
            .field("selector", &self.selector)
            .field("device", &self.stream.as_ref().map(|s| &s.name))
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl CpalSink {
    /// Opens and starts an output device.
    pub fn open(selector: DeviceSelector) -> Result<CpalSink, DeviceError> {
        let stream = open_output(&selector)?;
        Ok(CpalSink {
            selector,
            resampler: Resampler::new(SAMPLE_RATE, stream.rate),
            stream: Some(stream),
            converted: Vec::with_capacity(FRAME_SAMPLES * 4),
            input: Vec::with_capacity(FRAME_SAMPLES),
            last_attempt: Instant::now(),
            reported: false,
            stats: DeviceStats::default(),
            blocked: 0,
        })
    }

    /// The device's name, rate and channel count, while open.
    pub fn format(&self) -> Option<(&str, u32, u16)> {
        self.stream
            .as_ref()
            .map(|s| (s.name.as_str(), s.rate, s.channels))
    }

    /// Counters.
    pub fn stats(&self) -> DeviceStats {
        let mut st = self.stats;
        if let Some(s) = &self.stream {
            st.errors += s.shared.errors.load(Ordering::Relaxed);
            st.overflows += s.shared.overflows.load(Ordering::Relaxed);
            st.underruns += s.shared.underruns.load(Ordering::Relaxed);
        }
        st
    }

    /// Audio queued for the device, in ms.
    pub fn queued_ms(&self) -> u32 {
        self.stream.as_ref().map_or(0, |s| {
            let queued = s.producer.buffer().capacity() - s.producer.slots();
            (queued as u64 * 1000 / u64::from(s.rate)) as u32
        })
    }

    fn retire(&mut self) {
        if let Some(s) = self.stream.take() {
            self.stats.errors += s.shared.errors.load(Ordering::Relaxed);
            self.stats.overflows += s.shared.overflows.load(Ordering::Relaxed);
            self.stats.underruns += s.shared.underruns.load(Ordering::Relaxed);
            drop_elsewhere(s.stream);
        }
    }
}

impl AudioSink for CpalSink {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        check_frame(frame.len())?;
        let stalled = self.blocked >= STALL_FRAMES;
        let failed = stalled
            || self
                .stream
                .as_ref()
                .is_none_or(|s| s.shared.failed.load(Ordering::Acquire));
        if failed {
            let name = self.stream.as_ref().map(|s| s.name.clone());
            let cause = self
                .stream
                .as_ref()
                .and_then(|s| s.shared.failure.get().cloned());
            self.retire();
            self.blocked = 0;
            if !self.reported {
                self.reported = true;
                self.last_attempt = Instant::now();
                let message = match (stalled, cause) {
                    (true, _) => "the output stream played nothing for 4 s".to_owned(),
                    (false, Some(cause)) => format!("the output stream stopped ({cause})"),
                    (false, None) => "the output stream stopped".to_owned(),
                };
                return Err(DeviceError::StreamFailed {
                    device: name.unwrap_or_else(|| self.selector.to_string()),
                    message,
                });
            }
            if self.last_attempt.elapsed() >= REOPEN_EVERY {
                self.last_attempt = Instant::now();
                if let Ok(stream) = open_output(&self.selector) {
                    self.resampler = Resampler::new(SAMPLE_RATE, stream.rate);
                    self.stream = Some(stream);
                    self.stats.reopens += 1;
                    self.reported = false;
                }
            }
            if self.stream.is_none() {
                return Ok(());
            }
        }
        if self.queued_ms() > MAX_QUEUED_MS {
            self.stats.overflows += frame.len() as u64;
            self.blocked += 1;
            return Ok(());
        }
        self.blocked = 0;
        self.input.clear();
        self.input
            .extend(frame.iter().map(|&s| s.to_sample::<f32>()));
        self.converted.clear();
        self.resampler.process_f32(&self.input, &mut self.converted);
        let stream = self
            .stream
            .as_mut()
            .expect("reopened or never failed, checked above");
        let n = self.converted.len().min(stream.producer.slots());
        if let Ok(chunk) = stream.producer.write_chunk_uninit(n) {
            chunk.fill_from_iter(self.converted[..n].iter().copied());
        }
        self.stats.overflows += (self.converted.len() - n) as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_parsing() {
        assert_eq!(DeviceSelector::parse(""), DeviceSelector::Default);
        assert_eq!(DeviceSelector::parse("Default"), DeviceSelector::Default);
        assert_eq!(
            DeviceSelector::parse("alsa:null"),
            DeviceSelector::Id("alsa:null".into())
        );
        assert_eq!(
            DeviceSelector::parse("USB Headset"),
            DeviceSelector::Name("USB Headset".into())
        );
    }

    fn device(id: &str, input: bool, output: bool) -> DeviceInfo {
        DeviceInfo {
            id: id.into(),
            name: id.into(),
            input,
            output,
            default_input: false,
            default_output: false,
        }
    }

    fn default(id: &str) -> Option<(String, String)> {
        Some((id.into(), "Default Audio Device".into()))
    }

    /// The listed defaults are marked, each for its direction.
    #[test]
    fn the_default_devices_are_marked() {
        let mut list = vec![
            device("alsa:hw:0,0", true, true),
            device("alsa:pulse", true, true),
            device("alsa:hw:1,0", false, true),
        ];
        mark_defaults(&mut list, default("alsa:pulse"), true);
        mark_defaults(&mut list, default("alsa:hw:1,0"), false);
        let marked: Vec<(&str, bool, bool)> = list
            .iter()
            .map(|d| (d.id.as_str(), d.default_input, d.default_output))
            .collect();
        assert_eq!(
            marked,
            [
                ("alsa:hw:0,0", false, false),
                ("alsa:pulse", true, false),
                ("alsa:hw:1,0", false, true),
            ]
        );
    }

    /// ALSA's `default` (what cpal opens for the default device) is listed only when the ALSA
    /// configuration gives it a hint: when the list lacks it, it is added, first, marked for
    /// both directions, so that `tincan devices` always shows which device a call uses.
    #[test]
    fn a_default_missing_from_the_list_is_added_and_marked() {
        let mut list = vec![device("alsa:hw:0,0", true, true)];
        mark_defaults(&mut list, default("alsa:default"), true);
        mark_defaults(&mut list, default("alsa:default"), false);
        assert_eq!(list.len(), 2, "{list:?}");
        let d = &list[0];
        assert_eq!(d.id, "alsa:default");
        assert_eq!(d.name, "Default Audio Device");
        assert!(
            d.input && d.output && d.default_input && d.default_output,
            "{d:?}"
        );
        assert!(!list[1].default_input && !list[1].default_output);
        // None: nothing marked, nothing added.
        mark_defaults(&mut list, None, true);
        assert_eq!(list.len(), 2);
    }
}
