//! Shared by the session and end-to-end tests: a seeded simulated network in virtual time,
//! tone generation and analysis (Goertzel, RMS).
#![allow(dead_code, clippy::disallowed_methods)]

use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tincan_media::rtp::PortKind;

/// xorshift64*: the network's deterministic randomness.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A datagram in flight.
#[derive(Debug, PartialEq, Eq)]
pub struct InFlight {
    pub deliver_at: Instant,
    pub order: u64,
    pub from: SocketAddr,
    pub to: SocketAddr,
    pub kind: PortKind,
    pub bytes: Vec<u8>,
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Min-heap on delivery time, then send order.
        other
            .deliver_at
            .cmp(&self.deliver_at)
            .then(other.order.cmp(&self.order))
    }
}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One direction's impairments.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Independent loss probability per datagram.
    pub loss: f64,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in [0, jitter]; reorders packets when larger than the spacing.
    pub jitter: Duration,
}

impl Impairment {
    pub fn clean(delay: Duration) -> Self {
        Self {
            loss: 0.0,
            delay,
            jitter: Duration::ZERO,
        }
    }
}

/// A seeded network: every datagram is lost or delivered after delay + jitter.
pub struct Network {
    rng: Rng,
    queue: BinaryHeap<InFlight>,
    order: u64,
    pub impairment: Impairment,
    pub sent: u64,
    pub dropped: u64,
    /// Don't drop RTCP (keeps the loss figures about the audio only).
    pub spare_rtcp: bool,
}

impl Network {
    pub fn new(seed: u64, impairment: Impairment) -> Self {
        Self {
            rng: Rng::new(seed),
            queue: BinaryHeap::new(),
            order: 0,
            impairment,
            sent: 0,
            dropped: 0,
            spare_rtcp: true,
        }
    }

    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.sent += 1;
        let rtcp = tincan_media::rtp::is_rtcp(&bytes);
        if !(rtcp && self.spare_rtcp) && self.rng.unit() < self.impairment.loss {
            self.dropped += 1;
            return;
        }
        let jitter = self.impairment.jitter.mul_f64(self.rng.unit());
        self.order += 1;
        // The receiving port: RTP (even) or RTCP (odd) by the destination port number.
        let kind = if to.port().is_multiple_of(2) {
            PortKind::Rtp
        } else {
            PortKind::Rtcp
        };
        self.queue.push(InFlight {
            deliver_at: now + self.impairment.delay + jitter,
            order: self.order,
            from,
            to,
            kind,
            bytes,
        });
    }

    /// The next datagram due at or before `now`.
    pub fn deliver(&mut self, now: Instant) -> Option<InFlight> {
        if self.queue.peek().is_some_and(|p| p.deliver_at <= now) {
            self.queue.pop()
        } else {
            None
        }
    }
}

/// A sine tone at 48 kHz, continuous across frames (or white noise, see [`Tone::noise`]).
pub struct Tone {
    pub frequency: f64,
    pub amplitude: f64,
    pub n: u64,
    /// Uniform white noise of this amplitude instead of the sine, when set.
    pub noise: Option<Rng>,
}

impl Tone {
    pub fn new(frequency: f64, amplitude: f64) -> Self {
        Self {
            frequency,
            amplitude,
            n: 0,
            noise: None,
        }
    }
    /// White noise (an encoder's worst case: VBR codecs spend their whole bitrate on it).
    pub fn noise(amplitude: f64, seed: u64) -> Self {
        Self {
            noise: Some(Rng::new(seed)),
            ..Self::new(0.0, amplitude)
        }
    }
    pub fn frame(&mut self) -> Vec<i16> {
        if let Some(rng) = self.noise.as_mut() {
            let a = self.amplitude;
            return (0..960)
                .map(|_| ((rng.unit() * 2.0 - 1.0) * a) as i16)
                .collect();
        }
        (0..960)
            .map(|_| {
                let t = self.n as f64 / 48_000.0;
                self.n += 1;
                (self.amplitude * (2.0 * std::f64::consts::PI * self.frequency * t).sin()) as i16
            })
            .collect()
    }
}

pub fn rms(x: &[i16]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
}

pub fn db(ratio: f64) -> f64 {
    20.0 * ratio.log10()
}

/// Share of the signal's energy at `frequency` (Goertzel), 1.0 for a pure tone.
pub fn tone_purity(x: &[i16], frequency: f64, rate: f64) -> f64 {
    let n = x.len() as f64;
    let w = 2.0 * std::f64::consts::PI * frequency / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let energy: f64 = x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
    if energy == 0.0 {
        0.0
    } else {
        power / (energy * n / 2.0)
    }
}

/// The dominant frequency by zero crossings (Hz).
pub fn zero_crossing_frequency(x: &[i16], rate: f64) -> f64 {
    let crossings = x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (x.len() as f64 / rate)
}

/// Two sessions wired through a [`Network`], stepped in 1 ms of virtual time.
pub struct Pair {
    pub t0: Instant,
    pub now: Instant,
    pub a: tincan_media::session::MediaSession,
    pub b: tincan_media::session::MediaSession,
    /// Where A's and B's packets come from (their RTP ports; RTCP from port + 1).
    pub a_addr: SocketAddr,
    pub b_addr: SocketAddr,
    pub net: Network,
    pub events_a: Vec<tincan_media::session::MediaEvent>,
    pub events_b: Vec<tincan_media::session::MediaEvent>,
    pub played_a: Vec<i16>,
    pub played_b: Vec<i16>,
    /// Frames A and B capture each 20 ms (None: don't call send_frame).
    pub source_a: Option<Tone>,
    pub source_b: Option<Tone>,
}

impl Pair {
    pub fn new(
        t0: Instant,
        a: tincan_media::session::MediaSession,
        b: tincan_media::session::MediaSession,
        a_addr: SocketAddr,
        b_addr: SocketAddr,
        net: Network,
    ) -> Self {
        Self {
            t0,
            now: t0,
            a,
            b,
            a_addr,
            b_addr,
            net,
            events_a: Vec::new(),
            events_b: Vec::new(),
            played_a: Vec::new(),
            played_b: Vec::new(),
            source_a: Some(Tone::new(1000.0, 8000.0)),
            source_b: Some(Tone::new(440.0, 8000.0)),
        }
    }

    fn for_b(&self, to: SocketAddr) -> bool {
        to.ip() == self.b_addr.ip() && to.port() / 2 == self.b_addr.port() / 2
    }

    /// Runs `ms` milliseconds of virtual time.
    pub fn run(&mut self, ms: u64) {
        for _ in 0..ms {
            let now = self.now;
            while let Some(p) = self.net.deliver(now) {
                if self.for_b(p.to) {
                    self.b.handle_packet(now, p.from, p.kind, &p.bytes);
                } else {
                    self.a.handle_packet(now, p.from, p.kind, &p.bytes);
                }
            }
            let elapsed = now.duration_since(self.t0).as_millis();
            if elapsed.is_multiple_of(20) {
                if let Some(t) = self.source_a.as_mut() {
                    self.a.send_frame(now, &t.frame()).expect("send a");
                }
                if let Some(t) = self.source_b.as_mut() {
                    self.b.send_frame(now, &t.frame()).expect("send b");
                }
                self.played_a.extend(self.a.playout(now));
                self.played_b.extend(self.b.playout(now));
            }
            for (s, from, events) in [
                (&mut self.a, self.a_addr, &mut self.events_a),
                (&mut self.b, self.b_addr, &mut self.events_b),
            ] {
                if s.poll_timeout().is_some_and(|t| t <= now) {
                    s.handle_timeout(now);
                }
                while let Some(t) = s.poll_transmit() {
                    let mut src = from;
                    if t.kind == PortKind::Rtcp {
                        src.set_port(from.port() + 1);
                    }
                    self.net.send(now, src, t.to, t.bytes);
                }
                while let Some(e) = s.poll_event() {
                    events.push(e);
                }
            }
            self.now += Duration::from_millis(1);
        }
    }
}

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}
