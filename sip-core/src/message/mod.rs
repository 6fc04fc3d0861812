//! SIP messages (RFC 3261 §7, §20, §25): parsing, typed header access, building and printing.
//!
//! A received [`Message`] keeps the datagram as [`Bytes`] and an index of its header lines:
//! nothing is copied or allocated per header, and a header's value is only interpreted when
//! it is asked for ([`Message::get`], [`Message::get_all`], or the shortcuts such as
//! [`Message::top_via`]). Headers that are not changed are printed exactly as received.
//!
//! ```
//! use tincan_sip::message::{Message, typed::Via};
//!
//! let bytes = b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
//! v: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
//! Max-Forwards: 70\r\nTo: <sip:bob@example.com>\r\n\
//! f: Alice <sip:alice@example.com>;tag=1928301774\r\n\
//! i: a84b4c76e66710\r\nCSeq: 63104 OPTIONS\r\nl: 0\r\n\r\n";
//! let msg = Message::parse(bytes::Bytes::from_static(bytes)).unwrap();
//! let via: Via = msg.top_via().unwrap().unwrap();
//! assert_eq!(via.branch(), Some("z9hG4bK776asdhds"));
//! assert_eq!(msg.call_id().unwrap().unwrap().as_str(), "a84b4c76e66710");
//! ```

mod build;
mod check;
mod error;
pub mod framing;
mod fuzzing;
mod header;
mod lex;
mod params;
pub mod typed;
mod uri;

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use bytes::{BufMut, Bytes, BytesMut};

pub use build::reason_phrase;
pub use build::{RequestBuilder, response_to};
pub use check::{CheckConfig, SUPPORTED_EXTENSIONS, diagnose, verdict};
pub use error::{ParseError, Verdict};
#[doc(hidden)]
pub use fuzzing::{fuzz_one_datagram, fuzz_one_stream};
pub use header::HeaderName;
pub use params::{Param, Params};
pub use typed::{Header, HeaderError, Method};
pub use uri::{Host, OpaqueUri, SipUri, TelUri, Uri, UriError};

/// Limits that bound the memory a hostile peer can make a parser use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// Largest message (start line, headers and body) accepted, in bytes.
    pub max_message_size: usize,
    /// Most header lines accepted.
    pub max_headers: usize,
    /// Longest header line accepted (with its folds), in bytes.
    pub max_line_length: usize,
}

impl Default for ParseLimits {
    /// 64 KiB messages (the largest UDP datagram), 256 header lines, 16 KiB per line.
    fn default() -> Self {
        ParseLimits {
            max_message_size: 65_535,
            max_headers: 256,
            max_line_length: 16_384,
        }
    }
}

/// A byte range of the message buffer, or text the application set.
#[derive(Clone, Debug)]
enum Slot {
    Span(u32, u32),
    Owned(Box<str>),
}

/// One header line of a message: byte offsets into the received buffer, or text the
/// application set. Kept small (32 bytes) so that the index of a message fits in one small
/// allocation.
#[derive(Clone, Debug)]
struct Entry {
    name: HeaderName,
    /// True when the value spans several lines (a fold): read through the unfolded text.
    folded: bool,
    /// Start of the line (and of the name as received).
    line_start: u32,
    /// End of the name as received (compact or long form).
    name_end: u32,
    /// The value: after the colon, white space trimmed, folds kept.
    value_start: u32,
    value_end: u32,
    /// End of the whole line as received (with its folds, without its last CRLF).
    line_end: u32,
    /// Text that is not a span of the buffer: a header the application set, or the value of
    /// a received folded header with its folds replaced by spaces.
    text: Option<Box<EntryText>>,
}

/// The text of an [`Entry`] that is not (only) a span of the received buffer.
#[derive(Clone, Debug)]
enum EntryText {
    /// A header set by the application: no line to print verbatim.
    Set {
        /// The name as set.
        name: Box<str>,
        /// The value as set.
        value: Box<str>,
        /// The value with folds replaced by spaces, when it has folds.
        unfolded: Option<Box<str>>,
    },
    /// A received folded value (valid UTF-8) with its folds replaced by spaces.
    Unfolded(Box<str>),
}

impl Entry {
    /// A received header line.
    fn received(
        name: HeaderName,
        line_start: usize,
        name_end: usize,
        value: (usize, usize),
        line_end: usize,
    ) -> Entry {
        Entry {
            name,
            folded: false,
            line_start: line_start as u32,
            name_end: name_end as u32,
            value_start: value.0 as u32,
            value_end: value.1 as u32,
            line_end: line_end as u32,
            text: None,
        }
    }

    /// The whole line as received (without its CRLF), for verbatim printing. `None` once the
    /// header is changed or when it was added.
    fn line(&self) -> Option<(usize, usize)> {
        match self.text.as_deref() {
            Some(EntryText::Set { .. }) => None,
            _ => Some((self.line_start as usize, self.line_end as usize)),
        }
    }
}

#[derive(Clone, Debug)]
enum StartLine {
    Request { method: Method, uri: Slot },
    Response { status: u16, reason: Slot },
}

/// A SIP request or response.
///
/// Received messages borrow nothing: they own the datagram through [`Bytes`] (a reference
/// count) and index into it.
#[derive(Clone)]
pub struct Message {
    buf: Bytes,
    start: StartLine,
    headers: Vec<Entry>,
    body: Bytes,
}

/// One header of a message, as iterated by [`Message::headers`].
#[derive(Debug, Clone, Copy)]
pub struct HeaderRef<'m> {
    /// The recognized name ([`HeaderName::Other`] for unknown headers).
    pub name: HeaderName,
    /// The name as written.
    pub raw_name: &'m str,
    /// The raw value bytes (folds kept).
    pub value: &'m [u8],
}

impl Message {
    /// Parses one datagram with the default [`ParseLimits`]. See [`Message::parse_with`].
    pub fn parse(buf: Bytes) -> Result<Message, ParseError> {
        Self::parse_with(buf, &ParseLimits::default())
    }

    /// Parses one datagram: start line, headers, and a body cut at Content-Length (extra
    /// bytes after it are ignored, RFC 3261 §18.3).
    ///
    /// Only the framing and the start line are checked here; header values are checked when
    /// read, and [`Message::check`] applies a user agent's rules.
    pub fn parse_with(buf: Bytes, limits: &ParseLimits) -> Result<Message, ParseError> {
        match Self::parse_lenient(buf, limits) {
            Ok((msg, None)) => Ok(msg),
            Ok((_, Some(e))) => Err(e),
            Err(e) => Err(e),
        }
    }

    /// Like [`parse_with`](Self::parse_with), but returns the message together with a defect
    /// of its start line or body (bad version, bad Request-URI, short body) when the header
    /// section could be indexed, so that a UAS can still build the error response from its
    /// Via, From, To, Call-ID and CSeq.
    pub fn parse_lenient(
        buf: Bytes,
        limits: &ParseLimits,
    ) -> Result<(Message, Option<ParseError>), ParseError> {
        parse::parse(buf, limits, parse::Mode::Datagram)
    }

    /// A new request with no headers (see [`RequestBuilder`] for a complete one).
    pub fn new_request(method: Method, uri: &Uri<'_>) -> Message {
        Message {
            buf: Bytes::new(),
            start: StartLine::Request {
                method,
                uri: Slot::Owned(uri.to_string().into()),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A new response with no headers (see [`response_to`] for one that answers a request).
    pub fn new_response(status: u16, reason: &str) -> Message {
        Message {
            buf: Bytes::new(),
            start: StartLine::Response {
                status,
                reason: Slot::Owned(reason.into()),
            },
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    fn slot_bytes<'s>(&'s self, slot: &'s Slot) -> &'s [u8] {
        match slot {
            Slot::Span(a, b) => self.buf.get(*a as usize..*b as usize).unwrap_or_default(),
            Slot::Owned(s) => s.as_bytes(),
        }
    }

    fn slot_str<'s>(&'s self, slot: &'s Slot) -> Option<&'s str> {
        std::str::from_utf8(self.slot_bytes(slot)).ok()
    }

    /// The bytes of a span of the received buffer.
    fn span(&self, start: u32, end: u32) -> &[u8] {
        self.buf
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    /// The name of a header line as received or set.
    fn entry_name_bytes<'s>(&'s self, e: &'s Entry) -> &'s [u8] {
        match e.text.as_deref() {
            Some(EntryText::Set { name, .. }) => name.as_bytes(),
            _ => self.span(e.line_start, e.name_end),
        }
    }

    /// The raw value of a header line (folds kept).
    fn entry_value_bytes<'s>(&'s self, e: &'s Entry) -> &'s [u8] {
        match e.text.as_deref() {
            Some(EntryText::Set { value, .. }) => value.as_bytes(),
            _ => self.span(e.value_start, e.value_end),
        }
    }

    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method; `None` for a response.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI; `None` for a response (or, in a message from
    /// [`parse_lenient`](Self::parse_lenient), a Request-URI that did not parse).
    pub fn uri(&self) -> Option<Uri<'_>> {
        match &self.start {
            StartLine::Request { uri, .. } => Uri::parse(self.slot_str(uri)?).ok(),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI as written.
    pub fn uri_text(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => self.slot_str(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// Replaces the Request-URI of a request (no effect on a response).
    pub fn set_uri(&mut self, new: &Uri<'_>) {
        if let StartLine::Request { uri, .. } = &mut self.start {
            *uri = Slot::Owned(new.to_string().into());
        }
    }

    /// Replaces the method of a request (no effect on a response).
    pub fn set_method(&mut self, new: Method) {
        if let StartLine::Request { method, .. } = &mut self.start {
            *method = new;
        }
    }

    /// The status code; `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase (invalid UTF-8 replaced); `None` for a request.
    pub fn reason(&self) -> Option<Cow<'_, str>> {
        match &self.start {
            StartLine::Response { reason, .. } => {
                Some(String::from_utf8_lossy(self.slot_bytes(reason)))
            }
            StartLine::Request { .. } => None,
        }
    }

    /// Sets the status code and reason phrase of a response (no effect on a request).
    pub fn set_status(&mut self, code: u16, phrase: &str) {
        if let StartLine::Response { status, reason } = &mut self.start {
            *status = code;
            *reason = Slot::Owned(phrase.into());
        }
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Replaces the body and sets Content-Type (when given) and Content-Length to match.
    pub fn set_body(&mut self, content_type: Option<&str>, body: Bytes) {
        if let Some(ct) = content_type {
            self.set_header(HeaderName::ContentType, ct);
        }
        self.set_header(HeaderName::ContentLength, &body.len().to_string());
        self.body = body;
    }

    /// Every header line in order.
    pub fn headers(&self) -> impl Iterator<Item = HeaderRef<'_>> + '_ {
        self.headers.iter().map(|e| HeaderRef {
            name: e.name,
            raw_name: std::str::from_utf8(self.entry_name_bytes(e)).unwrap_or(""),
            value: self.entry_value_bytes(e),
        })
    }

    /// Number of header lines.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    #[inline]
    fn entry_text<'s>(&'s self, e: &'s Entry) -> Result<&'s str, ParseError> {
        match e.text.as_deref() {
            Some(EntryText::Unfolded(text)) => return Ok(text),
            Some(EntryText::Set {
                unfolded: Some(text),
                ..
            }) => return Ok(text),
            _ => {}
        }
        // Not folded, or folded but not UTF-8 (then no unfolded text was made).
        let bytes = self.entry_value_bytes(e);
        if let Ok(ascii) = ascii::AsciiStr::from_ascii(bytes) {
            return Ok(ascii.as_str());
        }
        std::str::from_utf8(bytes).map_err(|_| {
            ParseError::NotUtf8(if e.name == HeaderName::Other {
                "an unknown"
            } else {
                e.name.as_str()
            })
        })
    }

    fn entries(&self, name: HeaderName) -> impl Iterator<Item = &Entry> + '_ {
        self.headers.iter().filter(move |e| e.name == name)
    }

    /// The values of a known header, one per line, as text with folds replaced by spaces.
    /// A value that is not UTF-8 gives an error.
    pub fn header_lines(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<&str, ParseError>> + '_ {
        self.entries(name).map(move |e| self.entry_text(e))
    }

    /// The first line of a known header as text.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.entries(name)
            .next()
            .and_then(|e| self.entry_text(e).ok())
    }

    /// The values of a header by its name as written, known or not (compact forms match
    /// their long names).
    pub fn header_lines_named<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = Result<&'s str, ParseError>> + 's {
        let known = HeaderName::from_name(name);
        self.headers
            .iter()
            .filter(move |e| {
                if known == HeaderName::Other {
                    e.name == HeaderName::Other
                        && self
                            .entry_name_bytes(e)
                            .eq_ignore_ascii_case(name.as_bytes())
                } else {
                    e.name == known
                }
            })
            .map(move |e| self.entry_text(e))
    }

    /// Every value of a typed header: all lines, and for list headers every comma-separated
    /// element of each line.
    #[inline]
    pub fn get_all<'s, T: Header<'s> + 's>(
        &'s self,
    ) -> impl Iterator<Item = Result<T, ParseError>> + 's {
        AllValues {
            msg: self,
            entries: self.headers.iter(),
            line: None,
            value: PhantomData,
        }
    }

    /// The first value of a typed header; `None` when the header is absent.
    #[inline]
    pub fn get<'s, T: Header<'s> + 's>(&'s self) -> Option<Result<T, ParseError>> {
        let e = self.entries(T::NAME).next()?;
        let text = match self.entry_text(e) {
            Ok(t) => t,
            Err(err) => return Some(Err(err)),
        };
        let first = if T::NAME.is_list() {
            if let Some(value) = T::parse_line(text) {
                return Some(Ok(value));
            }
            match split_list(text).next() {
                Some(Ok(v)) => v,
                Some(Err(err)) => return Some(Err(err)),
                None => {
                    return Some(Err(HeaderError {
                        name: T::NAME.as_str(),
                        reason: "empty",
                    }
                    .into()));
                }
            }
        } else {
            text
        };
        Some(T::parse(first).map_err(ParseError::from))
    }

    /// The topmost Via value.
    #[inline]
    pub fn top_via(&self) -> Option<Result<typed::Via<'_>, ParseError>> {
        self.get()
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<typed::Via<'_>, ParseError>> + '_ {
        self.get_all()
    }

    /// From.
    #[inline]
    pub fn from(&self) -> Option<Result<typed::From<'_>, ParseError>> {
        self.get()
    }

    /// To.
    #[inline]
    pub fn to(&self) -> Option<Result<typed::To<'_>, ParseError>> {
        self.get()
    }

    /// Call-ID.
    #[inline]
    pub fn call_id(&self) -> Option<Result<typed::CallId<'_>, ParseError>> {
        self.get()
    }

    /// CSeq.
    #[inline]
    pub fn cseq(&self) -> Option<Result<typed::CSeq, ParseError>> {
        self.get()
    }

    /// Max-Forwards.
    pub fn max_forwards(&self) -> Option<Result<typed::MaxForwards, ParseError>> {
        self.get()
    }

    /// Every Contact value.
    #[inline]
    pub fn contacts(&self) -> impl Iterator<Item = Result<typed::Contact<'_>, ParseError>> + '_ {
        self.get_all()
    }

    /// Every Route value, top first.
    pub fn routes(&self) -> impl Iterator<Item = Result<typed::Route<'_>, ParseError>> + '_ {
        self.get_all()
    }

    /// Every Record-Route value, top first.
    pub fn record_routes(
        &self,
    ) -> impl Iterator<Item = Result<typed::RecordRoute<'_>, ParseError>> + '_ {
        self.get_all()
    }

    /// Content-Type.
    pub fn content_type(&self) -> Option<Result<typed::ContentType<'_>, ParseError>> {
        self.get()
    }

    /// Expires.
    pub fn expires(&self) -> Option<Result<typed::Expires, ParseError>> {
        self.get()
    }

    // ------------------------------------------------------------------------ modification

    fn new_entry(name: HeaderName, raw_name: &str, value: &str) -> Entry {
        let name_text = if name == HeaderName::Other {
            raw_name
        } else {
            name.as_str()
        };
        let folded = memchr::memchr2(b'\r', b'\n', value.as_bytes()).is_some();
        Entry {
            name,
            folded,
            line_start: 0,
            name_end: 0,
            value_start: 0,
            value_end: 0,
            line_end: 0,
            text: Some(Box::new(EntryText::Set {
                name: name_text.into(),
                value: value.into(),
                unfolded: folded.then(|| lex::unfold(value).into_owned().into_boxed_str()),
            })),
        }
    }

    /// Appends a header line.
    pub fn push_header(&mut self, name: HeaderName, value: &str) {
        self.headers.push(Self::new_entry(name, "", value));
    }

    /// Appends a header line with a name Tincan may not know (e.g. `X-Account`).
    pub fn push_header_named(&mut self, name: &str, value: &str) {
        let known = HeaderName::from_name(name);
        self.headers.push(Self::new_entry(known, name, value));
    }

    /// Inserts a header line before the first line of the same header (or first of all when
    /// there is none): how a Via or Record-Route is added on top.
    pub fn prepend_header(&mut self, name: HeaderName, value: &str) {
        let at = self
            .headers
            .iter()
            .position(|e| e.name == name)
            .unwrap_or(0);
        self.headers.insert(at, Self::new_entry(name, "", value));
    }

    /// Replaces every line of a header with one line holding `value` (in the place of the
    /// first one, or at the end).
    pub fn set_header(&mut self, name: HeaderName, value: &str) {
        match self.headers.iter().position(|e| e.name == name) {
            Some(first) => {
                self.headers[first] = Self::new_entry(name, "", value);
                let mut i = 0;
                self.headers.retain(|e| {
                    i += 1;
                    i - 1 == first || e.name != name
                });
            }
            None => self.push_header(name, value),
        }
    }

    /// Sets a typed header, replacing every line of it.
    pub fn set<'v, T: Header<'v>>(&mut self, value: &T) {
        self.set_header(T::NAME, &value.to_string());
    }

    /// Removes every line of a header; returns how many were removed.
    pub fn remove_header(&mut self, name: HeaderName) -> usize {
        let before = self.headers.len();
        self.headers.retain(|e| e.name != name);
        before - self.headers.len()
    }

    /// Removes the first value of a header: the first element of a comma-separated line, or
    /// the whole first line (how a UAC strips its own Via, §8.1.3.3, or a Route is consumed).
    pub fn remove_first_value(&mut self, name: HeaderName) -> bool {
        let Some(idx) = self.headers.iter().position(|e| e.name == name) else {
            return false;
        };
        let rest = if name.is_list() {
            self.entry_text(&self.headers[idx]).ok().and_then(|t| {
                let mut parts = lex::top_level(t, b',');
                let first = parts.next()?;
                let rest = t.get(first.len() + 1..)?;
                Some(lex::trim_lws(rest).to_owned())
            })
        } else {
            None
        };
        match rest {
            Some(rest) if !rest.is_empty() => {
                self.headers[idx] = Self::new_entry(name, "", &rest);
            }
            _ => {
                self.headers.remove(idx);
            }
        }
        true
    }

    // ----------------------------------------------------------------------------- printing

    /// Writes the message: canonical start line, untouched headers exactly as received,
    /// changed or added headers as `Name: value`, then the body.
    pub fn write_to(&self, out: &mut BytesMut) {
        match &self.start {
            StartLine::Request { method, uri } => {
                out.put_slice(method.as_str().as_bytes());
                out.put_u8(b' ');
                out.put_slice(self.slot_bytes(uri));
                out.put_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { status, reason } => {
                out.put_slice(b"SIP/2.0 ");
                let mut code = itoa_buf(u32::from(*status));
                out.put_slice(code.as_bytes_mut());
                out.put_u8(b' ');
                out.put_slice(self.slot_bytes(reason));
                out.put_slice(b"\r\n");
            }
        }
        for e in &self.headers {
            match e.line() {
                Some((a, b)) => out.put_slice(self.buf.get(a..b).unwrap_or_default()),
                None => {
                    out.put_slice(self.entry_name_bytes(e));
                    out.put_slice(b": ");
                    out.put_slice(self.entry_value_bytes(e));
                }
            }
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(&self.body);
    }

    /// The message as bytes ready to send.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.buf.len().max(256) + 64);
        self.write_to(&mut out);
        out.freeze()
    }

    /// Applies a user agent's checks (RFC 3261 §8.2, §18.3 and RFC 4475): mandatory headers,
    /// single-value headers, every known header's grammar, CSeq/method agreement, the
    /// Request-URI scheme and Require option tags for requests.
    pub fn check(&self, config: &CheckConfig<'_>) -> Result<(), ParseError> {
        check::check(self, config)
    }
}

/// A small stack buffer for printing a number without allocating.
struct NumBuf {
    buf: [u8; 10],
    start: usize,
}

impl NumBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: u32) -> NumBuf {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    NumBuf { buf, start: i }
}

/// The values of a typed header, as [`Message::get_all`] reads them: the lines of the
/// header, and the elements of each line of a list header. Holds no parsed value between
/// calls (values are large): each is parsed when asked for and handed out.
struct AllValues<'s, T> {
    msg: &'s Message,
    /// The header lines not read yet.
    entries: std::slice::Iter<'s, Entry>,
    /// The elements left of the list header line being read.
    line: Option<SplitList<'s>>,
    value: PhantomData<fn() -> T>,
}

impl<'s, T: Header<'s>> Iterator for AllValues<'s, T> {
    type Item = Result<T, ParseError>;

    #[inline]
    fn next(&mut self) -> Option<Result<T, ParseError>> {
        loop {
            if let Some(elements) = &mut self.line {
                match elements.next() {
                    Some(v) => return Some(v.and_then(|v| T::parse(v).map_err(ParseError::from))),
                    None => self.line = None,
                }
            }
            let e = self.entries.find(|e| e.name == T::NAME)?;
            match self.msg.entry_text(e) {
                Err(err) => return Some(Err(err)),
                Ok(text) if T::NAME.is_list() => match T::parse_line(text) {
                    Some(value) => return Some(Ok(value)),
                    None => self.line = Some(split_list(text)),
                },
                Ok(text) => return Some(T::parse(text).map_err(ParseError::from)),
            }
        }
    }
}

/// The elements of a list header's line (see [`split_list`]).
enum SplitList<'s> {
    /// A line without any comma: one element (the usual case), no splitting.
    One(Option<&'s str>),
    /// Split at top-level commas.
    Many(lex::TopLevel<'s>),
}

impl<'s> Iterator for SplitList<'s> {
    type Item = Result<&'s str, ParseError>;

    fn next(&mut self) -> Option<Result<&'s str, ParseError>> {
        let v = match self {
            SplitList::One(v) => v.take()?,
            SplitList::Many(parts) => parts.next()?,
        };
        let v = lex::trim_lws(v);
        Some(if v.is_empty() {
            Err(ParseError::HeaderLine("empty element in a list"))
        } else {
            Ok(v)
        })
    }
}

/// Splits a list header's line at top-level commas; an empty element is an error
/// (`;;`-style separators, RFC 4475 §3.1.2.1).
fn split_list(text: &str) -> SplitList<'_> {
    if lex::find(text.as_bytes(), b',').is_none() {
        SplitList::One(Some(text))
    } else {
        SplitList::Many(lex::top_level(text, b','))
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Message");
        match &self.start {
            StartLine::Request { method, .. } => {
                d.field("method", method).field("uri", &self.uri_text());
            }
            StartLine::Response { status, .. } => {
                d.field("status", status).field("reason", &self.reason());
            }
        }
        d.field("headers", &self.headers.len())
            .field("body", &self.body.len())
            .finish()
    }
}

impl PartialEq for Message {
    /// Two messages are equal when they print the same start line and the same headers
    /// (name as recognized, value with folds replaced) in the same order, with the same body.
    fn eq(&self, other: &Message) -> bool {
        let start_eq = match (&self.start, &other.start) {
            (StartLine::Request { method: m1, .. }, StartLine::Request { method: m2, .. }) => {
                m1 == m2 && self.uri_text() == other.uri_text()
            }
            (StartLine::Response { status: s1, .. }, StartLine::Response { status: s2, .. }) => {
                s1 == s2 && self.reason() == other.reason()
            }
            _ => false,
        };
        start_eq
            && self.body == other.body
            && self.headers.len() == other.headers.len()
            && self.headers.iter().zip(&other.headers).all(|(a, b)| {
                a.name == b.name
                    && self
                        .entry_name_bytes(a)
                        .eq_ignore_ascii_case(other.entry_name_bytes(b))
                        | (a.name != HeaderName::Other)
                    && match (self.entry_text(a), other.entry_text(b)) {
                        (Ok(x), Ok(y)) => x == y,
                        _ => self.entry_value_bytes(a) == other.entry_value_bytes(b),
                    }
            })
    }
}

mod parse;
