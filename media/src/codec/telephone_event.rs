//! RFC 4733 telephone events (DTMF) over RTP: the payload format, a sender that paces
//! packets on the 20 ms media clock, and a receiver that reports each key press once.
//!
//! Payload (RFC 4733 §2.3): `event` (8 bits), `E` end bit, `R` reserved, `volume` (6 bits,
//! -dBm0), `duration` (16 bits, in RTP timestamp units since the event began).
//!
//! ```
//! use tincan_media::codec::telephone_event::{TelephoneEventSender, TelephoneEventReceiver, ReceivedEvent};
//!
//! let mut tx = TelephoneEventSender::new(8000);
//! tx.start('5', 100).unwrap(); // 100 ms key press
//! let mut rx = TelephoneEventReceiver::new();
//! let mut events = Vec::new();
//! let mut ts = 1000u32; // the media clock, advanced 160 per 20 ms
//! while let Some(packet) = tx.poll(ts) {
//!     events.extend(rx.handle(packet.timestamp, &packet.payload).unwrap());
//!     ts += 160;
//! }
//! assert_eq!(events, vec![
//!     ReceivedEvent::Started { digit: '5', timestamp: 1000 },
//!     ReceivedEvent::Ended { digit: '5', timestamp: 1000, duration: 800 },
//! ]);
//! ```

use super::CodecError;

/// The SDP encoding name: `a=rtpmap:101 telephone-event/8000`.
pub const ENCODING_NAME: &str = "telephone-event";

/// The usual `a=fmtp` for DTMF: events 0-15 (RFC 4733 §2.4.1).
pub const FMTP_DTMF: &str = "0-16";

/// How many times the final (end) packet is sent (RFC 4733 §2.5.1.4 recommends three).
pub const END_REPEATS: u32 = 3;

/// Default volume, in -dBm0 (RFC 4733 §2.3.4: 0 to 63; DTMF is typically around -10).
pub const DEFAULT_VOLUME: u8 = 10;

/// The event code for a DTMF key (RFC 4733 §3.2 table 7): `0`-`9`, `*` = 10, `#` = 11,
/// `A`-`D` = 12-15.
pub fn event_code(digit: char) -> Option<u8> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Some(d as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        d @ 'A'..='D' => Some(d as u8 - b'A' + 12),
        _ => None,
    }
}

/// The DTMF key for an event code, if it is one (see [`event_code`]).
pub fn event_digit(code: u8) -> Option<char> {
    match code {
        0..=9 => Some((b'0' + code) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + code - 12) as char),
        _ => None,
    }
}

/// One telephone-event payload (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code (0-255; 0-15 are DTMF).
    pub event: u8,
    /// The E bit: this packet ends the event.
    pub end: bool,
    /// Power level in -dBm0, 0 to 63.
    pub volume: u8,
    /// Duration so far, in RTP timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses a payload. Extra bytes (several events in one packet, RFC 4733 §2.5.1.5) are
    /// ignored: only the first event is taken.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, CodecError> {
        let [event, flags, d0, d1, ..] = *payload else {
            return Err(CodecError::Malformed {
                codec: ENCODING_NAME,
                reason: "shorter than 4 bytes",
            });
        };
        Ok(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The 4-byte payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        let flags = (u8::from(self.end) << 7) | (self.volume & 0x3F);
        [self.event, flags, d0, d1]
    }
}

/// One packet to send: its payload, the RTP timestamp to put in the header (the event's
/// start, the same for all packets of one event segment) and the marker bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// The payload.
    pub payload: [u8; 4],
    /// RTP timestamp for the header.
    pub timestamp: u32,
    /// RTP marker bit: set on the first packet of an event (RFC 4733 §2.5.1.1).
    pub marker: bool,
}

/// Why an event cannot be sent (caller misuse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// Not a DTMF key.
    #[error("{0:?} is not a dtmf key (0-9, *, #, a-d)")]
    NotDtmf(char),
}

#[derive(Debug, Clone)]
struct Sending {
    event: u8,
    /// Total duration to send, in timestamp units.
    total: u32,
    /// Timestamp of the current segment; `None` until the first packet.
    start: Option<u32>,
    /// Duration sent in earlier segments.
    earlier: u32,
    /// Duration of the current segment reported so far.
    sent: u32,
    /// End packets still to send.
    ends_left: u32,
}

/// Sends telephone events, one packet per call to [`TelephoneEventSender::poll`] (call it
/// every 20 ms of media time with the media clock's RTP timestamp, instead of an audio packet).
#[derive(Debug, Clone)]
pub struct TelephoneEventSender {
    clock_rate: u32,
    volume: u8,
    current: Option<Sending>,
    queue: std::collections::VecDeque<(u8, u32)>,
}

impl TelephoneEventSender {
    /// A sender for the negotiated telephone-event clock rate (usually 8000, or 48000
    /// alongside Opus).
    pub fn new(clock_rate: u32) -> TelephoneEventSender {
        TelephoneEventSender {
            clock_rate,
            volume: DEFAULT_VOLUME,
            current: None,
            queue: std::collections::VecDeque::new(),
        }
    }

    /// Queues a key press lasting `duration_ms` (at least 40 ms; RFC 4733 suggests 100 ms).
    pub fn start(&mut self, digit: char, duration_ms: u32) -> Result<(), EventError> {
        let code = event_code(digit).ok_or(EventError::NotDtmf(digit))?;
        let units = (duration_ms.max(40) as u64 * self.clock_rate as u64 / 1000) as u32;
        self.queue.push_back((code, units));
        Ok(())
    }

    /// Whether an event is being sent or queued (audio packets must pause meanwhile).
    pub fn is_active(&self) -> bool {
        self.current.is_some() || !self.queue.is_empty()
    }

    fn frame(&self) -> u32 {
        self.clock_rate / 50
    }

    /// The next packet for this 20 ms slot, or `None` when no event is in progress
    /// (send audio then). `media_timestamp` is the RTP timestamp the audio packet of this
    /// slot would have carried.
    pub fn poll(&mut self, media_timestamp: u32) -> Option<EventPacket> {
        if self.current.is_none() {
            let (event, total) = self.queue.pop_front()?;
            self.current = Some(Sending {
                event,
                total,
                start: None,
                earlier: 0,
                sent: 0,
                ends_left: END_REPEATS,
            });
        }
        let frame = self.frame();
        let volume = self.volume;
        let s = self.current.as_mut().expect("set just above when empty");
        let mut marker = false;
        let start = match s.start {
            Some(t) => t,
            None => {
                marker = true;
                s.start = Some(media_timestamp);
                media_timestamp
            }
        };
        if s.ends_left < END_REPEATS {
            // Retransmissions of the end packet: same duration, same timestamp.
            s.ends_left -= 1;
            let packet = EventPacket {
                payload: TelephoneEvent {
                    event: s.event,
                    end: true,
                    volume,
                    duration: s.sent as u16,
                }
                .to_bytes(),
                timestamp: start,
                marker: false,
            };
            if s.ends_left == 0 {
                self.current = None;
            }
            return Some(packet);
        }
        // RFC 4733 §2.5.1.3: a segment cannot exceed 0xFFFF units; start a new one (same
        // event, timestamp advanced by the old duration, no marker).
        let mut start = start;
        if s.sent + frame > u32::from(u16::MAX) {
            s.earlier += s.sent;
            start = start.wrapping_add(s.sent);
            s.start = Some(start);
            s.sent = 0;
        }
        s.sent += frame;
        let end = s.earlier + s.sent >= s.total;
        if end {
            s.ends_left -= 1;
        }
        Some(EventPacket {
            payload: TelephoneEvent {
                event: s.event,
                end,
                volume,
                duration: s.sent as u16,
            }
            .to_bytes(),
            timestamp: start,
            marker,
        })
    }
}

/// What the receiver reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceivedEvent {
    /// A key press began.
    Started {
        /// The key.
        digit: char,
        /// The event's RTP timestamp.
        timestamp: u32,
    },
    /// A key press ended (reported once, whatever the number of end packets).
    Ended {
        /// The key.
        digit: char,
        /// The event's RTP timestamp.
        timestamp: u32,
        /// Its duration in RTP timestamp units.
        duration: u16,
    },
}

/// Turns received telephone-event packets into key presses, each reported once: the
/// timestamp identifies an event, retransmitted end packets are ignored, and an event whose
/// end packets were all lost ends when the next event starts.
#[derive(Debug, Clone, Default)]
pub struct TelephoneEventReceiver {
    /// (timestamp, digit, last duration, ended)
    current: Option<(u32, char, u16, bool)>,
}

impl TelephoneEventReceiver {
    /// A new receiver.
    pub fn new() -> TelephoneEventReceiver {
        TelephoneEventReceiver::default()
    }

    /// Handles one packet (RTP timestamp and payload); returns what it started or ended.
    /// Non-DTMF events (codes above 15) are ignored.
    pub fn handle(
        &mut self,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<Vec<ReceivedEvent>, CodecError> {
        let ev = TelephoneEvent::parse(payload)?;
        let mut out = Vec::new();
        let Some(digit) = event_digit(ev.event) else {
            return Ok(out);
        };
        match self.current {
            Some((ts, d, _, ended)) if ts == timestamp && d == digit => {
                if ended {
                    return Ok(out);
                }
            }
            Some((ts, d, dur, ended)) => {
                // A new event; a later segment of a long event (RFC 4733 §2.5.1.3) has a
                // new timestamp but the same key and is a continuation.
                let continuation =
                    d == digit && !ended && timestamp.wrapping_sub(ts) <= u32::from(dur);
                if continuation {
                    self.current = Some((timestamp, d, ev.duration, false));
                } else {
                    if !ended {
                        out.push(ReceivedEvent::Ended {
                            digit: d,
                            timestamp: ts,
                            duration: dur,
                        });
                    }
                    out.push(ReceivedEvent::Started { digit, timestamp });
                    self.current = Some((timestamp, digit, ev.duration, false));
                }
            }
            None => {
                out.push(ReceivedEvent::Started { digit, timestamp });
                self.current = Some((timestamp, digit, ev.duration, false));
            }
        }
        if let Some(cur) = self.current.as_mut() {
            cur.2 = cur.2.max(ev.duration);
            if ev.end {
                cur.3 = true;
                out.push(ReceivedEvent::Ended {
                    digit,
                    timestamp: cur.0,
                    duration: cur.2,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        // RFC 4733 §2.3 layout: event 5, E=1, volume 10, duration 800.
        let ev = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(ev.to_bytes(), [0x05, 0x8A, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&ev.to_bytes()).unwrap(), ev);
        assert!(TelephoneEvent::parse(&[1, 2, 3]).is_err());
    }

    #[test]
    fn digits_map_both_ways() {
        for d in "0123456789*#ABCD".chars() {
            assert_eq!(event_digit(event_code(d).unwrap()), Some(d));
        }
        assert_eq!(event_code('a'), Some(12));
        assert_eq!(event_code('x'), None);
    }

    #[test]
    fn sender_sequence_has_growing_durations_and_three_ends() {
        let mut tx = TelephoneEventSender::new(8000);
        tx.start('#', 60).unwrap();
        let mut packets = Vec::new();
        let mut ts = 5000u32;
        while let Some(p) = tx.poll(ts) {
            packets.push(p);
            ts += 160;
        }
        let parsed: Vec<_> = packets
            .iter()
            .map(|p| TelephoneEvent::parse(&p.payload).unwrap())
            .collect();
        assert_eq!(packets.len(), 5);
        assert!(packets[0].marker);
        assert!(
            packets[1..]
                .iter()
                .all(|p| !p.marker && p.timestamp == 5000)
        );
        let durations: Vec<u16> = parsed.iter().map(|e| e.duration).collect();
        assert_eq!(durations, vec![160, 320, 480, 480, 480]);
        let ends: Vec<bool> = parsed.iter().map(|e| e.end).collect();
        assert_eq!(ends, vec![false, false, true, true, true]);
        assert!(parsed.iter().all(|e| e.event == 11));
        assert!(!tx.is_active());
    }

    #[test]
    fn long_event_is_segmented() {
        let mut tx = TelephoneEventSender::new(48_000);
        tx.start('1', 2000).unwrap(); // 96000 units > 65535
        let mut ts = 0u32;
        let mut stamps = Vec::new();
        let mut rx = TelephoneEventReceiver::new();
        let mut events = Vec::new();
        while let Some(p) = tx.poll(ts) {
            stamps.push(p.timestamp);
            events.extend(rx.handle(p.timestamp, &p.payload).unwrap());
            ts += 960;
        }
        stamps.dedup();
        assert_eq!(stamps.len(), 2, "two segments");
        assert_eq!(stamps[1], 65280); // 68 frames of 960
        assert_eq!(events.len(), 2, "one press: {events:?}");
    }

    #[test]
    fn receiver_survives_loss_of_all_end_packets() {
        let mut rx = TelephoneEventReceiver::new();
        let p = |event, end, dur| {
            TelephoneEvent {
                event,
                end,
                volume: 10,
                duration: dur,
            }
            .to_bytes()
        };
        assert_eq!(rx.handle(100, &p(1, false, 160)).unwrap().len(), 1);
        assert_eq!(rx.handle(100, &p(1, false, 320)).unwrap().len(), 0);
        // Ends lost; the next key starts.
        let evs = rx.handle(2000, &p(2, false, 160)).unwrap();
        assert_eq!(
            evs,
            vec![
                ReceivedEvent::Ended {
                    digit: '1',
                    timestamp: 100,
                    duration: 320
                },
                ReceivedEvent::Started {
                    digit: '2',
                    timestamp: 2000
                }
            ]
        );
        assert_eq!(rx.handle(2000, &p(2, true, 480)).unwrap().len(), 1);
        assert_eq!(rx.handle(2000, &p(2, true, 480)).unwrap().len(), 0);
        assert!(rx.handle(2000, &[1]).is_err());
    }
}
