//! Dialogs (RFC 3261 §12) and INVITE sessions (§13-§15).
//!
//! A [`Dialog`] is the state two user agents share after an INVITE: Call-ID, tags, CSeq
//! numbers, the remote target (the peer's Contact) and the route set (the Record-Route of the
//! request that created it). It builds in-dialog requests with loose or strict routing
//! (§12.2.1.1) and checks the ones it receives (§12.2.2).
//!
//! An [`InviteSession`] runs one call on top of dialogs: early dialogs
//! and forking, CANCEL and its race with a 2xx, ACK, BYE, re-INVITE with 491 glare handling and
//! DTMF over INFO, UPDATE (RFC 3311) and session timers (RFC 4028). Both are sans-IO: they take messages and `now`, and give back messages to
//! send and events.

pub mod dialog_info;
pub mod invite;
pub mod notifier;
pub mod refer;
pub mod subscription;

use crate::message::typed::{CSeq, Method, NameAddr};
use crate::message::{HeaderName, Message, RequestBuilder, Uri};

pub use invite::{
    EndReason, InviteConfig, InviteSession, Output, PrackPolicy, Refresher, RequestOutcome,
    SessionEvent, SessionState, SessionTimer, SessionTimerConfig,
};

/// Identifies a dialog: Call-ID, local tag, remote tag (RFC 3261 §12).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag (From tag as UAC, To tag as UAS).
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
}

impl DialogId {
    /// The id of the dialog a received request belongs to (our tag is the To tag).
    pub fn of_request(request: &Message) -> Option<DialogId> {
        Some(DialogId {
            call_id: request.call_id()?.ok()?.as_str().to_owned(),
            local_tag: request.to()?.ok()?.tag()?.to_owned(),
            remote_tag: request.from()?.ok()?.tag()?.to_owned(),
        })
    }

    /// The id of the dialog a received response belongs to (our tag is the From tag).
    pub fn of_response(response: &Message) -> Option<DialogId> {
        Some(DialogId {
            call_id: response.call_id()?.ok()?.as_str().to_owned(),
            local_tag: response.from()?.ok()?.tag()?.to_owned(),
            remote_tag: response.to()?.ok()?.tag()?.to_owned(),
        })
    }
}

/// Whether a dialog is early (created by a provisional) or confirmed (by a 2xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a 1xx with a To tag (§12.1).
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

/// Why a message cannot create a dialog, or a request does not fit one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialogError {
    /// A header the dialog needs is missing or malformed.
    #[error("cannot create a dialog: {0}")]
    Malformed(&'static str),
    /// The request's CSeq is lower than the last one (§12.2.2: answer 500).
    #[error("cseq {got} is lower than the last one ({last})")]
    CSeqOutOfOrder {
        /// The received number.
        got: u32,
        /// The highest one seen.
        last: u32,
    },
}

/// One dialog (RFC 3261 §12).
#[derive(Debug, Clone)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    /// Our From (UAC) / To (UAS), with our tag.
    local: NameAddr<'static>,
    /// The peer's, with its tag.
    remote: NameAddr<'static>,
    local_seq: u32,
    remote_seq: Option<u32>,
    remote_target: Uri<'static>,
    /// The route set, in the order requests carry it.
    route_set: Vec<NameAddr<'static>>,
    local_contact: String,
    secure: bool,
}

fn malformed(what: &'static str) -> DialogError {
    DialogError::Malformed(what)
}

/// The Call-ID and CSeq number of the request that creates a dialog.
fn call_id_and_seq(request: &Message) -> Result<(String, u32), DialogError> {
    let call_id = request
        .call_id()
        .and_then(Result::ok)
        .ok_or(malformed("Call-ID"))?
        .as_str()
        .to_owned();
    let seq = request
        .cseq()
        .and_then(Result::ok)
        .ok_or(malformed("CSeq"))?
        .seq;
    Ok((call_id, seq))
}

/// The Record-Route values of a message whose URIs parse, in message order.
fn record_route(message: &Message) -> Vec<NameAddr<'static>> {
    message
        .record_routes()
        .filter_map(Result::ok)
        .filter(|r| r.uri().is_ok())
        .map(|r| r.0.into_owned())
        .collect()
}

fn contact_uri(message: &Message) -> Option<Uri<'static>> {
    let contact = message.contacts().next()?.ok()?;
    Some(contact.address()?.uri().ok()?.into_owned())
}

impl Dialog {
    /// The UAC's dialog from its request and a 1xx (with To tag) or 2xx response (§12.1.2).
    /// The route set is the response's Record-Route, reversed.
    pub fn uac(request: &Message, response: &Message) -> Result<Dialog, DialogError> {
        let local = request
            .from()
            .and_then(Result::ok)
            .ok_or(malformed("From"))?
            .0
            .into_owned();
        let remote = response
            .to()
            .and_then(Result::ok)
            .ok_or(malformed("To"))?
            .0
            .into_owned();
        let (call_id, seq) = call_id_and_seq(request)?;
        let id = DialogId {
            call_id,
            local_tag: local.tag().ok_or(malformed("From tag"))?.to_owned(),
            remote_tag: remote.tag().ok_or(malformed("To tag"))?.to_owned(),
        };
        let mut route_set = record_route(response);
        route_set.reverse();
        let status = response.status().unwrap_or(0);
        // A 1xx without Contact still makes an early dialog; the target is then the R-URI.
        let remote_target = contact_uri(response)
            .or_else(|| request.uri().map(Uri::into_owned))
            .ok_or(malformed("Contact"))?;
        let secure = request.uri().is_some_and(|u| u.scheme() == "sips");
        Ok(Dialog {
            id,
            state: if status >= 200 {
                DialogState::Confirmed
            } else {
                DialogState::Early
            },
            local,
            remote,
            local_seq: seq,
            remote_seq: None,
            remote_target,
            route_set,
            local_contact: request.header(HeaderName::Contact).unwrap_or("").to_owned(),
            secure,
        })
    }

    /// The UAS's dialog from a received request, our tag and our Contact value (§12.1.1).
    /// The route set is the request's Record-Route, in order.
    pub fn uas(
        request: &Message,
        local_tag: &str,
        local_contact: &str,
    ) -> Result<Dialog, DialogError> {
        let remote = request
            .from()
            .and_then(Result::ok)
            .ok_or(malformed("From"))?
            .0
            .into_owned();
        let mut local = request
            .to()
            .and_then(Result::ok)
            .ok_or(malformed("To"))?
            .0
            .into_owned();
        if local.tag().is_none() {
            local.params.set("tag", Some(local_tag));
        }
        let (call_id, seq) = call_id_and_seq(request)?;
        let id = DialogId {
            call_id,
            local_tag: local.tag().unwrap_or(local_tag).to_owned(),
            remote_tag: remote.tag().ok_or(malformed("From tag"))?.to_owned(),
        };
        let route_set = record_route(request);
        let remote_target = contact_uri(request).ok_or(malformed("Contact"))?;
        let secure = request.uri().is_some_and(|u| u.scheme() == "sips");
        Ok(Dialog {
            id,
            state: DialogState::Early,
            local,
            remote,
            local_seq: 0,
            remote_seq: Some(seq),
            remote_target,
            route_set,
            local_contact: local_contact.to_owned(),
            secure,
        })
    }

    /// The dialog's id.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// Early or confirmed.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Marks the dialog confirmed (a 2xx was sent or received).
    pub fn confirm(&mut self) {
        self.state = DialogState::Confirmed;
    }

    /// The peer's Contact URI.
    pub fn remote_target(&self) -> &Uri<'static> {
        &self.remote_target
    }

    /// The route set, in request order.
    pub fn route_set(&self) -> &[NameAddr<'static>] {
        &self.route_set
    }

    /// Whether the dialog was set up with a `sips` URI.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Our last CSeq number.
    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }

    /// Our address of record with our tag (From of our requests).
    pub fn local(&self) -> &NameAddr<'static> {
        &self.local
    }

    /// The peer's address of record with its tag.
    pub fn remote(&self) -> &NameAddr<'static> {
        &self.remote
    }

    /// Where an in-dialog request goes first (§8.1.2): the first route when there is a
    /// route set, otherwise the remote target. Resolve it with RFC 3263.
    pub fn next_hop(&self) -> Uri<'static> {
        self.route_set
            .first()
            .and_then(|r| r.uri().ok().map(Uri::into_owned))
            .unwrap_or_else(|| self.remote_target.clone())
    }

    /// A new in-dialog request with the next CSeq (§12.2.1.1). Not for ACK or CANCEL.
    pub fn request(&mut self, method: Method) -> Message {
        self.local_seq = self.local_seq.wrapping_add(1);
        self.build(method, self.local_seq)
    }

    /// The ACK of a 2xx to the INVITE with CSeq `seq` (§13.2.2.4), with an optional body (the
    /// answer to an offer in the 2xx).
    pub fn ack(&self, seq: u32, body: Option<(&str, bytes::Bytes)>) -> Message {
        let mut ack = self.build(Method::Ack, seq);
        if let Some((content_type, body)) = body {
            ack.set_body(Some(content_type), body);
        }
        ack
    }

    fn build(&self, method: Method, seq: u32) -> Message {
        let loose = self.route_set.first().is_none_or(|r| {
            r.uri()
                .is_ok_and(|u| u.as_sip().is_some_and(|u| u.params.contains("lr")))
        });
        let (request_uri, routes): (Uri<'static>, Vec<String>) = if loose {
            (
                self.remote_target.clone(),
                self.route_set.iter().map(ToString::to_string).collect(),
            )
        } else {
            // Strict routing (§12.2.1.1): the first route becomes the Request-URI and the
            // remote target the last Route.
            let mut first = self.route_set[0]
                .uri()
                .map_or_else(|_| self.remote_target.clone(), Uri::into_owned);
            if let Uri::Sip(u) = &mut first {
                u.headers = None;
            }
            let mut routes: Vec<String> = self.route_set[1..]
                .iter()
                .map(ToString::to_string)
                .collect();
            routes.push(NameAddr::new(self.remote_target.clone()).to_string());
            (first, routes)
        };
        let mut b = RequestBuilder::new(method.clone(), &request_uri);
        for r in &routes {
            b = b.header(HeaderName::Route, r);
        }
        b = b
            .header(HeaderName::From, &self.local.to_string())
            .header(HeaderName::To, &self.remote.to_string())
            .call_id(&self.id.call_id)
            .typed(&CSeq { seq, method });
        if !self.local_contact.is_empty() {
            b = b.header(HeaderName::Contact, &self.local_contact);
        }
        b.build()
    }

    /// Checks a received in-dialog request (§12.2.2): CSeq order, and the remote target
    /// refresh of a re-INVITE (or UPDATE) with a Contact.
    pub fn receive_request(&mut self, request: &Message) -> Result<(), DialogError> {
        let cseq = request
            .cseq()
            .and_then(Result::ok)
            .ok_or(malformed("CSeq"))?;
        let method = request.method().cloned().unwrap_or(Method::Options);
        if !matches!(method, Method::Ack | Method::Cancel) {
            if let Some(last) = self.remote_seq
                && cseq.seq < last
            {
                return Err(DialogError::CSeqOutOfOrder {
                    got: cseq.seq,
                    last,
                });
            }
            self.remote_seq = Some(cseq.seq);
        }
        if is_target_refresh(&method)
            && let Some(target) = contact_uri(request)
        {
            self.remote_target = target;
        }
        Ok(())
    }

    /// Takes what a response to one of our requests changes: a 2xx to a target refresh
    /// request updates the remote target (§12.2.1.2); a 2xx confirms the dialog.
    pub fn receive_response(&mut self, response: &Message) {
        let status = response.status().unwrap_or(0);
        let method = response
            .cseq()
            .and_then(Result::ok)
            .map(|c| c.method)
            .unwrap_or(Method::Options);
        if (200..300).contains(&status) {
            if method == Method::Invite {
                self.state = DialogState::Confirmed;
            }
            if is_target_refresh(&method)
                && let Some(target) = contact_uri(response)
            {
                self.remote_target = target;
            }
        } else if (101..200).contains(&status)
            && method == Method::Invite
            && let Some(target) = contact_uri(response)
        {
            // An early dialog's target follows the latest provisional (§12.1.2 / §13.2.2.4).
            self.remote_target = target;
        }
    }

    /// Whether a response (from a fork) belongs to this dialog.
    pub fn matches_response(&self, response: &Message) -> bool {
        DialogId::of_response(response).is_some_and(|id| id == self.id)
    }

    /// Whether a request belongs to this dialog.
    pub fn matches_request(&self, request: &Message) -> bool {
        DialogId::of_request(request).is_some_and(|id| id == self.id)
    }
}

fn is_target_refresh(method: &Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn msg(s: &str) -> Message {
        Message::parse(Bytes::from(s.replace('\n', "\r\n"))).unwrap()
    }

    fn invite() -> Message {
        msg("INVITE sip:bob@biloxi.com SIP/2.0\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\n\
Max-Forwards: 70\n\
To: Bob <sip:bob@biloxi.com>\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\n\
CSeq: 314159 INVITE\n\
Contact: <sip:alice@pc33.atlanta.com>\n\
Record-Route: <sip:p2.biloxi.com;lr>, <sip:p1.atlanta.com;lr>\n\
Content-Length: 0\n\n")
    }

    fn ok() -> Message {
        msg("SIP/2.0 200 OK\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\n\
To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\n\
CSeq: 314159 INVITE\n\
Contact: <sip:bob@192.0.2.4>\n\
Record-Route: <sip:p2.biloxi.com;lr>, <sip:p1.atlanta.com;lr>\n\
Content-Length: 0\n\n")
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_loose_routes() {
        let mut d = Dialog::uac(&invite(), &ok()).unwrap();
        assert_eq!(d.state(), DialogState::Confirmed);
        assert_eq!(d.id().remote_tag, "a6c85cf");
        assert_eq!(d.next_hop().to_string(), "sip:p1.atlanta.com;lr");
        let bye = d.request(Method::Bye);
        let text = bye.to_string();
        assert!(
            text.starts_with("BYE sip:bob@192.0.2.4 SIP/2.0\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Route: <sip:p1.atlanta.com;lr>\r\nRoute: <sip:p2.biloxi.com;lr>\r\n")
        );
        assert!(text.contains("CSeq: 314160 BYE\r\n"));
        assert!(text.contains("To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n"));
        let ack = d.ack(314159, None);
        assert!(ack.to_string().contains("CSeq: 314159 ACK\r\n"));
    }

    #[test]
    fn uas_dialog_keeps_order_and_checks_cseq() {
        let mut d = Dialog::uas(&invite(), "xyz", "<sip:bob@192.0.2.4>").unwrap();
        assert_eq!(d.next_hop().to_string(), "sip:p2.biloxi.com;lr");
        let bye = d.request(Method::Bye);
        let text = bye.to_string();
        assert!(text.starts_with("BYE sip:alice@pc33.atlanta.com SIP/2.0\r\n"));
        assert!(text.contains("From: Bob <sip:bob@biloxi.com>;tag=xyz\r\n"));
        assert!(text.contains("CSeq: 1 BYE\r\n"));
        let mut old = invite();
        old.set_header(HeaderName::CSeq, "3 INVITE");
        assert!(matches!(
            d.receive_request(&old),
            Err(DialogError::CSeqOutOfOrder { .. })
        ));
        let mut re = invite();
        re.set_header(HeaderName::CSeq, "314160 INVITE");
        re.set_header(HeaderName::Contact, "<sip:alice@198.51.100.7>");
        d.receive_request(&re).unwrap();
        assert_eq!(d.remote_target().to_string(), "sip:alice@198.51.100.7");
    }

    #[test]
    fn strict_route_puts_the_target_last() {
        let mut inv = invite();
        inv.set_header(HeaderName::RecordRoute, "<sip:strict.example.com>");
        let mut d = Dialog::uas(&inv, "t", "<sip:bob@192.0.2.4>").unwrap();
        let text = d.request(Method::Bye).to_string();
        assert!(
            text.starts_with("BYE sip:strict.example.com SIP/2.0\r\n"),
            "{text}"
        );
        assert!(text.contains("Route: <sip:alice@pc33.atlanta.com>\r\n"));
    }
}
