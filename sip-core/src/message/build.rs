//! Building requests and responses.

use bytes::Bytes;

use super::typed::{self, CSeq, Method};
use super::{Entry, HeaderName, Message, Slot, StartLine, Uri};

/// Builds a request header by header.
///
/// ```
/// use tincan_sip::message::{Method, RequestBuilder, Uri};
/// let uri = Uri::parse("sip:bob@example.com").unwrap();
/// let msg = RequestBuilder::new(Method::Options, &uri)
///     .header(tincan_sip::message::HeaderName::Via, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx")
///     .header(tincan_sip::message::HeaderName::From, "<sip:alice@example.com>;tag=1")
///     .header(tincan_sip::message::HeaderName::To, "<sip:bob@example.com>")
///     .call_id("abc@192.0.2.1")
///     .cseq(1)
///     .build();
/// assert!(msg.to_bytes().starts_with(b"OPTIONS sip:bob@example.com SIP/2.0\r\n"));
/// ```
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    msg: Message,
    max_forwards: bool,
}

impl RequestBuilder {
    /// Starts a request.
    pub fn new(method: Method, uri: &Uri<'_>) -> RequestBuilder {
        RequestBuilder {
            msg: Message::new_request(method, uri),
            max_forwards: false,
        }
    }

    /// Adds a header line (typed values print themselves: `&via.to_string()`).
    pub fn header(mut self, name: HeaderName, value: &str) -> RequestBuilder {
        if name == HeaderName::MaxForwards {
            self.max_forwards = true;
        }
        self.msg.push_header(name, value);
        self
    }

    /// Adds a typed header.
    pub fn typed<'v, T: typed::Header<'v>>(self, value: &T) -> RequestBuilder {
        self.header(T::NAME, &value.to_string())
    }

    /// Adds a header line with any name.
    pub fn header_named(mut self, name: &str, value: &str) -> RequestBuilder {
        self.msg.push_header_named(name, value);
        self
    }

    /// Sets Call-ID.
    pub fn call_id(self, id: &str) -> RequestBuilder {
        self.header(HeaderName::CallId, id)
    }

    /// Sets CSeq with the request's method.
    pub fn cseq(self, seq: u32) -> RequestBuilder {
        let method = self.msg.method().cloned().unwrap_or(Method::Options);
        let v = CSeq { seq, method }.to_string();
        self.header(HeaderName::CSeq, &v)
    }

    /// Sets the body with its Content-Type.
    pub fn body(mut self, content_type: &str, body: Bytes) -> RequestBuilder {
        self.msg.set_body(Some(content_type), body);
        self
    }

    /// Finishes: adds `Max-Forwards: 70` (§8.1.1.6) unless set, and `Content-Length`.
    pub fn build(mut self) -> Message {
        if !self.max_forwards {
            self.msg.push_header(HeaderName::MaxForwards, "70");
        }
        if self.msg.entries(HeaderName::ContentLength).next().is_none() {
            let len = self.msg.body.len().to_string();
            self.msg.push_header(HeaderName::ContentLength, &len);
        }
        self.msg
    }
}

/// The standard reason phrase of a status code (RFC 3261 §21 and extensions).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        430 => "Flow Failed",
        439 => "First Hop Lacks Outbound Support",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

/// A response to `request` (RFC 3261 §8.2.6.2): the Via lines, From, To, Call-ID and CSeq
/// copied exactly as received (without copying their bytes), `Content-Length: 0`.
///
/// Add the To tag with [`Message::set_to_tag`] when the response establishes or belongs to a
/// dialog. `reason` defaults to the standard phrase.
pub fn response_to(request: &Message, status: u16, reason: Option<&str>) -> Message {
    let headers: Vec<Entry> = request
        .headers
        .iter()
        .filter(|e| {
            matches!(
                e.name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
            )
        })
        .cloned()
        .collect();
    let mut msg = Message {
        buf: request.buf.clone(),
        start: StartLine::Response {
            status,
            reason: Slot::Owned(reason.unwrap_or(reason_phrase(status)).into()),
        },
        headers,
        body: Bytes::new(),
    };
    msg.push_header(HeaderName::ContentLength, "0");
    msg
}

impl Message {
    /// Adds a `tag` to the To header unless it has one (a UAS's tag, §8.2.6.2).
    pub fn set_to_tag(&mut self, tag: &str) {
        let Some(Ok(to)) = self.to() else {
            return;
        };
        if to.tag().is_some() {
            return;
        }
        let mut to = to.into_owned();
        to.0.params.set("tag", Some(tag));
        self.set(&to);
    }

    /// Appends a header line copied from another message, exactly as it was received.
    pub fn copy_header_from(&mut self, other: &Message, name: HeaderName) {
        for e in other.entries(name) {
            let text = String::from_utf8_lossy(other.entry_value_bytes(e)).into_owned();
            self.push_header(name, &text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_copies_headers() {
        let req = Message::parse(Bytes::from_static(
            b"INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n\
Via: SIP/2.0/UDP a.example.com;branch=z9hG4bKa\r\n\
Max-Forwards: 70\r\nTo: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\nCSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.com>\r\nContent-Length: 0\r\n\r\n",
        ))
        .unwrap();
        let mut resp = response_to(&req, 180, None);
        resp.set_to_tag("a6c85cf");
        let text = resp.to_string();
        assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"));
        assert!(text.contains("Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bKa\r\n"));
        assert!(text.contains("To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n"));
        assert!(!text.contains("Contact"));
        let again = Message::parse(resp.to_bytes()).unwrap();
        assert_eq!(again.status(), Some(180));
        assert_eq!(again.to().unwrap().unwrap().tag(), Some("a6c85cf"));
    }
}
