//! Parse errors and the answer a user agent gives to a bad message.

use std::borrow::Cow;
use std::fmt;

use super::typed::HeaderError;

/// Why bytes are not an acceptable SIP message.
///
/// Every variant maps to the answer a user agent gives ([`ParseError::verdict`]): a response
/// status with a reason phrase for a request, or "drop" for a response (RFC 3261 §18.1.2, §18.2.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The message is larger than the configured limit.
    #[error("message of {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Size seen so far.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// More header lines than the configured limit.
    #[error("more than {limit} header lines")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// A header line (with its folds) longer than the configured limit.
    #[error("a header line is over the {limit}-byte limit")]
    LineTooLong {
        /// The limit.
        limit: usize,
    },
    /// The start line is not a Request-Line nor a Status-Line.
    #[error("bad start line: {0}")]
    StartLine(&'static str),
    /// The SIP version is well-formed but not SIP/2.0.
    #[error("unsupported version {0}")]
    Version(String),
    /// The Request-URI does not parse.
    #[error("bad Request-URI: {0}")]
    RequestUri(&'static str),
    /// The status code is not three digits from 100 to 699.
    #[error("bad status code")]
    StatusCode,
    /// A header line is not `name: value`.
    #[error("bad header line: {0}")]
    HeaderLine(&'static str),
    /// A header value breaks its grammar.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// A header's value is not valid UTF-8 where text is required.
    #[error("{0} header is not valid UTF-8")]
    NotUtf8(&'static str),
    /// A mandatory header is missing.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A single-value header appears more than once.
    #[error("several {0} headers")]
    Multiple(&'static str),
    /// Content-Length is larger than the body that arrived in the datagram.
    #[error("Content-Length {declared} is larger than the {available}-byte body")]
    BodyTooShort {
        /// Declared length.
        declared: usize,
        /// Bytes available.
        available: usize,
    },
    /// The CSeq method differs from the request method.
    #[error("CSeq method {cseq} does not match the request method {method}")]
    CSeqMismatch {
        /// Request method.
        method: String,
        /// CSeq method.
        cseq: String,
        /// True when the request method is one Tincan does not know (answer 501).
        unknown_method: bool,
    },
    /// The Request-URI scheme is not one Tincan can serve (sip, sips, tel).
    #[error("unsupported URI scheme {0}")]
    UnsupportedScheme(String),
    /// The request requires extensions Tincan does not support.
    #[error("unsupported extensions: {}", .0.join(", "))]
    BadExtension(Vec<String>),
    /// The bytes are empty or only CRLFs (a keep-alive, not a message).
    #[error("no message")]
    Empty,
}

/// What a user agent does with a received datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A good message, handed to the transaction layer.
    Accept,
    /// A bad request, answered statelessly with this status and reason phrase.
    Reject {
        /// The response status code.
        status: u16,
        /// The reason phrase.
        reason: Cow<'static, str>,
    },
    /// A bad response (or something unanswerable): silently discarded.
    Drop,
}

impl Verdict {
    /// `accept`, `reject` or `drop`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Reject { .. } => "reject",
            Verdict::Drop => "drop",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Accept => f.write_str("accept"),
            Verdict::Reject { status, reason } => write!(f, "reject {status} {reason}"),
            Verdict::Drop => f.write_str("drop"),
        }
    }
}

impl ParseError {
    /// The status and reason phrase a UAS answers a request with this defect.
    pub fn response_status(&self) -> (u16, Cow<'static, str>) {
        match self {
            ParseError::TooLarge { .. } => (513, "Message Too Large".into()),
            ParseError::Version(_) => (505, "Version Not Supported".into()),
            ParseError::UnsupportedScheme(_) => (416, "Unsupported URI Scheme".into()),
            ParseError::BadExtension(_) => (420, "Bad Extension".into()),
            ParseError::CSeqMismatch {
                unknown_method: true,
                ..
            } => (501, "Not Implemented".into()),
            ParseError::CSeqMismatch { .. } => (400, "CSeq Method Does Not Match".into()),
            ParseError::Missing(h) => (400, format!("Missing {h} Header").into()),
            ParseError::Multiple(h) => (400, format!("Multiple {h} Headers").into()),
            ParseError::Header(e) => (400, format!("Bad {} Header", e.name).into()),
            ParseError::NotUtf8(h) => (400, format!("Bad {h} Header").into()),
            ParseError::RequestUri(_) => (400, "Bad Request-URI".into()),
            ParseError::BodyTooShort { .. } => (400, "Content-Length Larger Than Body".into()),
            ParseError::StartLine(_) => (400, "Bad Request-Line".into()),
            ParseError::HeaderLine(_) => (400, "Bad Header Line".into()),
            ParseError::TooManyHeaders { .. } => (400, "Too Many Headers".into()),
            ParseError::LineTooLong { .. } => (400, "Header Line Too Long".into()),
            ParseError::StatusCode => (400, "Bad Status Code".into()),
            ParseError::Empty => (400, "Empty Message".into()),
        }
    }

    /// The answer to a message with this defect: a request is rejected with
    /// [`response_status`](Self::response_status), a response (or bytes that are neither) is
    /// dropped.
    pub fn verdict(&self, is_request: bool) -> Verdict {
        if !is_request || matches!(self, ParseError::Empty) {
            return Verdict::Drop;
        }
        let (status, reason) = self.response_status();
        Verdict::Reject { status, reason }
    }
}
