//! Framing of SIP messages on stream transports (TCP, TLS): Content-Length framing (RFC 3261
//! §18.3) and CRLF keep-alives (RFC 5626 §4.4.1).
//!
//! The framer is a pure decoder: push received bytes, then take frames until it says it
//! needs more bytes. "Need more bytes" ([`Ok(None)`](StreamFramer::next_frame)) is distinct
//! from "malformed" (an error): after an error the stream cannot be resynchronized and the
//! connection should be closed.
//!
//! ```
//! use tincan_sip::message::framing::{Frame, StreamFramer};
//! let mut f = StreamFramer::default();
//! f.push(b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nContent-Length: 2\r\n\r\nhi");
//! assert_eq!(f.next_frame().unwrap(), Some(Frame::Ping));
//! assert!(matches!(f.next_frame().unwrap(), Some(Frame::Message(_))));
//! assert_eq!(f.next_frame().unwrap(), None);
//! ```

use bytes::{Bytes, BytesMut};

use super::lex;
use super::{ParseError, ParseLimits};

/// What a stream carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// One whole message (start line, headers, body), ready for [`super::Message::parse`].
    Message(Bytes),
    /// A keep-alive ping, CRLF CRLF: answer with a pong (a single CRLF).
    Ping,
    /// A keep-alive pong, one CRLF.
    Pong,
}

/// The CRLF keep-alive ping of RFC 5626 §4.4.1.
pub const PING: &[u8] = b"\r\n\r\n";
/// The CRLF keep-alive pong of RFC 5626 §4.4.1.
pub const PONG: &[u8] = b"\r\n";

/// Incremental framer for one stream connection.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: ParseLimits,
    expecting_pong: bool,
    failed: bool,
}

impl StreamFramer {
    /// A framer with these limits.
    pub fn with_limits(limits: ParseLimits) -> StreamFramer {
        StreamFramer {
            limits,
            ..StreamFramer::default()
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Tells the framer a ping was sent, so that a lone CRLF is read as its pong at once.
    pub fn ping_sent(&mut self) {
        self.expecting_pong = true;
    }

    /// Bytes received and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing but line ends (CR, LF) is buffered: no message has begun (a
    /// keep-alive may be in progress). A driver uses it to tell an idle connection from one in
    /// the middle of a message.
    pub fn only_line_ends(&self) -> bool {
        self.buf.iter().all(|&b| b == b'\r' || b == b'\n')
    }

    /// The next frame, `Ok(None)` when more bytes are needed, or an error when the stream
    /// is malformed (the connection must then be closed; every later call errs too).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ParseError> {
        if self.failed {
            return Err(ParseError::HeaderLine("stream already failed"));
        }
        let r = self.next_inner();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn next_inner(&mut self) -> Result<Option<Frame>, ParseError> {
        let b = &self.buf[..];
        if b.starts_with(b"\r\n") {
            if b.starts_with(PING) {
                let _ = self.buf.split_to(4);
                return Ok(Some(Frame::Ping));
            }
            let could_be_ping = PING.starts_with(&b[..b.len().min(4)]);
            if could_be_ping && !self.expecting_pong {
                return Ok(None);
            }
            let _ = self.buf.split_to(2);
            self.expecting_pong = false;
            return Ok(Some(Frame::Pong));
        }
        if b.is_empty() {
            return Ok(None);
        }
        if b == b"\r" {
            return Ok(None);
        }
        // Header section end.
        let Some(head_end) = find_head_end(b) else {
            if b.len() > self.limits.max_message_size {
                return Err(ParseError::TooLarge {
                    size: b.len(),
                    limit: self.limits.max_message_size,
                });
            }
            return Ok(None);
        };
        let length = content_length(&b[..head_end.0])?;
        let total = head_end.1 + length;
        if total > self.limits.max_message_size {
            return Err(ParseError::TooLarge {
                size: total,
                limit: self.limits.max_message_size,
            });
        }
        if b.len() < total {
            return Ok(None);
        }
        Ok(Some(Frame::Message(self.buf.split_to(total).freeze())))
    }
}

/// (end of the last header line, start of the body): after CRLF CRLF or LF LF.
fn find_head_end(b: &[u8]) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\n', &b[from..]) {
        let lf = from + i;
        let rest = &b[lf + 1..];
        if rest.starts_with(b"\r\n") {
            return Some((lf + 1, lf + 3));
        }
        if rest.starts_with(b"\n") {
            return Some((lf + 1, lf + 2));
        }
        from = lf + 1;
    }
    None
}

/// Reads Content-Length from a header section (§18.3: mandatory on streams).
fn content_length(head: &[u8]) -> Result<usize, ParseError> {
    let mut found: Option<usize> = None;
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = lex_trim(&line[..colon]);
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            if found.is_some() {
                return Err(ParseError::Multiple("Content-Length"));
            }
            let value = std::str::from_utf8(lex_trim(&line[colon + 1..]))
                .ok()
                .and_then(|v| lex::parse_decimal(v, u64::from(u32::MAX)))
                .ok_or(ParseError::Header(super::typed::HeaderError {
                    name: "Content-Length",
                    reason: "not a number in range",
                }))?;
            found = Some(value as usize);
        }
    }
    found.ok_or(ParseError::Missing("Content-Length"))
}

fn lex_trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !lex::is_wsp(*c)).unwrap_or(b.len());
    let e = b
        .iter()
        .rposition(|c| !lex::is_wsp(*c))
        .map_or(s, |e| e + 1);
    &b[s..e.max(s)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello";

    #[test]
    fn byte_by_byte() {
        let mut f = StreamFramer::default();
        let mut frames = Vec::new();
        let stream = [MSG, b"\r\n\r\n", MSG].concat();
        for b in &stream {
            f.push(&[*b]);
            while let Some(fr) = f.next_frame().unwrap() {
                frames.push(fr);
            }
        }
        assert_eq!(
            frames,
            vec![
                Frame::Message(Bytes::from_static(MSG)),
                Frame::Ping,
                Frame::Message(Bytes::from_static(MSG))
            ]
        );
    }

    #[test]
    fn pong_when_expected() {
        let mut f = StreamFramer::default();
        f.push(b"\r\n");
        assert_eq!(f.next_frame().unwrap(), None);
        f.ping_sent();
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Pong));
        f.push(b"\r\nINVITE");
        assert_eq!(f.next_frame().unwrap(), Some(Frame::Pong));
        assert_eq!(f.next_frame().unwrap(), None);
    }

    #[test]
    fn malformed() {
        let mut f = StreamFramer::default();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nl: -3\r\n\r\n");
        assert!(f.next_frame().is_err());
        let mut f = StreamFramer::default();
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n");
        assert_eq!(f.next_frame(), Err(ParseError::Missing("Content-Length")));
        let mut f = StreamFramer::with_limits(ParseLimits {
            max_message_size: 100,
            ..ParseLimits::default()
        });
        f.push(&[b'a'; 200]);
        assert!(matches!(f.next_frame(), Err(ParseError::TooLarge { .. })));
    }
}
