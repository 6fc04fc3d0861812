//! Message waiting indication (RFC 3842): the `message-summary` NOTIFYs a PBX sends.
//!
//! Many PBXs (Asterisk's `unsolicited_mwi`, FreeSWITCH, most hosted ones) send a registered
//! phone NOTIFYs with `Event: message-summary` without any subscription. The phone answers
//! them 200 and reports the counts as [`PhoneEvent::MessageWaiting`]; a NOTIFY of any other
//! event package is answered 481 (no such subscription, RFC 6665 §4.1.3). Subscribing to
//! `message-summary` is not done yet.

use std::time::Instant;

use tincan_sip::message::{HeaderName, Message, response_to};
use tincan_sip::transaction::TransactionId;

use super::PhoneCore;
use super::call::user_of;
use super::event::{AccountId, PhoneEvent};

/// The event package of RFC 3842.
pub const MESSAGE_SUMMARY: &str = "message-summary";

/// A `message-summary` body (RFC 3842 §5.2), read leniently: unknown lines are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageSummary {
    /// `Messages-Waiting: yes`.
    pub waiting: bool,
    /// `Message-Account`: the mailbox's URI, if given.
    pub message_account: Option<String>,
    /// The counts by message context class (`voice`, `fax`, `text`...), lowercase.
    pub counts: Vec<(String, MessageCounts)>,
}

/// The counts of one message context class: `Voice-Message: 2/8 (0/2)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MessageCounts {
    /// New messages.
    pub new: u32,
    /// Old messages.
    pub old: u32,
    /// New urgent messages (among `new`).
    pub urgent_new: u32,
    /// Old urgent messages (among `old`).
    pub urgent_old: u32,
}

impl MessageSummary {
    /// Parses a `message-summary` body; `None` without a `Messages-Waiting` line.
    pub fn parse(body: &str) -> Option<MessageSummary> {
        let mut summary = MessageSummary::default();
        let mut seen_status = false;
        for line in body.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            match name.as_str() {
                "messages-waiting" => {
                    seen_status = true;
                    summary.waiting = value.eq_ignore_ascii_case("yes");
                }
                "message-account" => summary.message_account = Some(value.to_owned()),
                _ => {
                    if let Some(class) = name.strip_suffix("-message")
                        && let Some(counts) = MessageCounts::parse(value)
                    {
                        summary.counts.push((class.to_owned(), counts));
                    }
                }
            }
        }
        seen_status.then_some(summary)
    }

    /// The voice-message counts, if given.
    pub fn voice(&self) -> Option<MessageCounts> {
        self.counts
            .iter()
            .find(|(c, _)| c == "voice")
            .map(|(_, n)| *n)
    }
}

impl MessageCounts {
    /// `new/old` with an optional `(urgent_new/urgent_old)`.
    fn parse(value: &str) -> Option<MessageCounts> {
        let (main, urgent) = match value.split_once('(') {
            Some((m, u)) => (m, Some(u.trim_end_matches(')'))),
            None => (value, None),
        };
        let pair = |text: &str| -> Option<(u32, u32)> {
            let (a, b) = text.split_once('/')?;
            Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
        };
        let (new, old) = pair(main)?;
        let (urgent_new, urgent_old) = match urgent {
            Some(u) => pair(u)?,
            None => (0, 0),
        };
        Some(MessageCounts {
            new,
            old,
            urgent_new,
            urgent_old,
        })
    }
}

/// A message-waiting report ([`PhoneEvent::MessageWaiting`]).
#[derive(Debug, Clone)]
pub struct MessageWaiting {
    /// The account whose address the NOTIFY was sent to, if any.
    pub account: Option<AccountId>,
    /// What the body said.
    pub summary: MessageSummary,
}

impl PhoneCore {
    /// A NOTIFY (server transaction `tx`): a `message-summary` one is answered 200 and
    /// reported (400 when its body says nothing); any other is answered 481.
    pub(super) fn incoming_notify(&mut self, now: Instant, tx: TransactionId, request: &Message) {
        let event = request
            .header(HeaderName::Event)
            .and_then(|e| e.split(';').next())
            .map(|e| e.trim().to_ascii_lowercase());
        let tag = self.token(10);
        if event.as_deref() != Some(MESSAGE_SUMMARY) {
            let mut r = response_to(request, 481, None);
            r.set_to_tag(&tag);
            let _ = self.endpoint.send_response(now, tx, r);
            return;
        }
        let summary = std::str::from_utf8(request.body())
            .ok()
            .and_then(MessageSummary::parse);
        let Some(summary) = summary else {
            let mut r = response_to(request, 400, Some("Bad message-summary body"));
            r.set_to_tag(&tag);
            let _ = self.endpoint.send_response(now, tx, r);
            return;
        };
        let to_user = request.to().and_then(Result::ok).and_then(|t| {
            t.uri()
                .ok()
                .and_then(|u| u.as_sip()?.user.as_deref().map(str::to_owned))
        });
        let account = to_user.and_then(|user| {
            self.accounts
                .iter()
                .position(|a| user_of(&a.config.aor).is_some_and(|u| u == user))
                .map(AccountId)
        });
        let mut r = response_to(request, 200, None);
        r.set_to_tag(&tag);
        let _ = self.endpoint.send_response(now, tx, r);
        self.events
            .push_back(PhoneEvent::MessageWaiting(MessageWaiting {
                account,
                summary,
            }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3842_example() {
        let body = "Messages-Waiting: yes\r\n\
                    Message-Account: sip:alice@vmail.example.com\r\n\
                    Voice-Message: 2/8 (0/2)\r\n";
        let s = MessageSummary::parse(body).expect("a summary");
        assert!(s.waiting);
        assert_eq!(
            s.message_account.as_deref(),
            Some("sip:alice@vmail.example.com")
        );
        assert_eq!(
            s.voice(),
            Some(MessageCounts {
                new: 2,
                old: 8,
                urgent_new: 0,
                urgent_old: 2
            })
        );
    }

    #[test]
    fn lenient_and_bounded() {
        let s = MessageSummary::parse(
            "messages-waiting: no\nFax-Message: 1/0\ngarbage\nVoice-Message: x/y\n",
        )
        .expect("a summary");
        assert!(!s.waiting);
        assert_eq!(s.counts.len(), 1);
        assert_eq!(s.voice(), None);
        assert_eq!(MessageSummary::parse(""), None);
        let s = MessageSummary::parse("Messages-Waiting: yes\nVoice-Message: 99999999999/1")
            .expect("a summary");
        assert!(s.counts.is_empty());
    }
}
