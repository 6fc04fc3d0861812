//! The conversation pane (`M`): the page-mode messages (RFC 3428 MESSAGE) exchanged with one
//! peer, newest at the bottom, with the delivery state of ours, and a line to write the next
//! one; and the count of messages received while it was closed. Pure state and rendering, as
//! [`super::view`]: the loop in [`super`] reads the history, sends through the phone and feeds
//! what comes back in.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use tincan::history::{Delivery, Direction, MessageRecord};
use tincan::phone::{MessageEvent, MessageId};
use tincan_sip::message::typed::Date;

/// How many messages of the history a conversation opens with.
pub const HISTORY_MESSAGES: usize = 200;

/// Where a message of the conversation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// It came to us.
    Received,
    /// Ours, sent: no final response yet.
    Sending,
    /// Ours, accepted (a 2xx; the status when known).
    Delivered(Option<u16>),
    /// Ours, refused or undeliverable: why.
    Failed(String),
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// When it was sent or received, Unix time in milliseconds.
    pub time_unix_ms: i64,
    /// Whether the peer sent it.
    pub incoming: bool,
    /// Its text as it came (escaped when drawn); a description for a body that is not text.
    pub text: String,
    /// Where it stands.
    pub state: State,
    /// The phone's id of a message we sent in this run (its delivery report names it).
    pub message: Option<MessageId>,
}

impl Entry {
    /// The entry of a message of the history.
    pub fn from_record(r: &MessageRecord) -> Entry {
        let text = match r.text() {
            Some(t) if r.content_type.is_empty() || r.content_type.starts_with("text/") => {
                t.to_owned()
            }
            _ => format!("({} bytes of {})", r.body.len(), r.content_type),
        };
        let state = match r.delivery {
            Delivery::Received => State::Received,
            Delivery::Sending => State::Sending,
            Delivery::Delivered => State::Delivered(r.status),
            Delivery::Failed => State::Failed(failure(r.status, r.reason.as_deref())),
        };
        Entry {
            time_unix_ms: r.time_unix_ms,
            incoming: r.direction == Direction::Incoming,
            text,
            state,
            message: None,
        }
    }
}

/// `486 Busy Here`, `408`, or the reason alone.
fn failure(status: Option<u16>, reason: Option<&str>) -> String {
    match (status, reason) {
        (Some(s), Some(r)) if !r.is_empty() => format!("{s} {r}"),
        (Some(s), _) => s.to_string(),
        (None, Some(r)) => r.to_owned(),
        (None, None) => "no answer".to_owned(),
    }
}

/// The open conversation with one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The peer's URI: where what is written goes, whose messages show here.
    pub peer: String,
    /// The messages, oldest first.
    pub entries: Vec<Entry>,
    /// The message being written.
    pub draft: String,
    /// How many of the newest messages are scrolled out below (0: the newest shows).
    pub back: usize,
    /// Why the history could not be read, if it could not.
    pub error: Option<String>,
}

impl Conversation {
    /// The conversation with `peer`, opening with `entries` (oldest first).
    pub fn new(peer: &str, entries: Vec<Entry>) -> Conversation {
        Conversation {
            peer: peer.to_owned(),
            entries,
            draft: String::new(),
            back: 0,
            error: None,
        }
    }

    /// Scrolls by `delta` messages (negative: back to older ones).
    pub fn scroll(&mut self, delta: isize) {
        let max = self.entries.len().saturating_sub(1);
        self.back = self.back.saturating_add_signed(-delta).min(max);
    }

    /// Adds a message at the bottom; one scrolled back keeps showing what it showed.
    pub fn push(&mut self, entry: Entry) {
        if self.back > 0 {
            self.back += 1;
        }
        self.entries.push(entry);
    }

    /// Takes in a delivery report; whether it was of a message of this conversation.
    pub fn report(&mut self, event: &MessageEvent) -> bool {
        let (id, state) = match event {
            MessageEvent::Delivered { message, status } => {
                (*message, State::Delivered(Some(*status)))
            }
            MessageEvent::Failed {
                message,
                status,
                reason,
            } => (*message, State::Failed(failure(*status, Some(reason)))),
            _ => return false,
        };
        match self.entries.iter_mut().find(|e| e.message == Some(id)) {
            Some(e) => {
                e.state = state;
                true
            }
            None => false,
        }
    }
}

/// The messages received while their conversation was not open, by peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unread {
    /// (peer URI, what to call the peer, how many), the peer with the newest last.
    pub peers: Vec<(String, String, usize)>,
}

impl Unread {
    /// Counts one more message from `uri` (called `name` on the screen).
    pub fn add(&mut self, uri: &str, name: &str) {
        let count = match self.peers.iter().position(|(u, ..)| u == uri) {
            Some(i) => self.peers.remove(i).2,
            None => 0,
        };
        self.peers
            .push((uri.to_owned(), name.to_owned(), count + 1));
    }

    /// Forgets the messages of `uri` (its conversation opened).
    pub fn clear(&mut self, uri: &str) {
        self.peers.retain(|(u, ..)| u != uri);
    }

    /// The peer whose message is the newest.
    pub fn newest(&self) -> Option<&str> {
        self.peers.last().map(|(u, ..)| u.as_str())
    }

    /// `2 new messages from bob (M reads)`, or `3 new messages from 2 people (M reads)`.
    pub fn text(&self) -> Option<String> {
        let (_, name, _) = self.peers.last()?;
        let total: usize = self.peers.iter().map(|(.., n)| n).sum();
        let plural = if total == 1 { "" } else { "s" };
        let from = if self.peers.len() == 1 {
            escape(name)
        } else {
            format!("{} people", self.peers.len())
        };
        Some(format!("{total} new message{plural} from {from} (M reads)"))
    }
}

/// Control characters (escape sequences, carriage returns, newlines) as Rust escapes: a
/// peer's text cannot drive the terminal.
pub fn escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `12-08 01:48` (UTC) of a Unix time in milliseconds.
fn when(unix_ms: i64) -> String {
    let d = Date::from_unix_seconds(unix_ms.div_euclid(1000));
    format!("{:02}-{:02} {:02}:{:02}", d.month, d.day, d.hour, d.minute)
}

/// The state shown after a message of ours.
fn state_text(state: &State) -> String {
    match state {
        State::Received => String::new(),
        State::Sending => "sending...".to_owned(),
        State::Delivered(Some(s)) => format!("delivered ({s})"),
        State::Delivered(None) => "delivered".to_owned(),
        State::Failed(why) => format!("failed: {}", escape(why)),
    }
}

/// The lines of one message, `width` columns wide: `12-08 01:48 < text`, `> text  [delivered
/// (200)]`, the text wrapped below under itself.
pub fn entry_lines(entry: &Entry, width: usize) -> Vec<String> {
    let head = format!(
        "{} {} ",
        when(entry.time_unix_ms),
        if entry.incoming { "<" } else { ">" }
    );
    let mut text = escape(&entry.text);
    if !entry.incoming {
        text.push_str(&format!("  [{}]", state_text(&entry.state)));
    }
    let indent = head.chars().count();
    let room = width.saturating_sub(indent).max(10);
    let chars: Vec<char> = text.chars().collect();
    let mut lines = Vec::new();
    for (i, chunk) in chars.chunks(room).enumerate() {
        let chunk: String = chunk.iter().collect();
        if i == 0 {
            lines.push(format!("{head}{chunk}"));
        } else {
            lines.push(format!("{}{chunk}", " ".repeat(indent)));
        }
    }
    if lines.is_empty() {
        lines.push(head);
    }
    lines
}

/// Draws the conversation over `area` (the lower part of the screen, as the panes): the
/// messages, newest at the bottom, then the line being written.
pub fn render(conversation: &Conversation, frame: &mut Frame<'_>, area: Rect) {
    let height = (area.height.saturating_sub(2) * 2 / 3)
        .max(4)
        .min(area.height);
    let rect = Rect {
        x: area.x,
        y: area.y + area.height - height,
        width: area.width,
        height,
    };
    frame.render_widget(Clear, rect);
    let block = Block::default().borders(Borders::ALL).title(format!(
        "Messages with {} (Enter sends, Up/Down scroll, Esc closes)",
        escape(&conversation.peer)
    ));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let width = usize::from(inner.width);
    let rows = usize::from(inner.height.saturating_sub(1));
    let shown = conversation.entries.len().saturating_sub(conversation.back);
    let mut lines: Vec<String> = Vec::new();
    if let Some(e) = &conversation.error {
        lines.push(format!("no history: {}", escape(e)));
    }
    if conversation.entries.is_empty() {
        lines.push("no messages yet: write one below".to_owned());
    }
    for e in &conversation.entries[..shown] {
        lines.extend(entry_lines(e, width));
    }
    let first = lines.len().saturating_sub(rows);
    let mut text: Vec<Line<'static>> = lines.into_iter().skip(first).map(Line::from).collect();
    while text.len() < rows {
        text.insert(0, Line::from(""));
    }
    // The end of the draft shows when it is longer than the line.
    let draft: Vec<char> = escape(&conversation.draft).chars().collect();
    let keep = width.saturating_sub(4);
    let tail: String = draft[draft.len().saturating_sub(keep)..].iter().collect();
    text.push(Line::from(format!("> {tail}_")));
    frame.render_widget(Paragraph::new(text), inner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn screen(c: &Conversation, width: u16, height: u16) -> Vec<String> {
        let mut terminal =
            Terminal::new(TestBackend::new(width, height)).expect("a test backend cannot fail");
        terminal
            .draw(|f| render(c, f, f.area()))
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

    fn entry(incoming: bool, text: &str, state: State) -> Entry {
        Entry {
            // 2026-12-08 01:48:00 UTC
            time_unix_ms: 1_796_694_480_000,
            incoming,
            text: text.to_owned(),
            state,
            message: None,
        }
    }

    #[test]
    fn a_conversation_shows_both_ways_newest_at_the_bottom_with_the_delivery_of_ours() {
        let mut c = Conversation::new(
            "sip:bob@example.test",
            vec![
                entry(true, "hello", State::Received),
                entry(false, "hi bob", State::Delivered(Some(200))),
            ],
        );
        c.push(Entry {
            message: Some(MessageId(7)),
            ..entry(false, "are you there?", State::Sending)
        });
        c.draft = "typing".to_owned();
        let rows = screen(&c, 80, 12);
        assert!(rows.iter().all(|r| r.chars().count() == 80));
        let text = rows.join("\n");
        assert!(
            text.contains("Messages with sip:bob@example.test"),
            "{text}"
        );
        let at = |needle: &str| {
            rows.iter()
                .position(|r| r.contains(needle))
                .unwrap_or_else(|| panic!("no {needle:?} in\n{text}"))
        };
        assert!(rows[at("hello")].contains("12-08 01:48 < hello"), "{text}");
        assert!(rows[at("hi bob")].contains("> hi bob  [delivered (200)]"));
        assert!(rows[at("are you there?")].contains("[sending...]"));
        assert!(at("hello") < at("hi bob") && at("hi bob") < at("are you there?"));
        assert!(rows[at("typing")].contains("> typing_"), "{text}");
        assert!(at("are you there?") < at("typing"));

        // The delivery report of ours changes its line.
        assert!(c.report(&MessageEvent::Failed {
            message: MessageId(7),
            status: Some(480),
            reason: "Temporarily Unavailable".into(),
        }));
        assert!(!c.report(&MessageEvent::Delivered {
            message: MessageId(8),
            status: 200,
        }));
        let rows = screen(&c, 80, 12);
        assert!(
            rows.join("\n")
                .contains("[failed: 480 Temporarily Unavailable]"),
            "{}",
            rows.join("\n")
        );
    }

    #[test]
    fn control_characters_are_escaped_and_long_text_wraps() {
        let long = "word ".repeat(40);
        let c = Conversation::new(
            "sip:eve@example.test",
            vec![
                entry(true, "\u{1b}[2Jboom\r\nline", State::Received),
                entry(true, &long, State::Received),
            ],
        );
        let rows = screen(&c, 80, 24);
        let text = rows.join("\n");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("\\u{1b}[2Jboom\\r\\nline"), "{text}");
        // 200 characters at 80 columns: on three lines at least.
        assert!(rows.iter().filter(|r| r.contains("word")).count() >= 3);
    }

    #[test]
    fn scrolling_goes_back_by_messages_and_stays_within_them() {
        let entries: Vec<Entry> = (0..30)
            .map(|i| entry(true, &format!("message {i:02}"), State::Received))
            .collect();
        let mut c = Conversation::new("sip:bob@example.test", entries);
        let text = screen(&c, 80, 12).join("\n");
        assert!(text.contains("message 29") && !text.contains("message 00"));
        c.scroll(-10);
        let text = screen(&c, 80, 12).join("\n");
        assert!(text.contains("message 19") && !text.contains("message 20"));
        // A new message while scrolled back does not move what shows.
        c.push(entry(true, "message 30", State::Received));
        let text = screen(&c, 80, 12).join("\n");
        assert!(text.contains("message 19") && !text.contains("message 20"));
        c.scroll(-1000);
        assert_eq!(c.back, 30);
        assert!(screen(&c, 80, 12).join("\n").contains("message 00"));
        c.scroll(1000);
        assert_eq!(c.back, 0);
        assert!(screen(&c, 80, 12).join("\n").contains("message 30"));
        // Tiny screens do not panic.
        screen(&c, 10, 3);
        screen(&Conversation::new("x", vec![]), 1, 1);
    }

    #[test]
    fn unread_messages_are_counted_by_peer() {
        let mut u = Unread::default();
        assert_eq!(u.text(), None);
        u.add("sip:bob@x", "bob");
        u.add("sip:bob@x", "bob");
        assert_eq!(
            u.text().as_deref(),
            Some("2 new messages from bob (M reads)")
        );
        u.add("sip:carol@x", "Carol\u{1b}");
        assert_eq!(u.newest(), Some("sip:carol@x"));
        assert_eq!(
            u.text().as_deref(),
            Some("3 new messages from 2 people (M reads)")
        );
        u.clear("sip:carol@x");
        assert_eq!(u.newest(), Some("sip:bob@x"));
        u.clear("sip:bob@x");
        assert_eq!(u.text(), None);
    }

    #[test]
    fn an_entry_of_the_history_keeps_its_delivery() {
        let mut r = MessageRecord::new(
            Direction::Outgoing,
            "<sip:bob@x>",
            None,
            0,
            "text/plain",
            b"hi",
        );
        r.delivery = Delivery::Failed;
        r.status = Some(404);
        r.reason = Some("Not Found".into());
        let e = Entry::from_record(&r);
        assert_eq!(e.state, State::Failed("404 Not Found".into()));
        assert_eq!(e.text, "hi");
        assert!(!e.incoming);
        let r = MessageRecord::new(Direction::Incoming, "bob", None, 0, "image/png", b"\x89P");
        assert_eq!(
            Entry::from_record(&r).text,
            "(2 bytes of image/png)".to_owned()
        );
    }
}
