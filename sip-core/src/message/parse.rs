//! The message parser: start line, the header index, and the body cut by Content-Length.

use bytes::Bytes;

use super::lex::{self, is_wsp};
use super::typed::{ContentLength, Header, Method};
use super::uri::Uri;
use super::{Entry, EntryText, HeaderName, Message, ParseError, ParseLimits, Slot, StartLine};

/// How the end of the body is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A datagram: the body is what follows the headers, cut at Content-Length if present.
    Datagram,
}

/// The first line feed in `s` (16 bytes a step with SSE2, which every x86-64 has).
#[inline(always)]
fn find_lf(s: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(one) = memchr::arch::x86_64::sse2::memchr::One::new(b'\n') {
        return one.find(s);
    }
    lex::find(s, b'\n')
}

/// The first colon or line feed in `s`.
#[inline(always)]
fn find_colon_or_lf(s: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if let Some(two) = memchr::arch::x86_64::sse2::memchr::Two::new(b':', b'\n') {
        return two.find(s);
    }
    lex::find3(s, b':', b'\n', b'\n')
}

/// Finds the next line end at or after `from`: returns (end of line content, start of next
/// line). A line ends with CRLF or a bare LF.
#[inline(always)]
fn next_line(b: &[u8], from: usize) -> Option<(usize, usize)> {
    let lf = find_lf(&b[from..])? + from;
    let end = if lf > from && b[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    Some((end, lf + 1))
}

fn is_sip_version(v: &[u8]) -> Option<bool> {
    // SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT (case-insensitive, §7.1)
    if v == b"SIP/2.0" {
        return Some(true);
    }
    if v.len() < 7 || !v[..4].eq_ignore_ascii_case(b"SIP/") {
        return None;
    }
    let rest = &v[4..];
    let dot = rest.iter().position(|&c| c == b'.')?;
    let (major, minor) = (&rest[..dot], &rest[dot + 1..]);
    if major.is_empty()
        || minor.is_empty()
        || !major.iter().all(u8::is_ascii_digit)
        || !minor.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    Some(major == b"2" && minor == b"0")
}

pub(crate) fn parse(
    buf: Bytes,
    limits: &ParseLimits,
    mode: Mode,
) -> Result<(Message, Option<ParseError>), ParseError> {
    if buf.len() > limits.max_message_size {
        return Err(ParseError::TooLarge {
            size: buf.len(),
            limit: limits.max_message_size,
        });
    }
    let b: &[u8] = &buf;
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let mut pos = 0;
    while pos < b.len() && (b[pos] == b'\r' || b[pos] == b'\n') {
        pos += 1;
    }
    if pos == b.len() {
        return Err(ParseError::Empty);
    }
    let (line_end, mut next) = next_line(b, pos).unwrap_or((b.len(), b.len()));
    let line = &b[pos..line_end];
    let mut defect = None;
    let start = if line.len() >= 4 && line[..4].eq_ignore_ascii_case(b"SIP/") {
        parse_status_line(line, pos, &mut defect)?
    } else {
        parse_request_line(line, pos, &mut defect)?
    };

    // Header index: one pass over the lines, one table lookup per name.
    let mut headers: Vec<Entry> = Vec::with_capacity(24);
    let mut content_lengths = 0usize;
    let mut content_length_at = 0usize;
    let mut any_folded = false;
    let mut body_start = b.len();
    while next < b.len() {
        let line_start = next;
        let first = b[line_start];
        if first != b'\r' && first != b'\n' && !is_wsp(first) {
            // The usual line, `name: value`: the first colon or line feed, then the line
            // feed, so that each byte of the line is looked at once by a word-wide search.
            let (colon, end, after) = match find_colon_or_lf(&b[line_start..]) {
                Some(at) if b[line_start + at] == b':' => {
                    let colon = line_start + at;
                    let (end, after) = next_line(b, colon + 1).unwrap_or((b.len(), b.len()));
                    (colon, end, after)
                }
                _ => return Err(ParseError::HeaderLine("no colon")),
            };
            next = after;
            if headers.len() >= limits.max_headers {
                return Err(ParseError::TooManyHeaders {
                    limit: limits.max_headers,
                });
            }
            if end - line_start > limits.max_line_length {
                return Err(ParseError::LineTooLong {
                    limit: limits.max_line_length,
                });
            }
            // field-name = token, then optional white space and the colon.
            let mut name_end = colon;
            while name_end > line_start && is_wsp(b[name_end - 1]) {
                name_end -= 1;
            }
            let raw_name = &b[line_start..name_end];
            let name = HeaderName::from_bytes(raw_name);
            // A known name is a token; any other is checked here.
            if name == HeaderName::Other
                && (raw_name.is_empty() || !lex::all_in(raw_name, lex::class::TOKEN))
            {
                return Err(ParseError::HeaderLine("header name is not a token"));
            }
            let mut vs = colon + 1;
            while vs < end && is_wsp(b[vs]) {
                vs += 1;
            }
            let mut ve = end;
            while ve > vs && is_wsp(b[ve - 1]) {
                ve -= 1;
            }
            if name == HeaderName::ContentLength {
                content_lengths += 1;
                content_length_at = headers.len();
            }
            headers.push(Entry::received(name, line_start, name_end, (vs, ve), end));
            continue;
        }
        let (end, after) = next_line(b, line_start).unwrap_or((b.len(), b.len()));
        if end == line_start {
            body_start = after;
            break;
        }
        next = after;
        if is_wsp(first) {
            // A fold continues the previous header (RFC 3261 §7.3.1).
            let Some(prev) = headers.last_mut() else {
                return Err(ParseError::HeaderLine(
                    "first header line starts with white space",
                ));
            };
            if end - prev.line_start as usize > limits.max_line_length {
                return Err(ParseError::LineTooLong {
                    limit: limits.max_line_length,
                });
            }
            prev.line_end = end as u32;
            prev.folded = true;
            any_folded = true;
            let mut vend = end;
            while vend > line_start && is_wsp(b[vend - 1]) {
                vend -= 1;
            }
            if vend > line_start && b[line_start..vend].iter().any(|c| !is_wsp(*c)) {
                if prev.value_end == prev.value_start {
                    // The value starts on this continuation line.
                    let mut s = line_start;
                    while s < vend && is_wsp(b[s]) {
                        s += 1;
                    }
                    prev.value_start = s as u32;
                }
                prev.value_end = vend as u32;
            }
            continue;
        }
        // A line that starts with a bare CR: not a header line.
        return Err(ParseError::HeaderLine(
            if memchr::memchr(b':', &b[line_start..end]).is_none() {
                "no colon"
            } else {
                "header name is not a token"
            },
        ));
    }
    if any_folded {
        // Folds are rare: their values are unfolded once here, so that every read of the
        // header is a plain slice.
        for e in headers.iter_mut().filter(|e| e.folded) {
            let raw = b
                .get(e.value_start as usize..e.value_end as usize)
                .unwrap_or_default();
            if let Ok(raw) = std::str::from_utf8(raw) {
                e.text = Some(Box::new(EntryText::Unfolded(
                    lex::unfold(raw).into_owned().into_boxed_str(),
                )));
            }
        }
    }

    let mut msg = Message {
        buf: Bytes::new(),
        start,
        headers,
        body: Bytes::new(),
    };
    // Body, cut at Content-Length (§18.3); the Content-Length needs the buffer to be read.
    let body_start = body_start.min(b.len());
    let available = b.len() - body_start;
    msg.buf = buf;
    let mut body_len = available;
    match content_lengths {
        0 => {}
        1 => {
            let e = &msg.headers[content_length_at];
            // The usual value, a few digits on one line, is read from the bytes directly.
            let digits = msg
                .buf
                .get(e.value_start as usize..e.value_end as usize)
                .filter(|d| !e.folded && !d.is_empty() && d.len() <= 9)
                .filter(|d| d.iter().all(u8::is_ascii_digit))
                .map(|d| d.iter().fold(0u32, |n, &c| n * 10 + u32::from(c - b'0')));
            let length = match digits {
                Some(n) => Ok(ContentLength(n)),
                None => msg
                    .entry_text(e)
                    .and_then(|t| ContentLength::parse(t).map_err(ParseError::from)),
            };
            match length {
                Ok(ContentLength(n)) => {
                    let n = n as usize;
                    if n > available {
                        defect.get_or_insert(ParseError::BodyTooShort {
                            declared: n,
                            available,
                        });
                    } else {
                        body_len = n;
                    }
                }
                Err(e) => {
                    defect.get_or_insert(e);
                }
            }
        }
        _ => {
            defect.get_or_insert(ParseError::Multiple("Content-Length"));
        }
    }
    let Mode::Datagram = mode;
    msg.body = msg.buf.slice(body_start..body_start + body_len);
    Ok((msg, defect))
}

fn parse_status_line(
    line: &[u8],
    offset: usize,
    defect: &mut Option<ParseError>,
) -> Result<StartLine, ParseError> {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    let Some(sp1) = lex::find(line, b' ') else {
        return Err(ParseError::StartLine("no status code"));
    };
    match is_sip_version(&line[..sp1]) {
        Some(true) => {}
        Some(false) => {
            *defect = Some(ParseError::Version(
                String::from_utf8_lossy(&line[..sp1]).into_owned(),
            ));
        }
        None => return Err(ParseError::StartLine("bad SIP-Version")),
    }
    let rest = &line[sp1 + 1..];
    let code_end = lex::find(rest, b' ').unwrap_or(rest.len());
    let code = &rest[..code_end];
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::StatusCode);
    }
    let status = u16::from(code[0] - b'0') * 100
        + u16::from(code[1] - b'0') * 10
        + u16::from(code[2] - b'0');
    if !(100..=699).contains(&status) {
        return Err(ParseError::StatusCode);
    }
    let reason_start = (sp1 + 1 + code_end + 1).min(line.len());
    if line[reason_start..].iter().any(|&c| c < 0x20 && c != b'\t') {
        return Err(ParseError::StartLine("control character in reason phrase"));
    }
    Ok(StartLine::Response {
        status,
        reason: Slot::Span((offset + reason_start) as u32, (offset + line.len()) as u32),
    })
}

fn parse_request_line(
    line: &[u8],
    offset: usize,
    defect: &mut Option<ParseError>,
) -> Result<StartLine, ParseError> {
    // Request-Line = Method SP Request-URI SP SIP-Version
    let Some(sp1) = lex::find(line, b' ') else {
        return Err(ParseError::StartLine("no Request-URI"));
    };
    let Some(method) = Method::from_bytes(&line[..sp1]) else {
        return Err(ParseError::StartLine("method is not a token"));
    };
    let rest = &line[sp1 + 1..];
    let Some(sp2) = lex::find(rest, b' ') else {
        return Err(ParseError::StartLine("no SIP-Version"));
    };
    let uri = &rest[..sp2];
    let version = &rest[sp2 + 1..];
    match is_sip_version(version) {
        Some(true) => {}
        Some(false) => {
            *defect = Some(ParseError::Version(
                String::from_utf8_lossy(version).into_owned(),
            ));
        }
        None => {
            // Extra spaces (RFC 4475 lwsstart, trws) or a garbled version.
            *defect = Some(ParseError::StartLine(
                if uri.is_empty() || version.contains(&b' ') {
                    "extra white space"
                } else {
                    "bad SIP-Version"
                },
            ));
        }
    }
    let uri_start = offset + sp1 + 1;
    let slot = Slot::Span(uri_start as u32, (uri_start + uri.len()) as u32);
    // The Request-URI itself is checked by `Message::check` (lazily: indexing stays cheap).
    Ok(StartLine::Request { method, uri: slot })
}

/// The Request-URI rules of RFC 3261 §19.1.1 and RFC 4475 §3.1.2.7/§3.1.2.11.
pub(crate) fn check_request_uri(uri: &[u8]) -> Result<(), &'static str> {
    if uri.is_empty() {
        return Err("empty");
    }
    if uri[0] == b'<' {
        return Err("enclosed in <>");
    }
    let text = std::str::from_utf8(uri).map_err(|_| "not ASCII")?;
    match Uri::parse(text) {
        Ok(Uri::Sip(u)) if u.headers.is_some() => Err("headers are not allowed in a Request-URI"),
        Ok(_) => Ok(()),
        Err(_) => Err("does not parse"),
    }
}
