//! The panes opened by a key over the lower half of the screen: recent calls and contacts
//! (`r`), the SIP log (`l`), the device chooser (`v`); and the candidates of Tab in the dial
//! prompt. Pure state and rendering, as [`super::view`]: the loop in [`super`] fills them
//! (from the history database, the tracer, the audio devices) and carries out what they pick.

use std::collections::VecDeque;
use std::time::Duration;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use tincan::history::{CallRecord, Completion, Contact, Direction};
use tincan_sip::message::typed::Date;

/// Which pane is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaneKind {
    /// Recent calls and contacts (`r`).
    Recent,
    /// The SIP log (`l`).
    SipLog,
    /// The input and output devices (`v`).
    Devices,
}

/// The panes' state, part of [`super::view::PhoneView`].
#[derive(Debug, Clone, Default)]
pub struct Panes {
    /// The open pane, if any: arrows, Enter and Esc go to it.
    pub open: Option<PaneKind>,
    /// Recent calls and contacts.
    pub recent: RecentPane,
    /// The SIP log.
    pub log: SipLogPane,
    /// The device chooser.
    pub devices: DevicePane,
    /// The candidates of Tab in the dial prompt, while it cycles through them.
    pub completion: Option<CompletionState>,
}

/// What Enter on a pane asks the loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PanePick {
    /// Call this URI.
    Dial(String),
    /// Use this input (`true`) or output (`false`) device for the next calls.
    Device {
        /// The device's name (as `tincan devices` lists it).
        name: String,
        /// Whether it is an input device.
        input: bool,
    },
}

impl Panes {
    /// Opens `kind`, or closes it when it is the one open.
    pub fn toggle(&mut self, kind: PaneKind) {
        self.open = if self.open == Some(kind) {
            None
        } else {
            Some(kind)
        };
    }

    /// Moves the selection of the open pane by `delta` rows.
    pub fn move_by(&mut self, delta: isize) {
        match self.open {
            Some(PaneKind::Recent) => {
                self.recent.selected = step(self.recent.selected, delta, self.recent.len());
            }
            Some(PaneKind::SipLog) => self.log.move_by(delta),
            Some(PaneKind::Devices) => {
                self.devices.selected = step(self.devices.selected, delta, self.devices.len());
            }
            None => {}
        }
    }

    /// Enter on the open pane: what it picks (the SIP log picks nothing: it shows the whole
    /// message of the selected line already).
    pub fn pick(&mut self) -> Option<PanePick> {
        match self.open? {
            PaneKind::Recent => {
                let uri = self.recent.selected_uri()?;
                self.open = None;
                Some(PanePick::Dial(uri))
            }
            PaneKind::Devices => {
                let (name, input) = self.devices.selected_device()?;
                if input {
                    self.devices.chosen_input = Some(name.clone());
                } else {
                    self.devices.chosen_output = Some(name.clone());
                }
                Some(PanePick::Device { name, input })
            }
            PaneKind::SipLog => None,
        }
    }
}

/// `selected` moved by `delta` within `0..len`, clamped.
fn step(selected: usize, delta: isize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    selected.saturating_add_signed(delta).min(len - 1)
}

/// Recent calls, then contacts by name.
#[derive(Debug, Clone, Default)]
pub struct RecentPane {
    /// The last calls, newest first.
    pub calls: Vec<CallRecord>,
    /// The contacts, by name.
    pub contacts: Vec<Contact>,
    /// Why the history could not be read, if it could not.
    pub error: Option<String>,
    /// The selected row: calls first, then contacts.
    pub selected: usize,
}

impl RecentPane {
    fn len(&self) -> usize {
        self.calls.len() + self.contacts.len()
    }

    /// The URI of the selected row.
    pub fn selected_uri(&self) -> Option<String> {
        match self.calls.get(self.selected) {
            Some(c) => Some(c.peer_uri.clone()),
            None => self
                .contacts
                .get(self.selected - self.calls.len())
                .map(|c| c.uri.clone()),
        }
    }
}

/// One message of the SIP log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// One line: `12:00:01 sent INVITE sip:bob@example.com -> udp:192.0.2.1:5060`.
    pub summary: String,
    /// The whole message.
    pub text: String,
}

/// How many messages the SIP log keeps.
pub const SIP_LOG_LIMIT: usize = 500;

/// The last [`SIP_LOG_LIMIT`] messages sent and received, the selected one shown in full.
#[derive(Debug, Clone, Default)]
pub struct SipLogPane {
    /// Oldest first.
    pub entries: VecDeque<TraceEntry>,
    /// The selected message; `None`: follow the newest.
    pub selected: Option<usize>,
    /// Messages that did not fit in the ring (the oldest ones, dropped).
    pub dropped: u64,
}

impl SipLogPane {
    /// Adds a message, dropping the oldest beyond [`SIP_LOG_LIMIT`] (a selection stays on
    /// its message).
    pub fn push(&mut self, entry: TraceEntry) {
        self.entries.push_back(entry);
        if self.entries.len() > SIP_LOG_LIMIT {
            self.entries.pop_front();
            self.dropped += 1;
            if let Some(s) = &mut self.selected {
                *s = s.saturating_sub(1);
            }
        }
    }

    /// The index of the message shown in full.
    pub fn current(&self) -> Option<usize> {
        let last = self.entries.len().checked_sub(1)?;
        Some(self.selected.unwrap_or(last).min(last))
    }

    fn move_by(&mut self, delta: isize) {
        let Some(current) = self.current() else {
            return;
        };
        let next = step(current, delta, self.entries.len());
        // Down past the newest follows the log again.
        self.selected = (next + 1 < self.entries.len()).then_some(next);
    }
}

/// An audio device as the chooser lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    /// Its name (what `--input-device`/`--output-device` take).
    pub name: String,
    /// Whether it is the system's default in its direction.
    pub default: bool,
}

/// The input and output devices; Enter picks the selected one for the next calls.
#[derive(Debug, Clone, Default)]
pub struct DevicePane {
    /// The microphones.
    pub inputs: Vec<DeviceEntry>,
    /// The speakers.
    pub outputs: Vec<DeviceEntry>,
    /// Why the devices could not be listed, if they could not.
    pub error: Option<String>,
    /// The selected row: inputs first, then outputs.
    pub selected: usize,
    /// The input device picked for the next calls (`None`: as configured).
    pub chosen_input: Option<String>,
    /// The output device picked for the next calls.
    pub chosen_output: Option<String>,
}

impl DevicePane {
    fn len(&self) -> usize {
        self.inputs.len() + self.outputs.len()
    }

    /// The selected device's name, and whether it is an input.
    pub fn selected_device(&self) -> Option<(String, bool)> {
        match self.inputs.get(self.selected) {
            Some(d) => Some((d.name.clone(), true)),
            None => self
                .outputs
                .get(self.selected - self.inputs.len())
                .map(|d| (d.name.clone(), false)),
        }
    }
}

/// Tab in the dial prompt: the candidates for what was typed, cycled through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionState {
    /// What was typed before the first Tab.
    pub prefix: String,
    /// The candidates, best first.
    pub candidates: Vec<Completion>,
    /// The candidate in the prompt now.
    pub current: usize,
}

impl CompletionState {
    /// The candidates for `prefix` (none: no state).
    pub fn new(prefix: &str, candidates: Vec<Completion>) -> Option<CompletionState> {
        (!candidates.is_empty()).then(|| CompletionState {
            prefix: prefix.to_owned(),
            candidates,
            current: 0,
        })
    }

    /// The URI now in the prompt.
    pub fn uri(&self) -> &str {
        &self.candidates[self.current % self.candidates.len()].uri
    }

    /// The next Tab: the following candidate, wrapping around.
    pub fn advance(&mut self) {
        self.current = (self.current + 1) % self.candidates.len();
    }
}

/// `2026-12-07 21:00` (UTC) of a Unix time in milliseconds.
fn when(unix_ms: i64) -> String {
    let d = Date::from_unix_seconds(unix_ms.div_euclid(1000));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        d.year, d.month, d.day, d.hour, d.minute
    )
}

/// `m:ss`, or `h:mm:ss`.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// One line of a past call: direction, peer, when, duration, why it ended, MOS.
pub fn call_record_line(c: &CallRecord) -> String {
    let dir = match c.direction {
        Direction::Incoming => "in ",
        Direction::Outgoing => "out",
    };
    let peer = match &c.peer_name {
        Some(n) => format!("{n} <{}>", c.peer_uri),
        None => c.peer_uri.clone(),
    };
    let mut why = c.end_reason.replace('_', " ");
    if let Some(s) = c.status {
        why = format!("{why} ({s})");
    }
    let mos = c
        .mos
        .map_or_else(|| "MOS -".to_owned(), |m| format!("MOS {m:.2}"));
    format!(
        "{dir} {peer}  {}  {}  {why}  {mos}",
        when(c.start_unix_ms),
        clock(c.duration)
    )
}

/// The rows of the recent pane, the selected one marked `>`.
pub fn recent_lines(pane: &RecentPane) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(e) = &pane.error {
        lines.push(Line::from(format!("no history: {e}")));
    }
    let mark = |i: usize, text: String| {
        if i == pane.selected {
            Line::from(format!("> {text}")).style(Style::default().add_modifier(Modifier::BOLD))
        } else {
            Line::from(format!("  {text}"))
        }
    };
    lines.push(Line::from(if pane.calls.is_empty() {
        "recent calls: none"
    } else {
        "recent calls:"
    }));
    for (i, c) in pane.calls.iter().enumerate() {
        lines.push(mark(i, call_record_line(c)));
    }
    lines.push(Line::from(if pane.contacts.is_empty() {
        "contacts: none (tincan contacts add NAME URI)"
    } else {
        "contacts:"
    }));
    for (i, c) in pane.contacts.iter().enumerate() {
        lines.push(mark(pane.calls.len() + i, format!("{}  {}", c.name, c.uri)));
    }
    lines
}

/// The rows of the device chooser.
pub fn device_lines(pane: &DevicePane) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(e) = &pane.error {
        lines.push(Line::from(format!("no devices: {e}")));
    }
    let row = |i: usize, d: &DeviceEntry, chosen: Option<&String>| {
        let pick = if chosen == Some(&d.name) { "*" } else { " " };
        let default = if d.default { " (default)" } else { "" };
        let text = format!("{pick} {}{default}", d.name);
        if i == pane.selected {
            Line::from(format!(">{text}")).style(Style::default().add_modifier(Modifier::BOLD))
        } else {
            Line::from(format!(" {text}"))
        }
    };
    lines.push(Line::from(format!(
        "input: {}",
        pane.chosen_input.as_deref().unwrap_or("as configured")
    )));
    for (i, d) in pane.inputs.iter().enumerate() {
        lines.push(row(i, d, pane.chosen_input.as_ref()));
    }
    lines.push(Line::from(format!(
        "output: {}",
        pane.chosen_output.as_deref().unwrap_or("as configured")
    )));
    for (i, d) in pane.outputs.iter().enumerate() {
        lines.push(row(pane.inputs.len() + i, d, pane.chosen_output.as_ref()));
    }
    lines
}

/// The first row to show so that `selected` is inside a window of `height` rows.
fn scroll_for(selected: usize, height: u16) -> u16 {
    let height = usize::from(height.max(1));
    u16::try_from(selected.saturating_sub(height - 1)).unwrap_or(u16::MAX)
}

/// Draws the open pane over the lower part of `area` (between the account lines and the
/// status line), and the completion candidates above the status line.
pub fn render(panes: &Panes, frame: &mut Frame<'_>, area: Rect) {
    if let Some(kind) = panes.open {
        // The lower two thirds: the calls stay visible above.
        let height = (area.height.saturating_sub(2) * 2 / 3)
            .max(3)
            .min(area.height);
        let rect = Rect {
            x: area.x,
            y: area.y + area.height - height,
            width: area.width,
            height,
        };
        frame.render_widget(Clear, rect);
        let inner_height = height.saturating_sub(2);
        match kind {
            PaneKind::Recent => {
                // The header rows above the selected one: an error line, "recent calls:", and
                // "contacts:" once past the calls.
                let lines = recent_lines(&panes.recent);
                let offset = usize::from(panes.recent.error.is_some())
                    + 1
                    + usize::from(panes.recent.selected >= panes.recent.calls.len());
                let scroll = scroll_for(panes.recent.selected + offset, inner_height);
                frame.render_widget(
                    Paragraph::new(lines).scroll((scroll, 0)).block(
                        Block::default()
                            .borders(Borders::ALL)
                            .title("Recent calls and contacts (Enter calls, Esc closes)"),
                    ),
                    rect,
                );
            }
            PaneKind::Devices => {
                let lines = device_lines(&panes.devices);
                let offset = usize::from(panes.devices.error.is_some())
                    + 1
                    + usize::from(panes.devices.selected >= panes.devices.inputs.len());
                let scroll = scroll_for(panes.devices.selected + offset, inner_height);
                frame.render_widget(
                    Paragraph::new(lines).scroll((scroll, 0)).block(
                        Block::default()
                            .borders(Borders::ALL)
                            .title("Devices for the next calls (Enter picks, Esc closes)"),
                    ),
                    rect,
                );
            }
            PaneKind::SipLog => render_log(&panes.log, frame, rect),
        }
    }
    if let Some(c) = &panes.completion {
        let rows = u16::try_from(c.candidates.len())
            .unwrap_or(u16::MAX)
            .min(8)
            .saturating_add(2)
            .min(area.height);
        let rect = Rect {
            x: area.x,
            y: area.y + area.height - rows,
            width: area.width,
            height: rows,
        };
        let lines: Vec<Line<'static>> = c
            .candidates
            .iter()
            .enumerate()
            .map(|(i, cand)| {
                let mark = if i == c.current { ">" } else { " " };
                let text = match &cand.name {
                    Some(n) => format!("{mark} {n}  {}", cand.uri),
                    None => format!("{mark} {}", cand.uri),
                };
                Line::from(text)
            })
            .collect();
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(lines)
                .scroll((scroll_for(c.current, rows.saturating_sub(2)), 0))
                .block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title(match c.candidates.len() {
                            1 => "1 match".to_owned(),
                            n => format!("{n} matches (Tab next)"),
                        }),
                ),
            rect,
        );
    }
}

/// The SIP log: the summaries above, the whole selected message below.
fn render_log(log: &SipLogPane, frame: &mut Frame<'_>, rect: Rect) {
    let block = Block::default().borders(Borders::ALL).title(format!(
        "SIP log, {} messages (Up/Down select, Esc closes)",
        log.entries.len()
    ));
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let parts =
        Layout::vertical([Constraint::Percentage(40), Constraint::Percentage(60)]).split(inner);
    let current = log.current();
    let summaries: Vec<Line<'static>> = log
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if Some(i) == current {
                Line::from(format!("> {}", e.summary))
                    .style(Style::default().add_modifier(Modifier::BOLD))
            } else {
                Line::from(format!("  {}", e.summary))
            }
        })
        .collect();
    let empty = summaries.is_empty();
    frame.render_widget(
        Paragraph::new(if empty {
            vec![Line::from("no SIP messages yet")]
        } else {
            summaries
        })
        .scroll((scroll_for(current.unwrap_or(0), parts[0].height), 0)),
        parts[0],
    );
    if let Some(e) = current.and_then(|i| log.entries.get(i)) {
        let text: Vec<Line<'static>> = e.text.lines().map(|l| Line::from(l.to_owned())).collect();
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: false })
                .block(Block::default().borders(Borders::TOP)),
            parts[1],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use tincan::history::CompletionSource;

    fn screen(panes: &Panes, width: u16, height: u16) -> Vec<String> {
        let mut terminal =
            Terminal::new(TestBackend::new(width, height)).expect("a test backend cannot fail");
        terminal
            .draw(|f| render(panes, f, f.area()))
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

    fn has(rows: &[String], text: &str) -> bool {
        rows.iter().any(|r| r.contains(text))
    }

    fn record(peer: &str, reason: &str, status: Option<u16>) -> CallRecord {
        CallRecord {
            direction: Direction::Outgoing,
            peer_uri: peer.into(),
            peer_name: None,
            account: None,
            start_unix_ms: 1_796_677_200_000,
            answered: status.is_none(),
            duration: Duration::from_secs(83),
            end_reason: reason.into(),
            status,
            codec: Some("opus".into()),
            mos: Some(4.31),
        }
    }

    fn filled() -> Panes {
        let mut panes = Panes::default();
        panes.recent.calls = (0..30)
            .map(|i| record(&format!("sip:user{i}@example.test"), "remote_hangup", None))
            .collect();
        panes.recent.contacts = vec![Contact {
            name: "Alice".into(),
            uri: "sip:alice@example.test".into(),
        }];
        for i in 0..(SIP_LOG_LIMIT + 20) {
            panes.log.push(TraceEntry {
                summary: format!(
                    "12:00:01 sent INVITE sip:bob{i}@example.test -> udp:192.0.2.1:5060"
                ),
                text: format!(
                    "INVITE sip:bob{i}@example.test SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n{}\r\n",
                    "X-Long: ".to_owned() + &"y".repeat(300)
                ),
            });
        }
        panes.devices.inputs = vec![
            DeviceEntry {
                name: "default".into(),
                default: true,
            },
            DeviceEntry {
                name: "USB headset".into(),
                default: false,
            },
        ];
        panes.devices.outputs = vec![DeviceEntry {
            name: "speakers".into(),
            default: true,
        }];
        panes
    }

    #[test]
    fn a_past_call_is_one_line_with_direction_peer_when_duration_reason_and_mos() {
        let line = call_record_line(&record("sip:bob@example.test", "rejected", Some(486)));
        assert_eq!(
            line,
            "out sip:bob@example.test  2026-12-07 21:00  1:23  rejected (486)  MOS 4.31"
        );
    }

    #[test]
    fn every_pane_renders_at_80x24_and_200x50() {
        let mut panes = filled();
        panes.completion = CompletionState::new(
            "a",
            (0..12)
                .map(|i| Completion {
                    name: Some(format!("Alice {i}")),
                    uri: format!("sip:alice{i}@example.test"),
                    source: CompletionSource::Contact,
                })
                .collect(),
        );
        for kind in [PaneKind::Recent, PaneKind::SipLog, PaneKind::Devices] {
            panes.open = Some(kind);
            for (w, h) in [(80, 24), (200, 50), (20, 5), (1, 1)] {
                let rows = screen(&panes, w, h);
                assert_eq!(rows.len(), usize::from(h));
            }
        }
    }

    #[test]
    fn the_recent_pane_lists_calls_then_contacts_and_enter_dials() {
        let mut panes = filled();
        panes.toggle(PaneKind::Recent);
        let rows = screen(&panes, 80, 24);
        assert!(has(&rows, "> out sip:user0@example.test"), "{rows:#?}");
        assert!(has(&rows, "remote hangup  MOS 4.31"), "{rows:#?}");
        // Down to the contact, past the end: it stays on the last row, and is visible.
        panes.move_by(100);
        let rows = screen(&panes, 80, 24);
        assert!(has(&rows, "> Alice  sip:alice@example.test"), "{rows:#?}");
        assert_eq!(
            panes.pick(),
            Some(PanePick::Dial("sip:alice@example.test".into()))
        );
        assert_eq!(panes.open, None);
        panes.toggle(PaneKind::Recent);
        panes.move_by(-100);
        assert_eq!(
            panes.pick(),
            Some(PanePick::Dial("sip:user0@example.test".into()))
        );
    }

    #[test]
    fn an_empty_history_says_so_and_picks_nothing() {
        let mut panes = Panes::default();
        panes.recent.error = Some("database is locked".into());
        panes.toggle(PaneKind::Recent);
        let rows = screen(&panes, 80, 24);
        assert!(has(&rows, "no history: database is locked"));
        assert!(has(&rows, "recent calls: none"));
        assert_eq!(panes.pick(), None);
    }

    #[test]
    fn the_sip_log_is_a_bounded_ring_that_follows_the_newest_and_shows_the_selected() {
        let mut panes = filled();
        assert_eq!(panes.log.entries.len(), SIP_LOG_LIMIT);
        assert_eq!(panes.log.dropped, 20);
        panes.toggle(PaneKind::SipLog);
        let rows = screen(&panes, 200, 50);
        assert!(
            has(&rows, "> 12:00:01 sent INVITE sip:bob519@"),
            "{rows:#?}"
        );
        assert!(has(&rows, "INVITE sip:bob519@example.test SIP/2.0"));
        panes.move_by(-2);
        let rows = screen(&panes, 200, 50);
        assert!(
            has(&rows, "> 12:00:01 sent INVITE sip:bob517@"),
            "{rows:#?}"
        );
        assert!(has(&rows, "INVITE sip:bob517@example.test SIP/2.0"));
        // A new message does not move the selection off its message.
        panes.log.push(TraceEntry {
            summary: "new".into(),
            text: "new".into(),
        });
        assert!(has(
            &screen(&panes, 200, 50),
            "> 12:00:01 sent INVITE sip:bob517@"
        ));
        // Down past the newest follows the log again.
        panes.move_by(10);
        assert_eq!(panes.log.selected, None);
        assert!(has(&screen(&panes, 80, 24), "> new"));
    }

    #[test]
    fn the_device_chooser_picks_an_input_and_an_output() {
        let mut panes = filled();
        panes.toggle(PaneKind::Devices);
        let rows = screen(&panes, 80, 24);
        assert!(has(&rows, "input: as configured"), "{rows:#?}");
        assert!(has(&rows, ">  default (default)"), "{rows:#?}");
        panes.move_by(1);
        assert_eq!(
            panes.pick(),
            Some(PanePick::Device {
                name: "USB headset".into(),
                input: true
            })
        );
        panes.move_by(1);
        assert_eq!(
            panes.pick(),
            Some(PanePick::Device {
                name: "speakers".into(),
                input: false
            })
        );
        let rows = screen(&panes, 80, 24);
        assert!(has(&rows, "input: USB headset"), "{rows:#?}");
        assert!(has(&rows, " * USB headset"), "{rows:#?}");
        assert!(has(&rows, ">* speakers (default)"), "{rows:#?}");
        // The pane stays open: the other direction may be picked next.
        assert_eq!(panes.open, Some(PaneKind::Devices));
    }

    #[test]
    fn completion_cycles_through_the_candidates() {
        let cand = |uri: &str| Completion {
            name: None,
            uri: uri.into(),
            source: CompletionSource::History,
        };
        assert_eq!(CompletionState::new("zz", vec![]), None);
        let mut c = CompletionState::new(
            "b",
            vec![cand("sip:bob@example.test"), cand("sip:bea@example.test")],
        )
        .expect("two candidates");
        assert_eq!(c.uri(), "sip:bob@example.test");
        c.advance();
        assert_eq!(c.uri(), "sip:bea@example.test");
        c.advance();
        assert_eq!(c.uri(), "sip:bob@example.test");
        let panes = Panes {
            completion: Some(c),
            ..Panes::default()
        };
        let rows = screen(&panes, 80, 24);
        assert!(has(&rows, "2 matches (Tab next)"));
        assert!(has(&rows, "> sip:bob@example.test"));
    }
}
