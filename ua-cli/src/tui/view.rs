//! The view model: a pure [`PhoneView`] updated from [`PhoneEvent`]s, and a pure [`render`]
//! of it into a ratatui [`Frame`]. No clock and no I/O: durations advance with [`PhoneView::tick`].

use std::collections::BTreeMap;
use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use tincan::phone::{AccountEvent, AccountId, CallEvent, CallId, PhoneEvent, Quality};
use tincan_sip::transport::Target;

use super::conversation::{Conversation, Entry, Unread};
use super::input::{HELP_LINES, KEY_HELP};
use super::meters::{CallAudio, meter_lines};
use crate::cmd::call::caller_text;

/// An account's registration as the screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// Not registering (the account only routes calls).
    Idle,
    /// Bound at a registrar.
    Registered,
    /// Not registered; the reason.
    Failed(String),
    /// Registering: no result yet.
    Registering,
}

/// One account line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    /// The phone's id of the account.
    pub id: AccountId,
    /// Its name in the config.
    pub name: String,
    /// Its registration.
    pub registration: Registration,
    /// The registrar it is bound to (`udp:192.0.2.1:5060`), once known.
    pub registrar: Option<String>,
    /// Every registrar the account has heard of, with whether it was up the last time.
    pub registrars: Vec<RegistrarHealth>,
    /// The voicemail counts (new, old) of the last `message-summary` NOTIFY (RFC 3842).
    pub voicemail: Option<(u32, u32)>,
    /// The watched contacts (`[[account]] watch`) and their last presence, in the order
    /// they were first reported.
    pub watched: Vec<(String, tincan::phone::presence::PresenceStatus)>,
    /// The busy lamps of the contacts watched (`[[account]] blf`, RFC 4235), in the order
    /// they were first reported.
    pub lamps: Vec<(String, tincan::phone::blf::Lamp)>,
}

/// A registrar of an account and how it did the last time it was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarHealth {
    /// `udp:192.0.2.1:5060`.
    pub target: String,
    /// Whether it answered (registered us) the last time.
    pub up: bool,
    /// Whether a registration of the account is bound there now.
    pub bound: bool,
}

/// A call's state as the screen shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallState {
    /// We called; no answer yet.
    Dialling,
    /// It rings: the peer's phone (outgoing) or ours (incoming).
    Ringing,
    /// The callee sends early media (183).
    EarlyMedia,
    /// Answered.
    Talking,
    /// We put it on hold.
    OnHold,
    /// The peer put it on hold.
    HeldByPeer,
}

impl CallState {
    /// The word on the screen.
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Dialling => "dialling",
            CallState::Ringing => "ringing",
            CallState::EarlyMedia => "early media",
            CallState::Talking => "talking",
            CallState::OnHold => "on hold",
            CallState::HeldByPeer => "held by peer",
        }
    }
}

/// One call line.
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    /// The phone's id of the call.
    pub id: CallId,
    /// Who is at the other end (the URI called, or the caller's From).
    pub peer: String,
    /// Whether the peer called us.
    pub incoming: bool,
    /// The account the call came in for or goes out through, when there is one.
    pub account: Option<AccountId>,
    /// Its state.
    pub state: CallState,
    /// How long it has been answered, advanced by [`PhoneView::tick`].
    pub duration: Duration,
    /// The codec, once answered.
    pub codec: Option<String>,
    /// Whether the media is SRTP.
    pub srtp: bool,
    /// The latest quality report.
    pub quality: Option<Quality>,
}

/// Everything the screen shows.
#[derive(Debug, Clone, Default)]
pub struct PhoneView {
    /// The accounts, in config order.
    pub accounts: Vec<AccountView>,
    /// The calls, oldest first.
    pub calls: Vec<CallView>,
    /// The selected call (keys act on it).
    pub selected: Option<CallId>,
    /// The dial prompt's text, while it is open.
    pub dial: Option<String>,
    /// Whether the help overlay shows.
    pub help: bool,
    /// The last thing worth saying (a call ended, an error).
    pub status: Option<String>,
    /// The addresses the phone listens on (`udp:0.0.0.0:5060`).
    pub listening: Vec<String>,
    /// The calls we declined, with the status we declined them with.
    pub declined: Vec<(CallId, u16)>,
    /// The dial prompt transfers this call (`t`) instead of dialling.
    pub transfer_of: Option<CallId>,
    /// The transfer a peer asked for (a REFER): its call and target, until `y` or `n`.
    pub transfer_request: Option<(CallId, String)>,
    /// The calls we transferred (their end says so).
    pub transferred: Vec<CallId>,
    /// The two calls joined in a three-way conference (`c`).
    pub conference: Option<(CallId, CallId)>,
    /// The panes (`r`, `l`, `v`) and the dial completion.
    pub panes: super::panes::Panes,
    /// Each call's mute and levels ([`super::meters`]).
    pub audio: BTreeMap<CallId, CallAudio>,
    /// The dial prompt asks whom to write to (`M` with no one to pick) instead of dialling.
    pub message_to: bool,
    /// The open conversation (`M`), if any: the keys type into it.
    pub conversation: Option<Conversation>,
    /// The messages received while their conversation was not open.
    pub unread: Unread,
}

impl PhoneView {
    /// Adds an account line.
    pub fn add_account(&mut self, id: AccountId, name: &str, registration: Registration) {
        self.accounts.push(AccountView {
            id,
            name: name.to_owned(),
            registration,
            registrar: None,
            registrars: Vec::new(),
            voicemail: None,
            watched: Vec::new(),
            lamps: Vec::new(),
        });
    }

    /// Adds a call we placed to `uri`, and selects it.
    pub fn add_outgoing(&mut self, id: CallId, uri: &str, account: Option<AccountId>) {
        self.calls.push(CallView {
            id,
            peer: uri.to_owned(),
            incoming: false,
            account,
            state: CallState::Dialling,
            duration: Duration::ZERO,
            codec: None,
            srtp: false,
            quality: None,
        });
        self.selected = Some(id);
    }

    /// The selected call.
    pub fn selected_call(&self) -> Option<&CallView> {
        let id = self.selected?;
        self.calls.iter().find(|c| c.id == id)
    }

    /// The two calls of an attended transfer (`T`): the selected call and another call, both
    /// up (talking or held either way); `None` without two such calls.
    pub fn transfer_pair(&self) -> Option<(CallId, CallId)> {
        let up = |c: &&CallView| {
            matches!(
                c.state,
                CallState::Talking | CallState::OnHold | CallState::HeldByPeer
            )
        };
        let selected = self.selected_call().filter(up)?.id;
        let other = self
            .calls
            .iter()
            .filter(up)
            .map(|c| c.id)
            .find(|c| *c != selected)?;
        Some((selected, other))
    }

    /// Selects the next call (Tab), wrapping around.
    pub fn select_next(&mut self) {
        if self.calls.is_empty() {
            self.selected = None;
            return;
        }
        let i = self
            .selected
            .and_then(|id| self.calls.iter().position(|c| c.id == id))
            .map_or(0, |i| (i + 1) % self.calls.len());
        self.selected = Some(self.calls[i].id);
    }

    /// One second passed: answered calls grow one second older.
    pub fn tick(&mut self, elapsed: Duration) {
        for c in &mut self.calls {
            if matches!(
                c.state,
                CallState::Talking | CallState::OnHold | CallState::HeldByPeer
            ) {
                c.duration += elapsed;
            }
        }
    }

    fn call_mut(&mut self, id: CallId) -> Option<&mut CallView> {
        self.calls.iter_mut().find(|c| c.id == id)
    }

    /// Takes in what the phone reports of `account`'s registrars
    /// ([`Phone::registrar_health`](tincan::phone::driver::Phone::registrar_health)); an
    /// empty list (registrars being located) keeps what the events told. Returns whether
    /// anything changed.
    pub fn set_registrars(&mut self, account: AccountId, registrars: Vec<RegistrarHealth>) -> bool {
        let Some(a) = self.accounts.iter_mut().find(|a| a.id == account) else {
            return false;
        };
        if registrars.is_empty() || a.registrars == registrars {
            return false;
        }
        a.registrars = registrars;
        true
    }

    /// Takes in one event of the phone.
    pub fn apply(&mut self, event: &PhoneEvent) {
        self.apply_audio(event);
        match event {
            PhoneEvent::Incoming(incoming) => {
                self.calls.push(CallView {
                    id: incoming.call,
                    // The display name and URI, without the From tag.
                    peer: caller_text(&incoming.from),
                    incoming: true,
                    account: incoming.account,
                    state: CallState::Ringing,
                    duration: Duration::ZERO,
                    codec: None,
                    srtp: false,
                    quality: None,
                });
                // A call waiting rings beside the one in progress; an idle phone selects it.
                if self
                    .selected_call()
                    .is_none_or(|c| c.state != CallState::Talking)
                {
                    self.selected = Some(incoming.call);
                }
                self.status = Some(format!(
                    "incoming call from {}",
                    caller_text(&incoming.from)
                ));
            }
            PhoneEvent::MessageWaiting(mw) => {
                let counts = mw.summary.voice().map(|c| (c.new, c.old));
                let counts = counts.or(mw.summary.waiting.then_some((1, 0)));
                let i = self
                    .accounts
                    .iter()
                    .position(|a| Some(a.id) == mw.account)
                    .unwrap_or(0);
                if let Some(a) = self.accounts.get_mut(i) {
                    a.voicemail = counts;
                }
            }
            PhoneEvent::Presence(tincan::phone::presence::PresenceEvent::Changed {
                account,
                uri,
                status,
                ..
            }) => {
                if let Some(a) = self.accounts.iter_mut().find(|a| a.id == *account) {
                    // Control characters escaped: a configured URI, but shown on the screen.
                    let uri = uri.escape_default().to_string();
                    match a.watched.iter_mut().find(|(u, _)| *u == uri) {
                        Some(w) => w.1 = *status,
                        None => a.watched.push((uri, *status)),
                    }
                }
            }
            PhoneEvent::Lamp(change) => {
                if let Some(a) = self.accounts.iter_mut().find(|a| a.id == change.account) {
                    // Control characters escaped, as for presence.
                    let uri = change.uri.escape_default().to_string();
                    match a.lamps.iter_mut().find(|(u, _)| *u == uri) {
                        Some(l) => l.1 = change.lamp,
                        None => a.lamps.push((uri, change.lamp)),
                    }
                }
            }
            PhoneEvent::Message(tincan::phone::MessageEvent::Received(m)) => {
                // Control characters escaped: a peer's text cannot drive the terminal.
                self.status = Some(crate::cmd::message::received_line(m, false));
            }
            PhoneEvent::Message(report) => {
                if let Some(c) = &mut self.conversation {
                    c.report(report);
                }
            }
            PhoneEvent::Refused(r) => {
                self.status = Some(format!(
                    "refused a call from {} ({})",
                    caller_text(&r.from),
                    r.status
                ));
            }
            PhoneEvent::Account { account, event } => self.apply_account(*account, event),
            PhoneEvent::Call { call, event } => self.apply_call(*call, event),
            _ => {}
        }
    }

    /// Takes in a message received (as the history keeps it): at the bottom of its open
    /// conversation, else counted as unread (on the account lines) and said on the status
    /// line.
    pub fn message_received(&mut self, record: &tincan::history::MessageRecord) {
        if let Some(c) = &mut self.conversation
            && c.peer == record.peer_uri
        {
            c.push(Entry::from_record(record));
            return;
        }
        let name = record.peer_name.as_ref().unwrap_or(&record.peer_uri);
        self.unread.add(&record.peer_uri, name);
        if self.conversation.is_some()
            && let Some(s) = &mut self.status
        {
            s.push_str("  (Tab opens)");
        }
    }

    /// Opens the conversation `conversation` (its unread messages are read).
    pub fn open_conversation(&mut self, conversation: Conversation) {
        self.unread.clear(&conversation.peer);
        self.conversation = Some(conversation);
        // Tab has nothing more to open.
        if self.unread.newest().is_none()
            && let Some(s) = &mut self.status
            && let Some(said) = s.strip_suffix("  (Tab opens)")
        {
            *s = said.to_owned();
        }
    }

    fn apply_account(&mut self, id: AccountId, event: &AccountEvent) {
        let Some(a) = self.accounts.iter_mut().find(|a| a.id == id) else {
            return;
        };
        a.note_health(event);
        match event {
            AccountEvent::Registered { registrar, .. }
            | AccountEvent::FlowRecovered { registrar, .. } => {
                a.registration = Registration::Registered;
                a.registrar = Some(format!(
                    "{}:{}",
                    registrar.transport.as_str(),
                    registrar.addr
                ));
            }
            AccountEvent::Failed { attempt, .. } => {
                a.registration = Registration::Failed(attempt.to_string());
            }
            AccountEvent::AuthenticationFailed { status, .. } => {
                a.registration = Registration::Failed(format!("credentials refused ({status})"));
            }
            AccountEvent::ChallengeRefused { .. } => {
                a.registration = Registration::Failed("challenge for another realm".into());
            }
            AccountEvent::Rejected { status, reason, .. } => {
                a.registration = Registration::Failed(format!("{status} {reason}"));
            }
            AccountEvent::Unavailable {
                tried,
                errors,
                retry_in,
            } => {
                let why = tried
                    .last()
                    .map(ToString::to_string)
                    .or_else(|| errors.last().cloned())
                    .unwrap_or_else(|| "no registrar".to_owned());
                a.registration = Registration::Failed(format!(
                    "unavailable, retrying in {} s: {why}",
                    retry_in.as_secs()
                ));
            }
            AccountEvent::Unregistered { .. } => {
                a.registration = Registration::Idle;
                a.registrar = None;
            }
            AccountEvent::FlowFailed { reason, .. } => {
                a.registration = Registration::Failed(format!("flow failed: {reason}"));
            }
            _ => {}
        }
    }

    fn apply_call(&mut self, id: CallId, event: &CallEvent) {
        if let CallEvent::Ended(end) = event {
            if let Some(i) = self.calls.iter().position(|c| c.id == id) {
                let c = self.calls.remove(i);
                let declined = self
                    .declined
                    .iter()
                    .find(|(d, _)| *d == id)
                    .map(|(_, s)| *s);
                self.declined.retain(|(d, _)| *d != id);
                self.status = Some(if self.transferred.contains(&id) {
                    format!("call with {} transferred", c.peer)
                } else {
                    ended_status(&c.peer, end, declined)
                });
                self.transferred.retain(|t| *t != id);
            }
            if self.selected == Some(id) {
                self.selected = self.calls.first().map(|c| c.id);
            }
            return;
        }
        if self.apply_transfer(id, event) {
            return;
        }
        let Some(c) = self.call_mut(id) else {
            return;
        };
        match event {
            CallEvent::Progress { status: 180, .. } => c.state = CallState::Ringing,
            CallEvent::Progress { status: 183, .. } => c.state = CallState::EarlyMedia,
            CallEvent::Answered { codec, srtp, .. } | CallEvent::CodecChanged { codec, srtp } => {
                if matches!(
                    c.state,
                    CallState::Dialling | CallState::Ringing | CallState::EarlyMedia
                ) {
                    c.state = CallState::Talking;
                }
                c.codec = Some(codec.to_string());
                c.srtp = *srtp;
            }
            CallEvent::Quality(q) => c.quality = Some(q.clone()),
            CallEvent::Hold { by_peer } => {
                c.state = if *by_peer {
                    CallState::HeldByPeer
                } else {
                    CallState::OnHold
                };
            }
            CallEvent::Resumed { .. } => c.state = CallState::Talking,
            _ => {}
        }
    }
}

impl PhoneView {
    /// Takes in a transfer event of call `id`; whether it was one.
    fn apply_transfer(&mut self, id: CallId, event: &CallEvent) -> bool {
        let peer = self
            .calls
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.peer.clone())
            .unwrap_or_default();
        let new_call = |id: CallId, peer: String, incoming: bool, state: CallState| CallView {
            id,
            peer,
            incoming,
            account: None,
            state,
            duration: Duration::ZERO,
            codec: None,
            srtp: false,
            quality: None,
        };
        match event {
            CallEvent::Conference { with } => match with {
                Some(other) => {
                    self.conference = Some((id, *other));
                    self.status = Some("three-way conference: c splits it".into());
                }
                None if self.conference.is_some() => {
                    self.conference = None;
                    self.status = Some("conference ended: the calls are apart".into());
                }
                None => {}
            },
            CallEvent::TransferRequested { to, .. } => {
                self.transfer_request = Some((id, to.clone()));
                self.status = Some(format!(
                    "{peer} asks to transfer you to {to}: y accepts, n refuses"
                ));
            }
            CallEvent::TransferStarted { new_call: new } => {
                let to = match self.transfer_request.take() {
                    Some((c, to)) if c == id => to,
                    _ => "the transfer target".to_owned(),
                };
                self.calls
                    .push(new_call(*new, to.clone(), false, CallState::Dialling));
                self.selected = Some(*new);
                self.status = Some(format!("transferred by {peer}: calling {to}"));
            }
            CallEvent::Replaced { by } => {
                self.calls.push(new_call(
                    *by,
                    format!("{peer} (replaced)"),
                    true,
                    CallState::Talking,
                ));
                self.selected = Some(*by);
                self.status = Some(format!("the call with {peer} was taken over by a new one"));
            }
            CallEvent::TransferProgress { status, reason } => {
                self.status = Some(format!("transfer of {peer}: {status} {reason}"));
            }
            CallEvent::TransferSucceeded { status } => {
                self.transferred.push(id);
                self.status = Some(format!("{peer} transferred ({status})"));
            }
            CallEvent::TransferFailed { status, reason } => {
                self.status = Some(format!(
                    "the transfer of {peer} failed: {status} {reason}; the call goes on"
                ));
            }
            _ => return false,
        }
        true
    }
}

impl AccountView {
    /// Notes what `event` says of the health of a registrar.
    fn note_health(&mut self, event: &AccountEvent) {
        let text = |t: &Target| format!("{}:{}", t.transport.as_str(), t.addr);
        match event {
            AccountEvent::Registered { registrar, .. }
            | AccountEvent::FlowRecovered { registrar, .. } => {
                // One registration at a time (failover), until the phone says otherwise
                // ([`PhoneView::set_registrars`]).
                for r in &mut self.registrars {
                    r.bound = false;
                }
                self.set_health(text(registrar), true);
            }
            AccountEvent::Failed { attempt, .. } => self.set_health(
                format!(
                    "{}:{}",
                    attempt.target.transport.as_str(),
                    attempt.target.addr
                ),
                false,
            ),
            AccountEvent::FlowFailed { registrar, .. } => self.set_health(text(registrar), false),
            AccountEvent::Unavailable { tried, .. } => {
                for t in tried {
                    self.set_health(
                        format!("{}:{}", t.target.transport.as_str(), t.target.addr),
                        false,
                    );
                }
            }
            _ => {}
        }
    }

    /// Notes that `target` answered (`up`: and is bound now) or failed.
    fn set_health(&mut self, target: String, up: bool) {
        match self.registrars.iter_mut().find(|r| r.target == target) {
            Some(r) => {
                r.up = up;
                r.bound = up;
            }
            None => self.registrars.push(RegistrarHealth {
                target,
                up,
                bound: up,
            }),
        }
    }

    /// The registrars other than the one it is bound to, as the account line shows them:
    /// counts when `wide` is false (`2 other registrars: 1 up, 1 down`), each one when true.
    fn others_text(&self, wide: bool) -> Option<String> {
        let others: Vec<&RegistrarHealth> = self
            .registrars
            .iter()
            .filter(|r| {
                !(r.bound
                    || self.registration == Registration::Registered
                        && Some(&r.target) == self.registrar.as_ref())
            })
            .collect();
        if others.is_empty() {
            return None;
        }
        let word = |up: bool| if up { "up" } else { "down" };
        if wide {
            let each: Vec<String> = others
                .iter()
                .map(|r| format!("{} {}", r.target, word(r.up)))
                .collect();
            return Some(format!("others: {}", each.join(", ")));
        }
        let up = others.iter().filter(|r| r.up).count();
        Some(format!(
            "{} other{}: {up} up, {} down",
            others.len(),
            if others.len() == 1 { "" } else { "s" },
            others.len() - up
        ))
    }
}

/// The status line of an ended call: its peer, why it ended and how long it lasted.
fn ended_status(peer: &str, end: &tincan::phone::CallEnd, declined: Option<u16>) -> String {
    let why = match (declined, end.status, &end.status_text) {
        (Some(s), ..) => format!("declined ({s})"),
        (None, Some(s), Some(t)) => format!("{s} {t}"),
        (None, Some(s), None) => s.to_string(),
        _ => end.reason.as_str().replace('_', " "),
    };
    if end.answered {
        format!(
            "call with {peer} ended: {why}, after {}",
            clock(end.duration)
        )
    } else {
        format!("call with {peer} ended: {why}")
    }
}

/// `text`, cut to `room` characters with a `~` at the end when longer (at least 20 kept).
fn cut(text: &str, room: usize) -> String {
    let room = room.max(20);
    if text.chars().count() <= room {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(room - 1).collect();
    out.push('~');
    out
}

/// `m:ss`, or `h:mm:ss` from an hour on.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The account lines, then the addresses the phone listens on; `width`: the screen's.
fn account_lines(view: &PhoneView, width: u16) -> Vec<Line<'static>> {
    let mut lines = account_states(view, width);
    if let Some(unread) = view.unread.text() {
        lines.push(Line::from(unread).style(Style::default().add_modifier(Modifier::BOLD)));
    }
    if !view.listening.is_empty() {
        lines.push(Line::from(format!(
            "listening on {}",
            view.listening.join(" ")
        )));
    }
    lines
}

/// One line per account: its registration and the health of its other registrars.
fn account_states(view: &PhoneView, width: u16) -> Vec<Line<'static>> {
    if view.accounts.is_empty() {
        return vec![Line::from("no accounts (direct calls only)")];
    }
    view.accounts
        .iter()
        .map(|a| {
            let state = match &a.registration {
                Registration::Idle => "not registering".to_owned(),
                Registration::Registered => {
                    let mut at: Vec<&str> = a.registrar.iter().map(String::as_str).collect();
                    for r in a.registrars.iter().filter(|r| r.bound) {
                        if !at.contains(&r.target.as_str()) {
                            at.push(&r.target);
                        }
                    }
                    if at.is_empty() {
                        "registered".to_owned()
                    } else {
                        format!("registered at {}", at.join(", "))
                    }
                }
                Registration::Failed(why) => format!("not registered: {why}"),
                Registration::Registering => "registering...".to_owned(),
            };
            let mut others = a
                .others_text(width >= 120)
                .map(|o| format!("  ({o})"))
                .unwrap_or_default();
            if let Some((new, old)) = a.voicemail.filter(|(new, _)| *new > 0) {
                others.push_str(&format!("  voicemail {new} new/{old} old"));
            }
            // The watched contacts: presence, then busy lamps; those that do not fit in
            // what the line leaves (a 20-character state kept) are counted as `+N`.
            let contacts: Vec<String> = a
                .watched
                .iter()
                .map(|(uri, status)| format!("  {uri} {status}"))
                .chain(
                    a.lamps
                        .iter()
                        .map(|(uri, lamp)| format!("  {uri} [{lamp}]")),
                )
                .collect();
            let budget = usize::from(width.saturating_sub(2))
                .saturating_sub(a.name.chars().count() + 2 + 20 + others.chars().count());
            others.push_str(&fit_contacts(&contacts, budget));
            // The registrars' health stays on the line: a long reason is cut to make room.
            let room = usize::from(width.saturating_sub(2))
                .saturating_sub(a.name.chars().count() + 2 + others.chars().count());
            Line::from(format!("{}  {}{others}", a.name, cut(&state, room)))
        })
        .collect()
}

/// As many of `contacts` (each `  uri state`) as fit in `budget` characters, then `  +N`
/// for the rest.
fn fit_contacts(contacts: &[String], budget: usize) -> String {
    let mut out = String::new();
    for (i, c) in contacts.iter().enumerate() {
        let left = contacts.len() - i - 1;
        let more = if left == 0 {
            0
        } else {
            format!("  +{left}").len()
        };
        if out.chars().count() + c.chars().count() + more > budget {
            out.push_str(&format!("  +{}", contacts.len() - i));
            return out;
        }
        out.push_str(c);
    }
    out
}

/// The call lines, the selected one marked `>`.
fn call_lines(view: &PhoneView) -> Vec<Line<'static>> {
    if view.calls.is_empty() {
        return vec![Line::from("no calls")];
    }
    view.calls
        .iter()
        .map(|c| {
            let mark = if Some(c.id) == view.selected {
                ">"
            } else {
                " "
            };
            let dir = if c.incoming { "from" } else { "to" };
            let mut text = format!("{mark} {dir} {}  {}", c.peer, c.state.as_str());
            if c.duration > Duration::ZERO
                || matches!(
                    c.state,
                    CallState::Talking | CallState::OnHold | CallState::HeldByPeer
                )
            {
                text.push_str(&format!("  {}", clock(c.duration)));
            }
            if let Some(codec) = &c.codec {
                text.push_str(&format!(
                    "  {codec}  {}",
                    if c.srtp { "srtp" } else { "rtp" }
                ));
            }
            if view.conference.is_some_and(|(a, b)| a == c.id || b == c.id) {
                text.push_str("  conference");
            }
            if view.is_muted(c.id) {
                text.push_str("  muted");
            }
            let line = Line::from(text);
            if Some(c.id) == view.selected {
                line.style(Style::default().add_modifier(Modifier::BOLD))
            } else {
                line
            }
        })
        .collect()
}

/// The live quality of the selected call.
fn quality_line(view: &PhoneView) -> Line<'static> {
    let Some(q) = view.selected_call().and_then(|c| c.quality.as_ref()) else {
        return Line::from("quality: no report yet");
    };
    let mos = q.mos.map_or("-".to_owned(), |m| format!("{m:.2}"));
    let rtt = q.rtt_ms.map_or("-".to_owned(), |r| format!("{r:.0} ms"));
    Line::from(format!(
        "MOS {mos}  loss {:.1} %  jitter {:.1} ms  buffer {:.0} ms  RTT {rtt}",
        q.loss_percent, q.jitter_ms, q.jitter_buffer_ms
    ))
}

/// The key line: the keys that do something now (answer and decline while a call rings here,
/// hang up, hold, mute and DTMF with a call selected), then the ones that always work; the
/// least needed (panes, Tab) are left out first when `width` is short, `? help` and `q quit`
/// never. With nothing to fit in, the full [`KEY_HELP`].
pub fn key_line(view: &PhoneView, width: u16) -> String {
    if view.conversation.is_some() && view.dial.is_none() {
        let unread = if view.unread.newest().is_some() {
            "  Tab unread"
        } else {
            ""
        };
        return format!("Enter send  Up/Down/PgUp/PgDn scroll{unread}  Esc close  Ctrl-C quit");
    }
    let rings_here = view
        .calls
        .iter()
        .any(|c| c.incoming && c.state == CallState::Ringing);
    let selected = view
        .selected_call()
        .filter(|c| !(c.incoming && c.state == CallState::Ringing));
    // (key text, whether it may be left out for width)
    let mut keys: Vec<(&str, bool)> = Vec::new();
    if rings_here {
        keys.extend([
            ("a answer", false),
            ("x/X decline", false),
            ("s silence", true),
        ]);
    }
    if selected.is_some() {
        keys.extend([
            ("h hang up", false),
            ("o hold", false),
            ("m mute", false),
            ("t transfer", true),
            ("0-9*# dtmf", true),
        ]);
    }
    if view.transfer_request.is_some() {
        keys.insert(0, ("y/n transfer", false));
    }
    if view.transfer_pair().is_some() {
        // Two calls up: the attended transfer is what such a moment is for.
        keys.insert(
            keys.iter()
                .position(|(k, _)| *k == "t transfer")
                .unwrap_or(0),
            ("T attended", false),
        );
    }
    if view.calls.len() > 1 {
        keys.push(("Tab next", true));
        keys.push(("c conference", true));
    }
    keys.extend([
        ("d dial", false),
        ("r recent", true),
        ("l log", true),
        ("v devices", true),
        ("M message", true),
        ("? help", false),
        ("q quit", false),
    ]);
    if view.calls.is_empty() && usize::from(width) >= KEY_HELP.len() {
        return KEY_HELP.to_owned();
    }
    let join = |keys: &[(&str, bool)]| keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join("  ");
    let mut line = join(&keys);
    // Leave out the optional keys, the last first, until the line fits.
    while line.len() > usize::from(width) {
        let Some(i) = keys.iter().rposition(|(_, optional)| *optional) else {
            break;
        };
        keys.remove(i);
        line = join(&keys);
    }
    line
}

/// Draws the whole screen.
pub fn render(view: &PhoneView, frame: &mut Frame<'_>) {
    let area = frame.area();
    let accounts = account_lines(view, area.width);
    let calls = call_lines(view);
    let mut quality = vec![quality_line(view)];
    quality.extend(meter_lines(view));
    let rows = Layout::vertical([
        Constraint::Length(accounts.len() as u16 + 2),
        Constraint::Min(3),
        Constraint::Length(quality.len() as u16 + 2),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .split(area);
    frame.render_widget(
        Paragraph::new(accounts).block(Block::default().borders(Borders::ALL).title("Accounts")),
        rows[0],
    );
    frame.render_widget(
        Paragraph::new(calls).block(Block::default().borders(Borders::ALL).title("Calls")),
        rows[1],
    );
    frame.render_widget(
        Paragraph::new(quality).block(Block::default().borders(Borders::ALL).title("Quality")),
        rows[2],
    );
    let prompt = match &view.dial {
        Some(text) if view.message_to => {
            format!("message to: {text}_   (Enter writes, Esc cancel)")
        }
        Some(text) if view.transfer_of.is_some() => {
            format!("transfer to: {text}_   (Enter transfer, Esc cancel)")
        }
        Some(text) => format!("dial: {text}_   (Enter call, Esc cancel)"),
        None => view.status.clone().unwrap_or_default(),
    };
    frame.render_widget(Paragraph::new(prompt), rows[3]);
    frame.render_widget(
        Paragraph::new(key_line(view, area.width))
            .style(Style::default().add_modifier(Modifier::REVERSED)),
        rows[4],
    );
    // The panes cover the calls' lower part and the quality, above the status line.
    let below_accounts = Rect {
        height: rows[3].y.saturating_sub(rows[1].y),
        ..rows[1]
    };
    super::panes::render(&view.panes, frame, below_accounts);
    if let Some(c) = &view.conversation {
        super::conversation::render(c, frame, below_accounts);
    }
    if view.help {
        let width = HELP_LINES.iter().map(|l| l.len()).max().unwrap_or(0) as u16 + 4;
        let height = HELP_LINES.len() as u16 + 2;
        let popup = centred(area, width, height);
        frame.render_widget(Clear, popup);
        frame.render_widget(
            Paragraph::new(
                HELP_LINES
                    .iter()
                    .map(|l| Line::from(*l))
                    .collect::<Vec<_>>(),
            )
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title("Keys (? closes)"),
            ),
            popup,
        );
    }
}

/// A `width` x `height` rectangle in the middle of `area` (clipped to it).
fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use tincan::phone::{CallEnd, EndReason, IncomingCall};
    use tincan_media::codec::CodecKind;
    use tincan_sip::transport::{Target, Transport};

    /// The screen as text, one string per row.
    fn screen(view: &PhoneView, width: u16, height: u16) -> Vec<String> {
        let mut terminal =
            Terminal::new(TestBackend::new(width, height)).expect("a test backend cannot fail");
        terminal
            .draw(|f| render(view, f))
            .expect("a test backend cannot fail");
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect()
    }

    fn row_with<'a>(rows: &'a [String], text: &str) -> &'a str {
        rows.iter()
            .find(|r| r.contains(text))
            .unwrap_or_else(|| panic!("no row with {text:?} in\n{}", rows.join("\n")))
    }

    fn registered(view: &mut PhoneView) {
        view.add_account(AccountId(0), "work", Registration::Idle);
        view.apply(&PhoneEvent::Account {
            account: AccountId(0),
            event: AccountEvent::Registered {
                registrar: Target::new(Transport::Udp, "127.0.0.1:5060".parse().unwrap()),
                expires: Duration::from_secs(600),
                bindings: vec![],
                elapsed: Duration::from_millis(20),
            },
        });
    }

    fn incoming(view: &mut PhoneView, call: u64, from: &str) {
        view.apply(&PhoneEvent::Incoming(IncomingCall {
            call: CallId(call),
            call_id: format!("c{call}"),
            from: from.into(),
            to: "sip:alice@example.test".into(),
            account: Some(AccountId(0)),
        }));
    }

    fn answered(view: &mut PhoneView, call: u64) {
        view.apply(&PhoneEvent::Call {
            call: CallId(call),
            event: CallEvent::Answered {
                setup: Duration::from_millis(80),
                codec: CodecKind::Opus,
                srtp: true,
                remote_rtp: "127.0.0.1:40000".parse().unwrap(),
            },
        });
    }

    #[test]
    fn an_account_shows_registered_and_its_registrar() {
        let mut view = PhoneView::default();
        registered(&mut view);
        let rows = screen(&view, 80, 24);
        let row = row_with(&rows, "work");
        assert!(row.contains("registered at udp:127.0.0.1:5060"), "{row}");
    }

    #[test]
    fn a_call_shows_peer_state_duration_codec_and_srtp() {
        let mut view = PhoneView::default();
        registered(&mut view);
        view.add_outgoing(CallId(1), "sip:bob@example.test", None);
        assert!(row_with(&screen(&view, 80, 24), "bob").contains("dialling"));
        view.apply(&PhoneEvent::Call {
            call: CallId(1),
            event: CallEvent::Progress {
                status: 180,
                reason: "Ringing".into(),
            },
        });
        assert!(row_with(&screen(&view, 80, 24), "bob").contains("ringing"));
        answered(&mut view, 1);
        view.tick(Duration::from_secs(1));
        view.tick(Duration::from_secs(1));
        let rows = screen(&view, 80, 24);
        let row = row_with(&rows, "bob");
        assert!(
            row.contains("> to sip:bob@example.test  talking  0:02"),
            "{row}"
        );
        assert!(row.contains("srtp"), "{row}");
        assert!(row.to_lowercase().contains("opus"), "{row}");
    }

    #[test]
    fn the_active_call_shows_its_quality() {
        let mut view = PhoneView::default();
        view.add_outgoing(CallId(1), "sip:bob@example.test", None);
        answered(&mut view, 1);
        view.apply(&PhoneEvent::Call {
            call: CallId(1),
            event: CallEvent::Quality(Quality {
                mos: Some(4.31),
                loss_percent: 1.5,
                jitter_ms: 3.25,
                jitter_buffer_ms: 60.0,
                rtt_ms: Some(42.0),
                ..Quality::default()
            }),
        });
        let rows = screen(&view, 80, 24);
        let row = row_with(&rows, "MOS");
        assert!(
            row.contains("MOS 4.31  loss 1.5 %  jitter 3.2 ms  buffer 60 ms  RTT 42 ms"),
            "{row}"
        );
    }

    #[test]
    fn the_key_line_fits_80_columns_and_shows_what_works_now() {
        let mut view = PhoneView::default();
        registered(&mut view);
        let idle = key_line(&view, 80);
        for key in ["d dial", "? help", "q quit"] {
            assert!(idle.contains(key), "{idle}");
        }
        assert!(!idle.contains("a answer"), "{idle}");
        view.add_outgoing(CallId(1), "sip:bob@example.test", None);
        answered(&mut view, 1);
        incoming(&mut view, 2, "<sip:carol@example.test>;tag=x");
        view.selected = Some(CallId(1));
        for width in [80, 100, 200] {
            let line = key_line(&view, width);
            assert!(line.len() <= usize::from(width), "{width}: {line}");
            for key in [
                "a answer",
                "x/X decline",
                "h hang up",
                "o hold",
                "m mute",
                "d dial",
                "? help",
                "q quit",
            ] {
                assert!(line.contains(key), "{width}: {line}");
            }
        }
        assert!(key_line(&view, 200).contains("Tab next"));
        let rows = screen(&view, 80, 24);
        assert!(rows[23].contains("q quit"), "{}", rows[23]);
    }

    #[test]
    fn watched_contacts_presence_shows() {
        use tincan::phone::presence::{PresenceEvent, PresenceStatus, WatchId};
        let mut view = PhoneView::default();
        registered(&mut view);
        let changed = |uri: &str, status| {
            PhoneEvent::Presence(PresenceEvent::Changed {
                watch: WatchId(1),
                account: AccountId(0),
                uri: uri.to_owned(),
                status,
                note: None,
            })
        };
        view.apply(&changed("bob", PresenceStatus::Away));
        view.apply(&changed("carol", PresenceStatus::Busy));
        view.apply(&changed("bob", PresenceStatus::Available));
        let rows = screen(&view, 120, 24);
        let row = row_with(&rows, "work");
        assert!(row.contains("bob available  carol busy"), "{row}");
    }

    #[test]
    fn busy_lamps_show_on_the_account_line_and_elide_to_fit_80_columns() {
        use tincan::phone::blf::{Lamp, LampChange, WatchId};
        let mut view = PhoneView::default();
        registered(&mut view);
        let lamp = |uri: &str, lamp| {
            PhoneEvent::Lamp(LampChange {
                watch: WatchId(1),
                account: AccountId(0),
                uri: uri.to_owned(),
                lamp,
            })
        };
        view.apply(&lamp("sip:bob@x", Lamp::Unknown));
        view.apply(&lamp("sip:carol@x", Lamp::Ringing));
        view.apply(&lamp("sip:bob@x", Lamp::Busy));
        let rows = screen(&view, 120, 24);
        let row = row_with(&rows, "work");
        assert!(
            row.contains("sip:bob@x [busy]  sip:carol@x [ringing]"),
            "{row}"
        );
        // Control characters of a URI do not reach the terminal.
        view.apply(&lamp("sip:d\u{1b}[2J@x", Lamp::Idle));
        for i in 0..6 {
            view.apply(&lamp(&format!("sip:someone-{i}@example.test"), Lamp::Idle));
        }
        let rows = screen(&view, 80, 24);
        let row = row_with(&rows, "work");
        assert!(row.contains("sip:bob@x [busy]"), "{row}");
        assert!(row.contains("registered at"), "{row}");
        assert!(!row.contains('\u{1b}'), "{row}");
        let plus = row.rsplit('+').next().expect("an elided count");
        let plus = plus.trim_end_matches('│').trim();
        assert!(plus.parse::<usize>().is_ok_and(|n| n >= 4), "{row}");
        assert!(rows.iter().all(|r| r.chars().count() == 80));
    }

    fn received(peer: &str, text: &str) -> tincan::history::MessageRecord {
        tincan::history::MessageRecord::new(
            tincan::history::Direction::Incoming,
            peer,
            None,
            1_796_694_480_000,
            "text/plain",
            text.as_bytes(),
        )
    }

    #[test]
    fn messages_received_while_closed_are_counted_and_open_in_their_conversation() {
        use super::super::conversation::Conversation;
        let mut view = PhoneView::default();
        registered(&mut view);
        view.message_received(&received("\"Bob\" <sip:bob@x>", "one"));
        view.message_received(&received("\"Bob\" <sip:bob@x>", "two"));
        let rows = screen(&view, 80, 24);
        row_with(&rows, "2 new messages from Bob (M reads)");
        assert!(key_line(&view, 200).contains("M message"));
        assert_eq!(view.unread.newest(), Some("sip:bob@x"));

        // Open on bob: the count goes; a message from carol while it is open is counted
        // and said on the status line, bob's goes into the pane.
        view.open_conversation(Conversation::new("sip:bob@x", vec![]));
        assert_eq!(view.unread.text(), None);
        view.message_received(&received("sip:bob@x", "three"));
        view.status = Some("message from carol: hey".into());
        view.message_received(&received("sip:carol@x", "hey"));
        let rows = screen(&view, 80, 24);
        let text = rows.join("\n");
        assert!(text.contains("Messages with sip:bob@x"), "{text}");
        row_with(&rows, "< three");
        row_with(&rows, "message from carol: hey  (Tab opens)");
        row_with(&rows, "1 new message from sip:carol@x (M reads)");
        assert!(!text.contains("< hey"), "{text}");
        let keys = key_line(&view, 80);
        assert!(keys.len() <= 80, "{keys}");
        for k in ["Enter send", "Esc close", "Tab unread", "scroll"] {
            assert!(keys.contains(k), "{keys}");
        }
        assert!(rows.iter().all(|r| r.chars().count() == 80));

        // Tab (the loop opens carol's): nothing more to open, the hint goes.
        view.open_conversation(Conversation::new("sip:carol@x", vec![]));
        assert_eq!(view.status.as_deref(), Some("message from carol: hey"));
        assert!(!key_line(&view, 80).contains("Tab unread"));
    }

    #[test]
    fn the_message_prompt_asks_whom_to_write_to() {
        let view = PhoneView {
            message_to: true,
            dial: Some("sip:bo".into()),
            ..PhoneView::default()
        };
        let rows = screen(&view, 80, 24);
        row_with(&rows, "message to: sip:bo_");
    }

    #[test]
    fn voicemail_counts_and_a_received_message_show() {
        use tincan::phone::message_waiting::{MessageSummary, MessageWaiting};
        let mut view = PhoneView::default();
        registered(&mut view);
        let summary = MessageSummary::parse(
            "Messages-Waiting: yes\r\nMessage-Account: sip:alice@example.test\r\n\
             Voice-Message: 2/8 (0/2)\r\n",
        )
        .expect("an RFC 3842 body");
        view.apply(&PhoneEvent::MessageWaiting(MessageWaiting {
            account: Some(AccountId(0)),
            summary,
        }));
        let rows = screen(&view, 80, 24);
        assert!(
            row_with(&rows, "work").contains("voicemail 2 new/8 old"),
            "{}",
            rows.join("\n")
        );
        view.apply(&PhoneEvent::Message(tincan::phone::MessageEvent::Received(
            tincan::phone::IncomingMessage {
                from: "\"Bob\" <sip:bob@example.test>;tag=1".into(),
                to: "sip:alice@example.test".into(),
                call_id: "m1".into(),
                content_type: "text/plain".into(),
                text: Some("lunch?\u{1b}[2J".into()),
                body: bytes::Bytes::from_static(b"lunch?"),
                account: Some(AccountId(0)),
                call: None,
            },
        )));
        let status = view.status.clone().unwrap_or_default();
        assert!(
            status.contains("bob@example.test") && status.contains("lunch?"),
            "{status}"
        );
        assert!(!status.contains('\u{1b}'), "{status}");
    }

    #[test]
    fn a_transfer_asked_by_the_peer_then_its_new_call_and_our_own_transfers_progress() {
        let mut view = PhoneView::default();
        incoming(&mut view, 1, "<sip:bob@example.test>;tag=b");
        answered(&mut view, 1);
        view.apply(&PhoneEvent::Call {
            call: CallId(1),
            event: CallEvent::TransferRequested {
                to: "sip:carol@example.test".into(),
                referred_by: None,
            },
        });
        assert_eq!(
            view.transfer_request,
            Some((CallId(1), "sip:carol@example.test".into()))
        );
        assert!(view.status.as_deref().unwrap_or("").contains("y accepts"));
        assert!(key_line(&view, 80).starts_with("y/n transfer"));
        view.apply(&PhoneEvent::Call {
            call: CallId(1),
            event: CallEvent::TransferStarted {
                new_call: CallId(2),
            },
        });
        assert_eq!(view.transfer_request, None);
        assert_eq!(view.selected, Some(CallId(2)));
        let rows = screen(&view, 80, 24);
        assert!(row_with(&rows, "carol").contains("dialling"));
        view.apply(&PhoneEvent::Call {
            call: CallId(2),
            event: CallEvent::TransferFailed {
                status: 486,
                reason: "Busy Here".into(),
            },
        });
        assert!(
            view.status
                .as_deref()
                .unwrap_or("")
                .contains("486 Busy Here")
        );
        // The prompt of our own transfer.
        view.transfer_of = Some(CallId(1));
        view.dial = Some("sip:dave@example.test".into());
        let rows = screen(&view, 80, 24);
        row_with(&rows, "transfer to: sip:dave@example.test");
    }

    #[test]
    fn the_attended_transfer_key_shows_with_two_calls_up_and_fits_80_columns() {
        let mut view = PhoneView::default();
        view.add_outgoing(CallId(1), "sip:bob@example.test", None);
        answered(&mut view, 1);
        assert_eq!(view.transfer_pair(), None);
        assert!(!key_line(&view, 200).contains("T attended"));
        view.add_outgoing(CallId(2), "sip:carol@example.test", None);
        // Carol's call rings: nothing to transfer to yet.
        assert_eq!(view.transfer_pair(), None);
        answered(&mut view, 2);
        view.selected = Some(CallId(2));
        assert_eq!(view.transfer_pair(), Some((CallId(2), CallId(1))));
        for width in [80, 200] {
            let line = key_line(&view, width);
            assert!(line.contains("T attended"), "{line}");
            assert!(line.len() <= usize::from(width), "{line}");
        }
        let rows = screen(&view, 80, 24);
        row_with(&rows, "T attended");
    }

    #[test]
    fn a_conference_marks_both_calls_until_it_is_split() {
        let mut view = PhoneView::default();
        view.add_outgoing(CallId(1), "sip:bob@example.test", None);
        answered(&mut view, 1);
        view.add_outgoing(CallId(2), "sip:carol@example.test", None);
        answered(&mut view, 2);
        assert!(key_line(&view, 200).contains("c conference"));
        for (call, with) in [(1, 2), (2, 1)] {
            view.apply(&PhoneEvent::Call {
                call: CallId(call),
                event: CallEvent::Conference {
                    with: Some(CallId(with)),
                },
            });
        }
        let rows = screen(&view, 80, 24);
        assert!(row_with(&rows, "bob").contains("conference"));
        assert!(row_with(&rows, "carol").contains("conference"));
        view.apply(&PhoneEvent::Call {
            call: CallId(1),
            event: CallEvent::Conference { with: None },
        });
        let rows = screen(&view, 80, 24);
        assert!(!row_with(&rows, "bob").contains("conference"));
        assert!(
            view.status
                .as_deref()
                .unwrap_or("")
                .contains("conference ended")
        );
    }

    #[test]
    fn hold_by_us_and_by_the_peer_and_the_end() {
        let mut view = PhoneView::default();
        view.add_outgoing(CallId(1), "sip:bob@example.test", None);
        answered(&mut view, 1);
        for (event, word) in [
            (CallEvent::Hold { by_peer: false }, "on hold"),
            (CallEvent::Resumed { by_peer: false }, "talking"),
            (CallEvent::Hold { by_peer: true }, "held by peer"),
        ] {
            view.apply(&PhoneEvent::Call {
                call: CallId(1),
                event,
            });
            assert!(row_with(&screen(&view, 80, 24), "bob").contains(word));
        }
        view.apply(&PhoneEvent::Call {
            call: CallId(1),
            event: CallEvent::Ended(CallEnd {
                reason: EndReason::RemoteHangup,
                status: None,
                status_text: None,
                answered: true,
                duration: Duration::from_secs(3),
                codec: Some(CodecKind::Opus),
                quality: Quality::default(),
                tried: vec![],
                errors: vec![],
            }),
        });
        let rows = screen(&view, 80, 24);
        row_with(&rows, "no calls");
        row_with(&rows, "call with sip:bob@example.test ended: remote hangup");
        assert_eq!(view.selected, None);
    }

    #[test]
    fn a_second_incoming_call_while_talking_rings_beside_it() {
        let mut view = PhoneView::default();
        registered(&mut view);
        incoming(&mut view, 1, "\"Carol\" <sip:carol@example.test>;tag=abc");
        assert_eq!(view.selected, Some(CallId(1)));
        answered(&mut view, 1);
        incoming(&mut view, 2, "sip:dave@example.test");
        // The call in progress stays selected; the waiting one rings.
        assert_eq!(view.selected, Some(CallId(1)));
        let rows = screen(&view, 80, 24);
        assert!(
            row_with(&rows, "carol").contains("> from \"Carol\" <sip:carol@example.test>  talking")
        );
        assert!(row_with(&rows, "dave").contains("  from sip:dave@example.test  ringing"));
        view.select_next();
        assert_eq!(view.selected, Some(CallId(2)));
        view.select_next();
        assert_eq!(view.selected, Some(CallId(1)));
    }

    #[test]
    fn the_key_line_and_the_help_overlay() {
        let mut view = PhoneView::default();
        let rows = screen(&view, 100, 24);
        assert!(rows[23].contains("d dial"), "{}", rows[23]);
        assert!(rows[23].contains("q quit"), "{}", rows[23]);
        view.help = true;
        let rows = screen(&view, 100, 24);
        row_with(&rows, "Keys (? closes)");
        row_with(&rows, "603 Decline");
        view.help = false;
        view.dial = Some("sip:bob@".into());
        let rows = screen(&view, 100, 24);
        row_with(&rows, "dial: sip:bob@_");
    }

    #[test]
    fn a_failed_registration_says_why() {
        let mut view = PhoneView::default();
        view.add_account(AccountId(0), "work", Registration::Idle);
        view.apply(&PhoneEvent::Account {
            account: AccountId(0),
            event: AccountEvent::AuthenticationFailed {
                registrar: Target::new(Transport::Udp, "127.0.0.1:5060".parse().unwrap()),
                status: 403,
                reason: "Forbidden".into(),
            },
        });
        let rows = screen(&view, 80, 24);
        assert!(row_with(&rows, "work").contains("not registered: credentials refused (403)"));
    }

    fn account_event(view: &mut PhoneView, event: AccountEvent) {
        view.apply(&PhoneEvent::Account {
            account: AccountId(0),
            event,
        });
    }

    fn failed_at(addr: &str) -> tincan_sip::resolve::FailedAttempt {
        use tincan_sip::resolve::{AddressStep, ResolvedTarget, TargetSource};
        let addr: std::net::SocketAddr = addr.parse().unwrap();
        tincan_sip::resolve::FailedAttempt {
            target: ResolvedTarget {
                transport: Transport::Udp,
                addr,
                host: addr.ip().to_string(),
                priority: 0,
                weight: 0,
                source: TargetSource {
                    naptr: None,
                    srv: None,
                    address: AddressStep::Literal,
                },
            },
            why: tincan_sip::resolve::AttemptFailure::Timeout,
        }
    }

    #[test]
    fn an_account_registers_in_the_background_and_says_why_it_is_not_registered() {
        let mut view = PhoneView::default();
        view.add_account(AccountId(0), "work", Registration::Registering);
        view.listening = vec!["udp:0.0.0.0:5060".into(), "tcp:0.0.0.0:40000".into()];
        let rows = screen(&view, 80, 24);
        assert!(row_with(&rows, "work").contains("work  registering..."));
        row_with(&rows, "listening on udp:0.0.0.0:5060 tcp:0.0.0.0:40000");
        account_event(
            &mut view,
            AccountEvent::Unavailable {
                tried: vec![failed_at("192.0.2.1:5060")],
                errors: vec![],
                retry_in: Duration::from_secs(30),
            },
        );
        let rows = screen(&view, 200, 50);
        let row = row_with(&rows, "work");
        assert!(
            row.contains("not registered: unavailable, retrying in 30 s: udp:192.0.2.1:5060: "),
            "{row}"
        );
        // At 80 columns the reason is cut; the retry and the registrars' health stay.
        let rows = screen(&view, 80, 24);
        let row = row_with(&rows, "work");
        assert!(row.contains("retrying in 30 s"), "{row}");
        assert!(row.contains("~  (1 other: 0 up, 1 down)"), "{row}");
    }

    #[test]
    fn the_other_registrars_show_up_or_down_compact_at_80_columns_and_each_when_wide() {
        let mut view = PhoneView::default();
        view.add_account(AccountId(0), "work", Registration::Registering);
        account_event(
            &mut view,
            AccountEvent::Failed {
                attempt: failed_at("192.0.2.1:5060"),
                elapsed: Duration::from_secs(32),
            },
        );
        account_event(
            &mut view,
            AccountEvent::Registered {
                registrar: Target::new(Transport::Udp, "127.0.0.1:5060".parse().unwrap()),
                expires: Duration::from_secs(600),
                bindings: vec![],
                elapsed: Duration::from_millis(20),
            },
        );
        // The backup that answered before, now not bound.
        view.accounts[0].registrars.push(RegistrarHealth {
            target: "udp:192.0.2.3:5060".into(),
            up: true,
            bound: false,
        });
        let rows = screen(&view, 80, 24);
        let row = row_with(&rows, "work");
        assert!(
            row.contains("work  registered at udp:127.0.0.1:5060  (2 others: 1 up, 1 down)"),
            "{row}"
        );
        let rows = screen(&view, 200, 50);
        let row = row_with(&rows, "work");
        assert!(
            row.contains("(others: udp:192.0.2.1:5060 down, udp:192.0.2.3:5060 up)"),
            "{row}"
        );
        // The phone's report replaces what the events told: both bound (register_mode all).
        let both = |up3| {
            vec![
                RegistrarHealth {
                    target: "udp:127.0.0.1:5060".into(),
                    up: true,
                    bound: true,
                },
                RegistrarHealth {
                    target: "udp:192.0.2.3:5060".into(),
                    up: up3,
                    bound: up3,
                },
            ]
        };
        assert!(view.set_registrars(AccountId(0), both(true)));
        assert!(!view.set_registrars(AccountId(0), both(true)));
        assert!(!view.set_registrars(AccountId(0), vec![]));
        let rows = screen(&view, 80, 24);
        let row = row_with(&rows, "work");
        assert!(
            row.contains("work  registered at udp:127.0.0.1:5060, udp:192.0.2.3:5060  "),
            "{row}"
        );
        assert!(!row.contains("other"), "{row}");
        assert!(view.set_registrars(AccountId(0), both(false)));
        let rows = screen(&view, 80, 24);
        let row = row_with(&rows, "work");
        assert!(row.contains("(1 other: 0 up, 1 down)"), "{row}");
        // The accounts take one line each at 80 columns.
        let rows = screen(&view, 80, 24);
        assert_eq!(
            rows.iter().filter(|r| r.contains("work")).count(),
            1,
            "{rows:#?}"
        );
    }

    fn ended(view: &mut PhoneView, call: u64, reason: EndReason, answered: bool, secs: u64) {
        view.apply(&PhoneEvent::Call {
            call: CallId(call),
            event: CallEvent::Ended(CallEnd {
                reason,
                status: None,
                status_text: None,
                answered,
                duration: Duration::from_secs(secs),
                codec: None,
                quality: Quality::default(),
                tried: vec![],
                errors: vec![],
            }),
        });
    }

    #[test]
    fn a_call_we_declined_says_so_and_an_ended_call_its_duration() {
        let mut view = PhoneView::default();
        for (call, status) in [(1, 486), (2, 603)] {
            incoming(&mut view, call, "sip:carol@example.test");
            view.declined.push((CallId(call), status));
            ended(&mut view, call, EndReason::LocalHangup, false, 0);
            let rows = screen(&view, 80, 24);
            row_with(
                &rows,
                &format!("call with sip:carol@example.test ended: declined ({status})"),
            );
        }
        assert!(view.declined.is_empty());
        view.add_outgoing(CallId(3), "sip:bob@example.test", None);
        answered(&mut view, 3);
        ended(&mut view, 3, EndReason::LocalHangup, true, 83);
        row_with(
            &screen(&view, 80, 24),
            "call with sip:bob@example.test ended: local hangup, after 1:23",
        );
    }

    #[test]
    fn the_whole_screen_with_each_pane_renders_at_80x24_and_200x50() {
        use super::super::panes::{PaneKind, TraceEntry};
        let mut view = PhoneView::default();
        registered(&mut view);
        view.listening = vec!["udp:0.0.0.0:5060".into()];
        incoming(&mut view, 1, "sip:carol@example.test");
        view.panes.log.push(TraceEntry {
            summary: "12:00:01 recv INVITE sip:alice@example.test <- udp:192.0.2.1:5060".into(),
            text: "INVITE sip:alice@example.test SIP/2.0\r\n".into(),
        });
        for kind in [PaneKind::Recent, PaneKind::SipLog, PaneKind::Devices] {
            view.panes.open = Some(kind);
            for (w, h) in [(80, 24), (200, 50), (10, 4)] {
                let rows = screen(&view, w, h);
                assert_eq!(rows.len(), usize::from(h));
            }
            let rows = screen(&view, 80, 24);
            // The accounts, the selected call and the key line stay visible.
            row_with(&rows, "registered at");
            row_with(&rows, "> from sip:carol@example.test  ringing");
            assert!(rows[23].contains("d dial"), "{}", rows[23]);
        }
        view.panes.open = Some(PaneKind::SipLog);
        row_with(&screen(&view, 80, 24), "recv INVITE sip:alice@example.test");
    }
}
