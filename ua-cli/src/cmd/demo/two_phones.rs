//! The demo: two Tincan phones in one process on loopback, one calls the other over SIP with
//! SRTP and Opus, a voice-like signal flows both ways, and the received audio is compared
//! with what was sent. Binary code: it uses the `tincan` library's public API only.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tincan_media::SAMPLE_RATE;
use tincan_media::codec::CodecKind;
use tincan_media::device::{AudioSink, AudioSource, DeviceError, SourceStatus, VoiceSource};
use tincan_media::sdp::SrtpPolicy;

use tincan::phone::driver::{CallOptions, Phone, StartError};
use tincan::phone::{CallEvent, EndReason, PhoneConfig, PhoneError, PhoneEvent, Quality};

/// Loudness of the demo's voice signal.
const VOICE_DBFS: f64 = -12.0;

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    /// Seconds of conversation.
    pub seconds: f64,
    /// The codec.
    pub codec: CodecKind,
    /// SRTP policy of both phones.
    pub srtp: SrtpPolicy,
    /// Sees every SIP message of both phones (`tincan --sip-trace FILE demo`).
    pub sip_trace: Option<tincan_sip::driver::Tracer>,
}

impl Default for DemoConfig {
    fn default() -> Self {
        DemoConfig {
            seconds: 5.0,
            codec: CodecKind::Opus,
            srtp: SrtpPolicy::Required,
            sip_trace: None,
        }
    }
}

/// How one direction's audio arrived.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct AudioCheck {
    /// Seconds of audio received (played out).
    pub received_s: f64,
    /// Share of the sent talkspurts found again in what arrived, with the right waveform
    /// (0-1): the voiced 0.25 s pieces whose best-aligned correlation with the sent signal
    /// is >= 0.7.
    pub matched: f64,
    /// Median correlation of those pieces with the sent signal.
    pub correlation: f64,
    /// Delay between sending and playout, milliseconds.
    pub delay_ms: f64,
    /// Whether the audio arrived intact (at least 80 % of the pieces matched).
    pub intact: bool,
}

/// The demo's outcome.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoReport {
    /// Milliseconds from INVITE to answer.
    pub setup_ms: u64,
    /// The codec.
    pub codec: String,
    /// Whether media was SRTP.
    pub srtp: bool,
    /// Caller-side quality at the end.
    pub caller: Quality,
    /// Callee-side quality at the end.
    pub callee: Quality,
    /// Audio from caller to callee.
    pub caller_to_callee: AudioCheck,
    /// Audio from callee to caller.
    pub callee_to_caller: AudioCheck,
    /// Why the call ended (`local_hangup` is a normal end).
    pub ended: String,
}

impl DemoReport {
    /// Whether the call connected, ended normally and the audio arrived intact both ways.
    pub fn ok(&self) -> bool {
        self.ended == "local_hangup" && self.caller_to_callee.intact && self.callee_to_caller.intact
    }
}

/// A sink that keeps every sample it is given.
#[derive(Debug, Clone, Default)]
pub struct CaptureSink {
    samples: Arc<Mutex<Vec<i16>>>,
}

impl CaptureSink {
    /// An empty capture.
    pub fn new() -> CaptureSink {
        CaptureSink::default()
    }

    /// What was captured so far.
    pub fn samples(&self) -> Vec<i16> {
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl AudioSink for CaptureSink {
    fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
        self.samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(frame);
        Ok(())
    }
}

/// The demo's voice signal, ended after `seconds`.
struct TimedVoice {
    voice: VoiceSource,
    left: u64,
}

impl AudioSource for TimedVoice {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        if self.left == 0 {
            frame.fill(0);
            return Ok(SourceStatus::Audio);
        }
        self.left = self.left.saturating_sub(frame.len() as u64);
        self.voice.read_frame(frame)
    }
}

/// The reference: what the voice source produces, `len` samples.
pub fn voice_reference(len: usize) -> Vec<i16> {
    let mut v = VoiceSource::new(VOICE_DBFS);
    let mut out = vec![0i16; len.div_ceil(960) * 960];
    for chunk in out.chunks_mut(960) {
        let _ = v.read_frame(chunk);
    }
    out.truncate(len);
    out
}

/// Normalized correlation of `a` and `b` over every `step`-th sample (2 for the coarse search).
fn corr(a: &[i16], b: &[i16], step: usize) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b).step_by(step) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        0.0
    } else {
        ab / (aa * bb).sqrt()
    }
}

/// Compares received audio with the sent reference: finds the delay, then checks each voiced
/// quarter second of the reference for its best-aligned correlation in what arrived, following
/// the delay as the jitter buffer changes it.
pub fn check_audio(received: &[i16], reference: &[i16]) -> AudioCheck {
    let rate = SAMPLE_RATE as usize;
    let mut check = AudioCheck {
        received_s: received.len() as f64 / rate as f64,
        ..AudioCheck::default()
    };
    // Coarse delay from 10 ms energy envelopes.
    let env = |s: &[i16]| -> Vec<f64> {
        s.chunks(rate / 100)
            .map(|c| (c.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / c.len() as f64).sqrt())
            .collect()
    };
    let (er, es) = (env(received), env(reference));
    let mut best = (0usize, f64::MIN);
    for lag in 0..er.len().min(200) {
        let n = es.len().min(er.len().saturating_sub(lag));
        if n < 50 {
            break;
        }
        let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
        for i in 0..n {
            ab += es[i] * er[i + lag];
            aa += es[i] * es[i];
            bb += er[i + lag] * er[i + lag];
        }
        let c = if aa > 0.0 && bb > 0.0 {
            ab / (aa * bb).sqrt()
        } else {
            0.0
        };
        if c > best.1 {
            best = (lag, c);
        }
    }
    // Then piece by piece, following the delay as the jitter buffer moves it (a concealed
    // or dropped frame shifts what follows by 20 ms).
    let mut lag = (best.0 * rate / 100) as isize;
    let piece = rate / 4;
    let slack = rate / 1000 * 60; // +-60 ms around the previous piece's delay
    let mut scores = Vec::new();
    let mut delays = Vec::new();
    let mut start = 0;
    while start + piece <= reference.len() {
        let r = &reference[start..start + piece];
        let energy: f64 = r.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / piece as f64;
        if energy.sqrt() < 300.0 {
            start += piece;
            continue;
        }
        if received.len() < piece {
            break;
        }
        let center = (start as isize + lag).max(0) as usize;
        let lo = center.saturating_sub(slack);
        let hi = (center + slack).min(received.len() - piece);
        if lo > hi {
            break;
        }
        let mut top = (lo, f64::MIN);
        let mut at = lo;
        while at <= hi {
            let c = corr(r, &received[at..at + piece], 2);
            if c > top.1 {
                top = (at, c);
            }
            at += 4;
        }
        let mut fine = (top.0, f64::MIN);
        for at in top.0.saturating_sub(4)..=(top.0 + 4).min(hi) {
            let c = corr(r, &received[at..at + piece], 1);
            if c > fine.1 {
                fine = (at, c);
            }
        }
        scores.push(fine.1);
        let found = fine.0 as isize - start as isize;
        delays.push(found as f64 * 1000.0 / rate as f64);
        if fine.1 >= 0.5 {
            lag = found;
        }
        start += piece;
    }
    if scores.is_empty() {
        return check;
    }
    let matched = scores.iter().filter(|&&c| c >= 0.7).count();
    check.matched = matched as f64 / scores.len() as f64;
    scores.sort_by(f64::total_cmp);
    delays.sort_by(f64::total_cmp);
    check.correlation = (scores[scores.len() / 2] * 1000.0).round() / 1000.0;
    check.delay_ms = delays[delays.len() / 2].round();
    check.intact = check.matched >= 0.8;
    check
}

/// Runs the demo; `on_event` sees every event of the caller's call (`"caller"`) and the
/// callee's (`"callee"`).
pub async fn run_demo(
    config: &DemoConfig,
    mut on_event: impl FnMut(&str, &CallEvent),
) -> Result<DemoReport, DemoError> {
    let phone = |user: &str| {
        let core = PhoneConfig {
            user: user.into(),
            codecs: vec![config.codec],
            srtp: config.srtp,
            ..PhoneConfig::default()
        };
        let mut b = Phone::builder()
            .config(core)
            .bind("127.0.0.1:0".parse().expect("a valid literal"));
        if let Some(t) = &config.sip_trace {
            b = b.sip_trace(t.clone());
        }
        b.start()
    };
    let mut caller = phone("alice").await?;
    let mut callee = phone("bob").await?;
    let bob = callee
        .local_addresses()
        .iter()
        .find(|(t, _)| *t == tincan_sip::transport::Transport::Udp)
        .map(|(_, a)| *a)
        .ok_or(DemoError::NoAddress)?;
    let samples = (config.seconds * f64::from(SAMPLE_RATE)) as u64;
    let caller_capture = CaptureSink::new();
    let callee_capture = CaptureSink::new();
    let options = CallOptions {
        source: Box::new(TimedVoice {
            voice: VoiceSource::new(VOICE_DBFS),
            left: samples,
        }),
        sink: Box::new(caller_capture.clone()),
        ..CallOptions::default()
    };
    let call = caller.call(&format!("sip:bob@{bob}"), options).await?;
    let callee_task = {
        let capture = callee_capture.clone();
        tokio::spawn(async move {
            let mut events = Vec::new();
            let mut taken = None;
            while let Some(ev) = callee.next_event().await {
                match ev {
                    PhoneEvent::Incoming(incoming) if taken.is_none() => {
                        let source = Box::new(TimedVoice {
                            voice: VoiceSource::new(VOICE_DBFS),
                            left: samples,
                        });
                        taken = Some(incoming.call);
                        if callee
                            .accept(incoming.call, source, Box::new(capture.clone()))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    PhoneEvent::Call { call, event } if Some(call) == taken => {
                        let end = matches!(event, CallEvent::Ended(_));
                        events.push(event);
                        if end {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            callee.shutdown().await;
            events
        })
    };
    let mut report = DemoReport {
        setup_ms: 0,
        codec: String::new(),
        srtp: false,
        caller: Quality::default(),
        callee: Quality::default(),
        caller_to_callee: AudioCheck::default(),
        callee_to_caller: AudioCheck::default(),
        ended: "timeout".into(),
    };
    let talk = Duration::from_secs_f64(config.seconds + 0.5);
    let mut hangup_at = None;
    let give_up = tokio::time::Instant::now() + talk + Duration::from_secs(20);
    loop {
        let ev = tokio::select! {
            ev = caller.next_event() => ev,
            () = async {
                match hangup_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            } => {
                hangup_at = None;
                let _ = caller.hangup(call).await;
                continue;
            }
            () = tokio::time::sleep_until(give_up) => {
                let _ = caller.hangup(call).await;
                None
            }
        };
        let Some(ev) = ev else { break };
        let PhoneEvent::Call { call: c, event: ev } = ev else {
            continue;
        };
        if c != call {
            continue;
        }
        on_event("caller", &ev);
        match &ev {
            CallEvent::Answered {
                setup, codec, srtp, ..
            } => {
                report.setup_ms = setup.as_millis() as u64;
                report.codec = codec.name().to_ascii_lowercase();
                report.srtp = *srtp;
                hangup_at = Some(tokio::time::Instant::now() + talk);
            }
            CallEvent::Ended(end) => {
                report.ended = end_reason(end.reason).into();
                report.caller = end.quality.clone();
                break;
            }
            _ => {}
        }
    }
    let callee_events = tokio::time::timeout(Duration::from_secs(10), callee_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    for ev in &callee_events {
        on_event("callee", ev);
        if let CallEvent::Ended(end) = ev {
            report.callee = end.quality.clone();
        }
    }
    caller.shutdown().await;
    let reference = voice_reference(samples as usize);
    report.caller_to_callee = check_audio(&callee_capture.samples(), &reference);
    report.callee_to_caller = check_audio(&caller_capture.samples(), &reference);
    Ok(report)
}

/// The reason of an end as the demo reports it (`local_hangup` is a normal end).
pub fn end_reason(reason: EndReason) -> &'static str {
    match reason {
        EndReason::Shutdown => "local_hangup",
        r => r.as_str(),
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A phone could not start.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The call could not be placed.
    #[error(transparent)]
    Call(#[from] PhoneError),
    /// The callee has no UDP address to call.
    #[error("the callee has no address")]
    NoAddress,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delayed_copy_is_intact_and_noise_is_not() {
        let reference = voice_reference(48_000 * 3);
        let mut delayed = vec![0i16; 4_800];
        delayed.extend_from_slice(&reference);
        let c = check_audio(&delayed, &reference);
        assert!(c.intact, "{c:?}");
        assert!((c.delay_ms - 100.0).abs() < 1.0, "{c:?}");
        let mut x = 1u32;
        let noise: Vec<i16> = (0..48_000 * 3)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 20) as i16 - 2048
            })
            .collect();
        assert!(!check_audio(&noise, &reference).intact);
        assert!(!check_audio(&[], &reference).intact);
    }
}
