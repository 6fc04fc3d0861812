//! Per-SSRC receive state: RFC 3550 Appendix A.1 (sequence validation, extended sequence
//! numbers), A.3 (expected and lost packets) and A.8 (interarrival jitter).

use std::time::{Duration, Instant};

/// RFC 3550 A.1: a jump of less than this many packets ahead is accepted as loss.
pub const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: a sequence number up to this far behind is a reordered or duplicate packet.
pub const MAX_MISORDER: u16 = 100;
/// RFC 3550 A.1: consecutive packets needed before a new source is valid.
pub const MIN_SEQUENTIAL: u16 = 2;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What [`ReceiveStream::update`] made of a packet's sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceOutcome {
    /// In order (or after a loss gap smaller than [`MAX_DROPOUT`]); counted.
    InOrder,
    /// Older than the highest sequence seen: reordered or duplicate; counted (A.1 counts them).
    Late,
    /// The source is still on probation (RFC 3550 A.1); not yet counted.
    Probation,
    /// A very large jump: ignored once; if the next packet follows it the stream restarted.
    BadJump,
    /// Two packets in sequence after a large jump: the sender restarted; state was reset.
    Restarted,
}

impl SequenceOutcome {
    /// Whether the packet should go on to the jitter buffer.
    pub fn is_playable(self) -> bool {
        !matches!(self, Self::BadJump)
    }
}

/// Reception statistics of one remote source, and the fields of an RTCP report block for it.
#[derive(Debug, Clone)]
pub struct ReceiveStream {
    ssrc: u32,
    clock_rate: u32,
    epoch: Instant,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u16,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the previous packet, in timestamp units (None before the first).
    transit: Option<u32>,
    /// Jitter estimate scaled by 16 (RFC 3550 A.8, integer version).
    jitter_q4: u32,
    /// Packets received, including probation and late ones (not in A.1's `received`).
    packets: u64,
    /// Payload octets received.
    octets: u64,
    /// Middle 32 bits of the NTP timestamp of the last SR from this source, and when it came.
    last_sr: Option<(u32, Instant)>,
}

/// The RTCP reception report block fields for one source (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256 (RFC 3550 A.3).
    pub fraction_lost: u8,
    /// Cumulative packets lost, a 24-bit signed value clamped to 0x7fffff / -0x800000.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | max_seq).
    pub extended_highest_sequence: u32,
    /// Interarrival jitter in timestamp units (RFC 3550 A.8).
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received (0 if none).
    pub last_sr: u32,
    /// Delay since that SR in 1/65536 s (0 if none).
    pub delay_since_last_sr: u32,
}

impl ReceiveStream {
    /// Starts tracking `ssrc` with the packet carrying `first_sequence` (RFC 3550 A.1: the
    /// source is put on probation). `epoch` is an arbitrary fixed instant from which arrival
    /// times are measured in `clock_rate` units.
    pub fn new(ssrc: u32, first_sequence: u16, clock_rate: u32, epoch: Instant) -> Self {
        let mut s = Self {
            ssrc,
            clock_rate: clock_rate.max(1),
            epoch,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter_q4: 0,
            packets: 0,
            octets: 0,
            last_sr: None,
        };
        s.init_seq(first_sequence);
        s.max_seq = first_sequence.wrapping_sub(1);
        s
    }

    /// The source's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// RFC 3550 A.1 `update_seq`, plus the A.8 jitter update for packets that count.
    ///
    /// `timestamp` is the packet's RTP timestamp, `payload_len` its payload size, `now` its
    /// arrival time.
    pub fn update(
        &mut self,
        sequence: u16,
        timestamp: u32,
        payload_len: usize,
        now: Instant,
    ) -> SequenceOutcome {
        self.packets += 1;
        self.octets += payload_len as u64;
        let seq = sequence;
        let udelta = seq.wrapping_sub(self.max_seq);
        let outcome = if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    SequenceOutcome::InOrder
                } else {
                    SequenceOutcome::Probation
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
                SequenceOutcome::Probation
            }
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                // Sequence number wrapped: count another 64K cycle.
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
            self.received += 1;
            SequenceOutcome::InOrder
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: assume the other side restarted without telling us.
                self.init_seq(seq);
                self.received += 1;
                self.transit = None;
                SequenceOutcome::Restarted
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return SequenceOutcome::BadJump;
            }
        } else {
            // Duplicate or reordered packet.
            self.received += 1;
            SequenceOutcome::Late
        };
        self.update_jitter(timestamp, now);
        outcome
    }

    /// RFC 3550 A.8: `J += (|D| - J) / 16`, integer arithmetic with J scaled by 16.
    fn update_jitter(&mut self, timestamp: u32, now: Instant) {
        let arrival = self.arrival_units(now);
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(prev) = self.transit {
            let d = transit.wrapping_sub(prev) as i32;
            let d = d.unsigned_abs();
            // jitter += d - ((jitter + 8) >> 4), in the scaled domain.
            self.jitter_q4 = self
                .jitter_q4
                .wrapping_add(d)
                .wrapping_sub((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    fn arrival_units(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.epoch);
        (elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32
    }

    /// Records an RTCP sender report from this source: the middle 32 bits of its NTP time.
    pub fn record_sender_report(&mut self, ntp_time: u64, now: Instant) {
        self.last_sr = Some(((ntp_time >> 16) as u32, now));
    }

    /// Extended highest sequence number received (RFC 3550 A.1).
    pub fn extended_highest_sequence(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// The extended (32-bit, cycle-counted) number of a packet's sequence number, taken
    /// relative to the highest seen: a number up to half the space behind it belongs to the
    /// same or the previous cycle.
    pub fn extended_sequence(&self, sequence: u16) -> u32 {
        let highest = self.extended_highest_sequence();
        let delta = sequence.wrapping_sub(self.max_seq) as i16;
        highest.wrapping_add(delta as i32 as u32)
    }

    /// Packets expected so far (RFC 3550 A.3).
    pub fn expected(&self) -> u32 {
        if self.probation > 0 {
            return 0;
        }
        self.extended_highest_sequence()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// Cumulative number of packets lost (RFC 3550 A.3), negative when duplicates arrived.
    pub fn cumulative_lost(&self) -> i64 {
        i64::from(self.expected()) - i64::from(self.received)
    }

    /// Interarrival jitter in timestamp units.
    pub fn jitter(&self) -> u32 {
        self.jitter_q4 >> 4
    }

    /// Interarrival jitter as a duration.
    pub fn jitter_duration(&self) -> Duration {
        Duration::from_nanos(u64::from(self.jitter()) * 1_000_000_000 / u64::from(self.clock_rate))
    }

    /// All packets that arrived from this source (including probation and late ones).
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Payload octets received from this source.
    pub fn octets(&self) -> u64 {
        self.octets
    }

    /// Builds the report block for this source and starts a new reporting interval
    /// (RFC 3550 A.3: fraction lost is over the interval since the previous report).
    pub fn report_block(&mut self, now: Instant) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let cumulative_lost = self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as i32;
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => {
                let delay = now.saturating_duration_since(at);
                (lsr, duration_to_q16(delay))
            }
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost,
            extended_highest_sequence: self.extended_highest_sequence(),
            jitter: self.jitter(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

/// A duration in units of 1/65536 s (the DLSR unit), saturating.
pub(crate) fn duration_to_q16(d: Duration) -> u32 {
    let v = d.as_nanos() * 65_536 / 1_000_000_000;
    v.min(u128::from(u32::MAX)) as u32
}

#[cfg(test)]
// Tests need an arbitrary epoch; everything after it is virtual time.
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn feed(s: &mut ReceiveStream, seqs: &[u16], t0: Instant) -> Vec<SequenceOutcome> {
        seqs.iter()
            .map(|&q| s.update(q, u32::from(q) * 160, 160, t0))
            .collect()
    }

    #[test]
    fn probation_then_counting() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(1, 1000, 8000, t0);
        let out = feed(&mut s, &[1000, 1001, 1002], t0);
        assert_eq!(
            out,
            [
                SequenceOutcome::Probation,
                SequenceOutcome::InOrder,
                SequenceOutcome::InOrder
            ]
        );
        // base_seq is 1001 (A.1 init_seq on the packet ending probation).
        assert_eq!(s.expected(), 2);
        assert_eq!(s.cumulative_lost(), 0);
        assert_eq!(s.packets(), 3);
    }

    #[test]
    fn extended_sequence_across_wrap() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(1, 65_533, 8000, t0);
        feed(&mut s, &[65_533, 65_534, 65_535, 0, 1], t0);
        assert_eq!(s.extended_highest_sequence(), 65_536 + 1);
        // Counted from 65534: 65534, 65535, 0, 1 -> expected 4, received 4.
        assert_eq!(s.expected(), 4);
        assert_eq!(s.cumulative_lost(), 0);
        // A late packet from before the wrap does not go back a cycle.
        assert_eq!(s.update(65_535, 0, 0, t0), SequenceOutcome::Late);
        assert_eq!(s.extended_highest_sequence(), 65_537);
        assert_eq!(
            s.cumulative_lost(),
            -1,
            "a duplicate makes loss negative (A.3)"
        );
    }

    #[test]
    fn fraction_and_cumulative_loss_hand_computed() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(9, 10, 8000, t0);
        // 10..=29 with 12, 13, 20 missing: after probation base is 11, highest 29:
        // expected 19, received 16 -> lost 3; fraction = 3*256/19 = 40 (integer).
        let seqs: Vec<u16> = (10..=29).filter(|q| ![12, 13, 20].contains(q)).collect();
        feed(&mut s, &seqs, t0);
        let b = s.report_block(t0);
        assert_eq!(b.extended_highest_sequence, 29);
        assert_eq!(b.cumulative_lost, 3);
        assert_eq!(b.fraction_lost, 40);
        // Next interval: 30..=39 with 35 missing: expected 10, received 9 -> 256/10 = 25.
        let seqs: Vec<u16> = (30..=39).filter(|&q| q != 35).collect();
        feed(&mut s, &seqs, t0);
        let b = s.report_block(t0);
        assert_eq!(b.cumulative_lost, 4);
        assert_eq!(b.fraction_lost, 25);
        // Nothing new: fraction 0.
        assert_eq!(s.report_block(t0).fraction_lost, 0);
    }

    #[test]
    fn extended_numbers_of_late_packets() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(1, 65_534, 8000, t0);
        feed(&mut s, &[65_534, 65_535, 0, 1], t0);
        assert_eq!(s.extended_sequence(1), 65_537);
        assert_eq!(s.extended_sequence(65_535), 65_535);
        assert_eq!(s.extended_sequence(5), 65_541);
    }

    #[test]
    fn restart_after_large_jump() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(9, 100, 8000, t0);
        feed(&mut s, &[100, 101, 102], t0);
        assert_eq!(s.update(40_000, 0, 0, t0), SequenceOutcome::BadJump);
        assert_eq!(s.update(40_001, 0, 0, t0), SequenceOutcome::Restarted);
        assert_eq!(s.update(40_002, 0, 0, t0), SequenceOutcome::InOrder);
        assert_eq!(s.expected(), 2);
        assert_eq!(s.cumulative_lost(), 0);
    }

    #[test]
    fn jitter_hand_computed() {
        // 8 kHz clock, 20 ms packets (160 units). Arrival offsets: 0, 20, 50, 60 ms
        // Transit differences D: (160-160)=0, (400-160)... computed in units:
        // arrivals 0, 160, 400, 480; timestamps 0, 160, 320, 480 -> transit 0, 0, 80, 0.
        // D = 0, 80, 80. J (scaled by 16): 0 -> 0 + 0 - 0 = 0 -> 0 + 80 - 0 = 80
        // -> 80 + 80 - ((80+8)>>4 = 5) = 155. Reported J = 155 >> 4 = 9.
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(5, 0, 8000, t0);
        let arrivals = [0u64, 20, 50, 60];
        for (i, ms) in arrivals.iter().enumerate() {
            s.update(
                i as u16,
                i as u32 * 160,
                160,
                t0 + Duration::from_millis(*ms),
            );
        }
        assert_eq!(s.jitter(), 9);
        assert_eq!(s.jitter_duration(), Duration::from_micros(1125));
    }

    #[test]
    fn lsr_and_dlsr() {
        let t0 = Instant::now();
        let mut s = ReceiveStream::new(5, 0, 8000, t0);
        s.record_sender_report(0x0123_4567_89ab_cdef, t0);
        let b = s.report_block(t0 + Duration::from_millis(500));
        assert_eq!(b.last_sr, 0x4567_89ab);
        assert_eq!(b.delay_since_last_sr, 32_768);
    }
}
