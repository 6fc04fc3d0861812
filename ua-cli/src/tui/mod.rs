//! The full-screen phone: `tincan` with no subcommand (or `tincan phone`) on a terminal.
//!
//! Three layers: [`view`] is the pure view model ([`view::PhoneView`], updated from the
//! phone's events, and [`view::render`]); [`input`] maps keys to [`input::Action`]s; this
//! module is the thin loop that selects over keys, the phone's events, a 1 s tick and SIGTERM,
//! carries the actions out on the [`Phone`] and redraws only after one of those.

pub mod conversation;
pub mod input;
pub mod meters;
pub mod panes;
pub mod ring;
pub mod siplog;
pub mod view;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event, KeyEventKind};
use tincan::config::{Account, Config};
use tincan::history::{Direction, History, MessageRecord};
use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{CallId, CallParams};
use tokio::sync::mpsc;

use crate::cmd::call::{Common, DeviceNames, Devices, devices, runtime, start};
use input::{Action, Keymap};
use panes::{CompletionState, PaneKind, PanePick};
use view::{CallState, PhoneView, Registration};

/// Arguments of `tincan phone`.
#[derive(Debug, clap::Args)]
pub struct PhoneArgs {
    #[command(flatten)]
    common: Common,
}

impl Default for PhoneArgs {
    /// No flags: what `tincan` alone starts.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct NoFlags {
            #[command(flatten)]
            args: PhoneArgs,
        }
        <NoFlags as clap::Parser>::parse_from(["tincan"]).args
    }
}

/// Runs `tincan phone`: builds the phone as `tincan listen` does, with every account of the
/// config registering in the background, then takes over the terminal until `q`, Ctrl-C or
/// SIGTERM. `sip_trace`: `--sip-trace FILE`, written as well as shown in the SIP log pane
/// (`-`, standard error, is refused: it would write over the screen).
pub fn run(args: &PhoneArgs, config_path: Option<&Path>, sip_trace: Option<&Path>) -> ExitCode {
    if sip_trace == Some(Path::new("-")) {
        eprintln!(
            "tincan phone: --sip-trace - would write over the screen: give a file, or see the \
             SIP log pane (key l)"
        );
        return ExitCode::from(2);
    }
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tincan phone: {e}");
            return ExitCode::from(2);
        }
    };
    crate::cmd::print_config_warnings("phone", &config);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(phone(args, config, sip_trace))
}

async fn phone(args: &PhoneArgs, config: Config, sip_trace: Option<&Path>) -> ExitCode {
    let (tracer, feed) = match siplog::tracer(sip_trace) {
        Ok(t) => t,
        Err(e) => {
            let path = sip_trace.unwrap_or(Path::new("")).display();
            eprintln!("tincan phone: cannot write the SIP trace to {path}: {e}");
            return ExitCode::from(2);
        }
    };
    // Every account registers in the background: the screen opens at once and shows how
    // each one does.
    let phone = match start("phone", &args.common, &config, true, Some(tracer)).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut view = PhoneView::default();
    for (id, a) in phone.accounts().iter().zip(&config.accounts) {
        view.add_account(*id, &a.name, Registration::Registering);
    }
    view.listening = phone
        .local_addresses()
        .iter()
        .map(|(t, a)| format!("{}:{a}", t.as_str()))
        .collect();
    // Outgoing calls go through `--account`, else the first account.
    let account = match &args.common.account {
        Some(name) => config
            .accounts
            .iter()
            .position(|a| a.name == *name)
            .and_then(|i| phone.accounts().get(i).copied()),
        None => phone.accounts().first().copied(),
    };
    let history = if args.common.no_history {
        None
    } else {
        match History::open_default() {
            Ok(h) => Some(h),
            Err(e) => {
                view.status = Some(format!("no call history: {e}"));
                None
            }
        }
    };
    let mut screen = Screen {
        phone,
        view,
        account,
        common: &args.common,
        config: &config,
        ringer: ring::Ringer::default(),
        history,
        started: Vec::new(),
        feed,
        repaint: false,
        sent_messages: Vec::new(),
    };
    if let (_, Some(warning)) = ring::ring_tone(config.audio.ring_tone.as_deref()) {
        screen.view.status = Some(format!("{warning}; ringing with the built-in tone"));
    }
    // ratatui::init: raw mode, the alternate screen, and a panic hook that restores both
    // before the panic message is printed.
    let terminal = ratatui::init();
    let result = screen.run(terminal).await;
    screen.ringer.stop();
    screen.hang_up_all().await;
    screen.record_the_hung_up_calls().await;
    screen.phone.shutdown().await;
    ratatui::restore();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tincan phone: {e}");
            ExitCode::from(1)
        }
    }
}

/// How often the screen asks the phone for the health of the accounts' registrars.
const REGISTRAR_HEALTH_EVERY: Duration = Duration::from_secs(10);

/// The phone, what the screen shows and what calls need.
struct Screen<'a> {
    phone: Phone,
    view: PhoneView,
    /// The account outgoing calls go through (`--account`, else the first).
    account: Option<tincan::phone::AccountId>,
    common: &'a Common,
    config: &'a Config,
    /// The ring of incoming calls (tui/ring.rs).
    ringer: ring::Ringer,
    /// The call history (`None`: `--no-history`, or it could not be opened).
    history: Option<History>,
    /// The calls in progress, for the history: direction, peer, account, start.
    started: Vec<(CallId, Started)>,
    /// The SIP messages for the log pane.
    feed: siplog::Feed,
    /// Redraw the whole screen next (something may have written over it).
    repaint: bool,
    /// The messages sent from the conversation waiting for their report, with their row of
    /// the history.
    sent_messages: Vec<(tincan::phone::MessageId, i64)>,
}

/// What the history needs of a call from its start.
struct Started {
    direction: Direction,
    peer: String,
    account: Option<String>,
    unix_ms: i64,
}

impl Screen<'_> {
    async fn run(&mut self, mut terminal: ratatui::DefaultTerminal) -> std::io::Result<()> {
        // crossterm's reader blocks: a thread of its own hands the keys over.
        let (keys_in, mut keys) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            while let Ok(ev) = crossterm::event::read() {
                if keys_in.send(ev).is_err() {
                    break;
                }
            }
        });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // The registrars' health changes without an event too (a cool-off ends): asked for
        // now and then, and the screen redrawn only when it changed.
        let mut health = tokio::time::interval(REGISTRAR_HEALTH_EVERY);
        health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        terminal.draw(|f| view::render(&self.view, f))?;
        loop {
            tokio::select! {
                ev = keys.recv() => match ev {
                    Some(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                        let action = if self.view.dial.is_none() && self.view.conversation.is_some() {
                            Keymap.conversation_action(key)
                        } else if self.view.dial.is_none() && self.view.panes.open.is_some() {
                            Keymap.pane_action(key)
                        } else {
                            Keymap.action(key, self.view.dial.is_some())
                        };
                        let Some(action) = action else {
                            continue;
                        };
                        if action == Action::Quit {
                            return Ok(());
                        }
                        self.act(action).await;
                        self.update_ringer();
                    }
                    Some(Event::Resize(..)) => {}
                    Some(_) => continue,
                    None => return Ok(()),
                },
                ev = self.phone.next_event() => match ev {
                    Some(ev) => {
                        let received = matches!(
                            ev,
                            tincan::phone::PhoneEvent::Message(tincan::phone::MessageEvent::Received(_))
                        );
                        let warning = self.note_for_history(&ev);
                        // A message received was taken in by the view already.
                        if !received {
                            self.view.apply(&ev);
                        }
                        self.attach_if_new(&ev).await;
                        self.auto_answer(&ev).await;
                        self.ring_on_event(&ev).await;
                        if let tincan::phone::PhoneEvent::Account { account, .. } = &ev {
                            self.refresh_registrars(*account).await;
                        }
                        if let Some(w) = warning {
                            self.view.status = Some(match self.view.status.take() {
                                Some(s) => format!("{s}; {w}"),
                                None => w,
                            });
                        }
                    }
                    None => return Ok(()),
                },
                Some(entry) = self.feed.entries.recv() => {
                    self.view.panes.log.push(entry);
                    self.view.panes.log.dropped +=
                        self.feed.dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
                    if self.view.panes.open != Some(PaneKind::SipLog) {
                        continue;
                    }
                }
                _ = tick.tick() => {
                    if self.view.calls.is_empty() {
                        continue;
                    }
                    self.view.tick(Duration::from_secs(1));
                }
                _ = health.tick() => {
                    let mut changed = false;
                    for account in self.phone.accounts().to_vec() {
                        changed |= self.refresh_registrars(account).await;
                    }
                    if !changed {
                        continue;
                    }
                }
                _ = term.recv() => return Ok(()),
            }
            if std::mem::take(&mut self.repaint) {
                // Not `terminal.clear()`: it asks the terminal for the cursor position, and the
                // answer would go to the keys thread. Clear the screen, then draw a blank frame
                // so that the next draw writes every cell again.
                use ratatui::backend::Backend;
                terminal
                    .backend_mut()
                    .clear_region(ratatui::backend::ClearType::All)?;
                terminal.draw(|f| f.render_widget(ratatui::widgets::Clear, f.area()))?;
            }
            terminal.draw(|f| view::render(&self.view, f))?;
        }
    }

    /// Carries out one action (not Quit).
    async fn act(&mut self, action: Action) {
        let selected = self.view.selected;
        let result = match action {
            Action::StartDial => {
                self.view.dial = Some(String::new());
                Ok(())
            }
            Action::DialChar(c) => {
                self.view.panes.completion = None;
                self.view.dial.get_or_insert_default().push(c);
                Ok(())
            }
            Action::DialBackspace => {
                self.view.panes.completion = None;
                if let Some(d) = &mut self.view.dial {
                    d.pop();
                }
                Ok(())
            }
            Action::DialCancel => {
                self.view.panes.completion = None;
                self.view.dial = None;
                self.view.transfer_of = None;
                self.view.message_to = false;
                Ok(())
            }
            Action::DialSubmit => {
                self.view.panes.completion = None;
                let uri = self.view.dial.take().unwrap_or_default();
                let transfer_of = self.view.transfer_of.take();
                let message_to = std::mem::take(&mut self.view.message_to);
                let uri = uri.trim();
                if uri.is_empty() {
                    return;
                }
                if message_to {
                    let peer = self.peer_of_typed(uri);
                    self.open_conversation(&peer);
                    return;
                }
                match transfer_of {
                    Some(call) => self.transfer(call, uri).await,
                    None => self.dial(uri).await,
                }
            }
            Action::Answer => self.answer().await,
            Action::Decline(status) => match self.ringing() {
                Some(call) => {
                    let r = self.phone.reject(call, status).await;
                    if r.is_ok() {
                        self.view.declined.push((call, status));
                    }
                    r.map_err(|e| e.to_string())
                }
                None => Ok(()),
            },
            Action::Hangup => match selected {
                Some(call) => self.phone.hangup(call).await.map_err(|e| e.to_string()),
                None => Ok(()),
            },
            Action::ToggleHold => match self.view.selected_call() {
                Some(c) if c.state == CallState::OnHold => {
                    self.phone.resume(c.id).await.map_err(|e| e.to_string())
                }
                Some(c) if matches!(c.state, CallState::Talking | CallState::HeldByPeer) => {
                    self.phone.hold(c.id).await.map_err(|e| e.to_string())
                }
                _ => Ok(()),
            },
            Action::Dtmf(digit) => match self.view.selected_call() {
                Some(c) if c.state != CallState::Ringing || !c.incoming => {
                    let r = self.phone.send_dtmf(c.id, &digit.to_string()).await;
                    if r.is_ok() {
                        self.view.status = Some(format!("sent DTMF {digit}"));
                    }
                    r.map_err(|e| e.to_string())
                }
                _ => Ok(()),
            },
            Action::NextCall => {
                self.view.select_next();
                Ok(())
            }
            Action::ToggleHelp => {
                self.view.help = !self.view.help;
                Ok(())
            }
            Action::Quit => Ok(()),
            Action::Silence => {
                self.silence_ringer();
                Ok(())
            }
            Action::DialComplete => {
                self.complete();
                Ok(())
            }
            Action::TogglePane(kind) => {
                self.view.panes.toggle(kind);
                if self.view.panes.open == Some(kind) {
                    self.fill_pane(kind);
                }
                Ok(())
            }
            Action::PaneMove(delta) => {
                self.view.panes.move_by(delta);
                Ok(())
            }
            Action::PanePick => match self.view.panes.pick() {
                Some(PanePick::Dial(uri)) => self.dial(&uri).await,
                Some(PanePick::Device { name, input }) => {
                    let which = if input { "input" } else { "output" };
                    let overridden = if self.common.no_audio
                        || (input && self.common.play.is_some())
                        || (!input && self.common.record.is_some())
                    {
                        " (but --no-audio/--play/--record win)"
                    } else {
                        " (a call in progress keeps its own)"
                    };
                    self.view.status = Some(format!(
                        "{which} device {name:?} for the next calls{overridden}"
                    ));
                    Ok(())
                }
                None => Ok(()),
            },
            Action::PaneClose => {
                self.view.panes.open = None;
                Ok(())
            }
            Action::ToggleMute => self.toggle_mute().await,
            Action::StartTransfer => {
                match self.view.selected_call() {
                    Some(c) if matches!(c.state, CallState::Talking | CallState::OnHold) => {
                        self.view.transfer_of = Some(c.id);
                        self.view.dial = Some(String::new());
                    }
                    _ => self.view.status = Some("no call up to transfer".into()),
                }
                Ok(())
            }
            Action::OpenConversation => {
                match self.conversation_peer() {
                    Some(peer) => {
                        self.view.panes.open = None;
                        self.open_conversation(&peer);
                    }
                    None => {
                        self.view.message_to = true;
                        self.view.dial = Some(String::new());
                    }
                }
                Ok(())
            }
            Action::ConversationChar(c) => {
                if let Some(conv) = &mut self.view.conversation {
                    conv.draft.push(c);
                }
                Ok(())
            }
            Action::ConversationBackspace => {
                if let Some(conv) = &mut self.view.conversation {
                    conv.draft.pop();
                }
                Ok(())
            }
            Action::ConversationScroll(delta) => {
                if let Some(conv) = &mut self.view.conversation {
                    conv.scroll(delta);
                }
                Ok(())
            }
            Action::ConversationUnread => {
                if let Some(peer) = self.view.unread.newest().map(str::to_owned) {
                    self.open_conversation(&peer);
                }
                Ok(())
            }
            Action::ConversationClose => {
                self.view.conversation = None;
                Ok(())
            }
            Action::ConversationSend => self.send_message().await,
            Action::ToggleConference => self.toggle_conference().await,
            Action::AttendedTransfer => self.attended_transfer().await,
            Action::AnswerTransfer(yes) => match self.view.transfer_request.clone() {
                Some((call, to)) => {
                    let r = if yes {
                        self.phone.accept_transfer(call).await
                    } else {
                        self.view.transfer_request = None;
                        self.phone.reject_transfer(call).await
                    };
                    if r.is_ok() && !yes {
                        self.view.status = Some(format!("refused the transfer to {to}"));
                    }
                    r.map_err(|e| e.to_string())
                }
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            self.view.status = Some(e);
        }
    }

    /// The URI of what was typed to write to (`bob` is `sip:bob@` the account's domain), as
    /// the phone reads it.
    fn peer_of_typed(&self, uri: &str) -> String {
        let account = self.config_account(self.account);
        let domain = account
            .or_else(|| (self.config.accounts.len() == 1).then(|| &self.config.accounts[0]))
            .map(|a| a.aor.host.to_string());
        tincan::phone::call::request_uri(uri, domain.as_deref())
            .map_or_else(|_| uri.to_owned(), |u| u.to_string())
    }

    /// Whom `M` writes to: the peer of the newest unread message, of the contact or call
    /// selected in the recent pane, of the selected call, or of the last message.
    fn conversation_peer(&self) -> Option<String> {
        let uri_of =
            |peer: &str| MessageRecord::new(Direction::Incoming, peer, None, 0, "", &[]).peer_uri;
        if let Some(peer) = self.view.unread.newest() {
            return Some(peer.to_owned());
        }
        if self.view.panes.open == Some(PaneKind::Recent)
            && let Some(uri) = self.view.panes.recent.selected_uri()
        {
            return Some(uri_of(&uri));
        }
        if let Some(c) = self.view.selected_call() {
            return Some(uri_of(&c.peer));
        }
        let last = self.history.as_ref()?.messages(None, 1).ok()?;
        last.last().map(|m| m.peer_uri.clone())
    }

    /// Opens the conversation with `peer`, with its messages of the history.
    fn open_conversation(&mut self, peer: &str) {
        let (entries, error) = match &self.history {
            Some(h) => match h.messages(Some(peer), conversation::HISTORY_MESSAGES) {
                Ok(m) => (
                    m.iter().map(conversation::Entry::from_record).collect(),
                    None,
                ),
                Err(e) => (Vec::new(), Some(e.to_string())),
            },
            None => (Vec::new(), None),
        };
        let mut c = conversation::Conversation::new(peer, entries);
        c.error = error;
        self.view.open_conversation(c);
    }

    /// Enter in the conversation: sends its line to its peer through the account of
    /// outgoing calls, keeps it in the history, shows it `sending...` until its report.
    async fn send_message(&mut self) -> Result<(), String> {
        let Some(c) = &mut self.view.conversation else {
            return Ok(());
        };
        let text = std::mem::take(&mut c.draft);
        if text.trim().is_empty() {
            return Ok(());
        }
        let peer = c.peer.clone();
        let now = crate::cmd::history::unix_ms_now();
        let sent = self.phone.send_message(&peer, &text, self.account).await;
        let account = self.account_name(self.account);
        let mut record = MessageRecord::new(
            Direction::Outgoing,
            &peer,
            account,
            now,
            tincan::phone::message::TEXT_PLAIN,
            text.as_bytes(),
        );
        let id = match &sent {
            Ok(id) => Some(*id),
            Err(e) => {
                record.delivery = tincan::history::Delivery::Failed;
                record.reason = Some(e.to_string());
                None
            }
        };
        let row = match &mut self.history {
            Some(h) => h.record_message(&record).ok(),
            None => None,
        };
        if let (Some(id), Some(row)) = (id, row) {
            self.sent_messages.push((id, row));
        }
        let mut entry = conversation::Entry::from_record(&record);
        entry.message = id;
        if let Some(c) = &mut self.view.conversation {
            c.back = 0;
            c.push(entry);
        }
        Ok(())
    }

    /// Mutes the selected call's microphone, or unmutes it (not a call ringing here: it has
    /// no microphone yet).
    async fn toggle_mute(&mut self) -> Result<(), String> {
        let Some(c) = self.view.selected_call() else {
            return Ok(());
        };
        if c.incoming && c.state == CallState::Ringing {
            return Ok(());
        }
        let muted = !self.view.is_muted(c.id);
        self.phone
            .mute(c.id, muted)
            .await
            .map_err(|e| e.to_string())
    }

    /// The selected call if it rings here, else the oldest call ringing here.
    fn ringing(&self) -> Option<CallId> {
        let rings = |c: &&view::CallView| c.incoming && c.state == CallState::Ringing;
        self.view
            .selected_call()
            .filter(rings)
            .or_else(|| self.view.calls.iter().find(rings))
            .map(|c| c.id)
    }

    /// Calls `uri` through the account of outgoing calls, with the devices `call` would use
    /// (or those picked with `v`).
    async fn dial(&mut self, uri: &str) -> Result<(), String> {
        let account = self.config_account(self.account);
        let (source, sink) = self.open_devices(account)?;
        let options = CallOptions {
            source,
            sink,
            params: CallParams {
                account: self.account,
                ..CallParams::default()
            },
        };
        let call = self
            .phone
            .call(uri, options)
            .await
            .map_err(|e| e.to_string())?;
        // The call line and the history show whom the phone calls (`bob` typed is
        // `sip:bob@example.com`), as the phone's core reads what was typed.
        let domain = account
            .or_else(|| (self.config.accounts.len() == 1).then(|| &self.config.accounts[0]))
            .map(|a| a.aor.host.to_string());
        let peer = tincan::phone::call::request_uri(uri, domain.as_deref())
            .map_or_else(|_| uri.to_owned(), |u| u.to_string());
        self.view.add_outgoing(call, &peer, self.account);
        let account = self.account_name(self.account);
        self.started.push((
            call,
            Started {
                direction: Direction::Outgoing,
                peer,
                account,
                unix_ms: crate::cmd::history::unix_ms_now(),
            },
        ));
        Ok(())
    }

    /// Answers the ringing call, holding a call in progress first (call waiting).
    async fn answer(&mut self) -> Result<(), String> {
        let Some(call) = self.ringing() else {
            return Ok(());
        };
        let talking: Vec<CallId> = self
            .view
            .calls
            .iter()
            .filter(|c| c.id != call && c.state == CallState::Talking)
            .map(|c| c.id)
            .collect();
        for other in talking {
            self.phone.hold(other).await.map_err(|e| e.to_string())?;
        }
        let account = self
            .view
            .calls
            .iter()
            .find(|c| c.id == call)
            .and_then(|c| self.config_account(c.account));
        // The ring stops before the call's own devices open (the ring device may be one).
        self.ringer.answering(call);
        self.update_ringer();
        let (source, sink) = self.open_devices(account)?;
        self.phone
            .accept(call, source, sink)
            .await
            .map_err(|e| e.to_string())?;
        self.view.selected = Some(call);
        Ok(())
    }

    /// An account's `auto_answer = true`: its incoming call is answered at once, unless
    /// another call is up (then it rings beside it: call waiting).
    async fn auto_answer(&mut self, ev: &tincan::phone::PhoneEvent) {
        let tincan::phone::PhoneEvent::Incoming(incoming) = ev else {
            return;
        };
        let auto = self
            .config_account(incoming.account)
            .is_some_and(|a| a.auto_answer);
        let busy = self.view.calls.iter().any(|c| c.id != incoming.call);
        if !auto || busy {
            return;
        }
        self.view.selected = Some(incoming.call);
        if let Err(e) = self.answer().await {
            self.view.status = Some(e);
        }
    }

    /// `c`: splits the conference, or joins the selected call with the other call up (a held
    /// one is resumed); the selected call keeps the person's devices.
    async fn toggle_conference(&mut self) -> Result<(), String> {
        if let Some((a, _)) = self.view.conference {
            return self.phone.split(a).await.map_err(|e| e.to_string());
        }
        let up = |c: &&view::CallView| {
            matches!(
                c.state,
                CallState::Talking | CallState::OnHold | CallState::HeldByPeer
            )
        };
        let Some(selected) = self.view.selected_call().filter(up).map(|c| c.id) else {
            self.view.status = Some("a conference needs two calls up".into());
            return Ok(());
        };
        let Some(other) = self
            .view
            .calls
            .iter()
            .filter(up)
            .map(|c| c.id)
            .find(|c| *c != selected)
        else {
            self.view.status = Some("a conference needs two calls up".into());
            return Ok(());
        };
        self.phone
            .conference(selected, other)
            .await
            .map_err(|e| e.to_string())
    }

    /// `T`: asks the peer of the other call up (usually the held one) to call the peer of the
    /// selected call (the consultation) with an INVITE that replaces it; both calls end when
    /// it worked.
    async fn attended_transfer(&mut self) -> Result<(), String> {
        let Some((selected, other)) = self.view.transfer_pair() else {
            self.view.status = Some("an attended transfer needs two calls up".into());
            return Ok(());
        };
        let name = |id| {
            self.view
                .calls
                .iter()
                .find(|c| c.id == id)
                .map_or_else(String::new, |c| c.peer.clone())
        };
        let (to, whom) = (name(selected), name(other));
        self.phone
            .transfer_attended(other, selected)
            .await
            .map_err(|e| e.to_string())?;
        self.view.status = Some(format!("transferring {whom} to {to} (attended)..."));
        Ok(())
    }

    /// Transfers `call` to `uri` (blind: a REFER; the progress comes as events).
    async fn transfer(&mut self, call: CallId, uri: &str) -> Result<(), String> {
        self.phone
            .transfer(call, uri)
            .await
            .map_err(|e| e.to_string())?;
        self.view.status = Some(format!("transferring to {uri}..."));
        Ok(())
    }

    /// A call the phone placed or answered by itself (the target of a transfer we accepted,
    /// a call that replaced one of ours) waits for its devices: they are opened as for a
    /// call answered here, and it goes into the history.
    async fn attach_if_new(&mut self, ev: &tincan::phone::PhoneEvent) {
        use tincan::phone::{CallEvent, PhoneEvent};
        let PhoneEvent::Call { call, event } = ev else {
            return;
        };
        let (new, direction) = match event {
            CallEvent::TransferStarted { new_call } => (*new_call, Direction::Outgoing),
            CallEvent::Replaced { by } => (*by, Direction::Incoming),
            _ => return,
        };
        let account = self
            .started
            .iter()
            .find(|(c, _)| c == call)
            .map(|(_, s)| s.account.clone());
        let peer = self
            .view
            .calls
            .iter()
            .find(|c| c.id == new)
            .map(|c| c.peer.clone())
            .unwrap_or_default();
        self.started.push((
            new,
            Started {
                direction,
                peer,
                account: account.flatten(),
                unix_ms: crate::cmd::history::unix_ms_now(),
            },
        ));
        match self.open_devices(self.config_account(self.account)) {
            Ok((source, sink)) => self.phone.attach_devices(new, source, sink).await,
            Err(e) => {
                // The call goes on without audio rather than never starting its media.
                self.view.status = Some(format!("no audio for the new call: {e}"));
                self.phone
                    .attach_devices(
                        new,
                        Box::new(tincan_media::device::NullSource),
                        Box::new(tincan_media::device::NullSink::default()),
                    )
                    .await;
            }
        }
    }

    /// The microphone and speaker of a call through `account`: the devices `call` would use,
    /// or those picked with `v`.
    fn open_devices(&mut self, account: Option<&Account>) -> Result<Devices, String> {
        let names = self.chosen_devices(DeviceNames::of(self.common, self.config, account));
        let opened = devices(self.common, 1, &names);
        // Opening the devices may have written to the terminal (a missing microphone).
        self.repaint = !self.common.no_audio;
        opened
    }

    /// Hangs up every call (quit, Ctrl-C, SIGTERM).
    async fn hang_up_all(&mut self) {
        for c in &self.view.calls {
            let _ = if c.incoming && c.state == CallState::Ringing {
                self.phone.reject(c.id, 486).await
            } else {
                self.phone.hangup(c.id).await
            };
        }
    }
}

impl<'a> Screen<'a> {
    /// The config's entry of the phone's account `id` (the phone adds the config's accounts
    /// in order).
    fn config_account(&self, id: Option<tincan::phone::AccountId>) -> Option<&'a Account> {
        let i = self.phone.accounts().iter().position(|a| Some(*a) == id)?;
        self.config.accounts.get(i)
    }
}

/// What the phone does beyond the calls: history, panes, completion.
impl Screen<'_> {
    /// The config name of the account `id`.
    fn account_name(&self, id: Option<tincan::phone::AccountId>) -> Option<String> {
        self.config_account(id).map(|a| a.name.clone())
    }

    /// Asks the phone for `account`'s registrars and shows them; whether anything changed.
    async fn refresh_registrars(&mut self, account: tincan::phone::AccountId) -> bool {
        let Ok(states) = self.phone.registrar_health(account).await else {
            return false;
        };
        let health = states
            .into_iter()
            .map(|r| view::RegistrarHealth {
                target: format!("{}:{}", r.target.transport.as_str(), r.target.addr),
                up: matches!(r.health, tincan_sip::resolve::TargetStatus::Up),
                bound: r.bound,
            })
            .collect();
        self.view.set_registrars(account, health)
    }

    /// The devices picked with `v`, over `names`.
    fn chosen_devices(&self, mut names: DeviceNames) -> DeviceNames {
        let picked = &self.view.panes.devices;
        if let Some(input) = &picked.chosen_input {
            names.input = Some(input.clone());
        }
        if let Some(output) = &picked.chosen_output {
            names.output = Some(output.clone());
        }
        names
    }

    /// Notes an incoming call's start, and writes an ended call to the history (a failure
    /// is said on the status line once the view has taken the event in, and the phone goes on).
    fn note_for_history(&mut self, ev: &tincan::phone::PhoneEvent) -> Option<String> {
        use tincan::phone::{CallEvent, MessageEvent, PhoneEvent};
        match ev {
            PhoneEvent::Message(MessageEvent::Received(message)) => {
                let account = self.account_name(message.account);
                let record = crate::cmd::message::received_record(message, account);
                // After the status line the view's event gave it.
                self.view.apply(ev);
                self.view.message_received(&record);
                let history = self.history.as_mut()?;
                if let Err(e) = history.record_message(&record) {
                    return Some(format!("the message is not in the history: {e}"));
                }
            }
            PhoneEvent::Message(
                report @ (MessageEvent::Delivered { message, .. }
                | MessageEvent::Failed { message, .. }),
            ) => {
                let i = self.sent_messages.iter().position(|(m, _)| m == message)?;
                let (_, row) = self.sent_messages.swap_remove(i);
                let (delivery, status, reason) = match report {
                    MessageEvent::Delivered { status, .. } => {
                        (tincan::history::Delivery::Delivered, Some(*status), None)
                    }
                    MessageEvent::Failed { status, reason, .. } => (
                        tincan::history::Delivery::Failed,
                        *status,
                        Some(reason.as_str()),
                    ),
                    _ => return None,
                };
                let history = self.history.as_mut()?;
                if let Err(e) = history.set_delivery(row, delivery, status, reason) {
                    return Some(format!("the delivery is not in the history: {e}"));
                }
            }
            PhoneEvent::Incoming(incoming) => {
                let account = self.account_name(incoming.account);
                self.started.push((
                    incoming.call,
                    Started {
                        direction: Direction::Incoming,
                        peer: incoming.from.clone(),
                        account,
                        unix_ms: crate::cmd::history::unix_ms_now(),
                    },
                ));
            }
            PhoneEvent::Call {
                call,
                event: CallEvent::Ended(end),
            } => {
                let i = self.started.iter().position(|(c, _)| c == call)?;
                let (_, started) = self.started.swap_remove(i);
                let history = self.history.as_mut()?;
                let record = tincan::history::CallRecord::from_end(
                    started.direction,
                    &started.peer,
                    started.account,
                    started.unix_ms,
                    end,
                );
                if let Err(e) = history.record_call(&record) {
                    return Some(format!("the call is not in the history: {e}"));
                }
            }
            _ => {}
        }
        None
    }

    /// Fills the pane just opened: the history's last calls and contacts, or the devices.
    fn fill_pane(&mut self, kind: PaneKind) {
        match kind {
            PaneKind::Recent => {
                let recent = &mut self.view.panes.recent;
                recent.selected = 0;
                recent.error = None;
                match &self.history {
                    Some(h) => match h.recent(50).and_then(|calls| Ok((calls, h.contacts()?))) {
                        Ok((calls, contacts)) => {
                            recent.calls = calls;
                            recent.contacts = contacts;
                        }
                        Err(e) => recent.error = Some(e.to_string()),
                    },
                    None if self.common.no_history => {
                        recent.error = Some("--no-history".into());
                    }
                    None => recent.error = Some("the history could not be opened".into()),
                }
            }
            PaneKind::Devices => {
                list_devices(&mut self.view.panes.devices);
                // The audio system may have written to the terminal while listing.
                self.repaint = true;
            }
            PaneKind::SipLog => {}
        }
    }

    /// Tab in the dial prompt: the first candidate from contacts and history, then the next.
    fn complete(&mut self) {
        if let Some(c) = &mut self.view.panes.completion {
            c.advance();
            self.view.dial = Some(c.uri().to_owned());
            return;
        }
        let prefix = self.view.dial.clone().unwrap_or_default();
        let Some(history) = &self.history else {
            self.view.status = Some("no completion: no call history".into());
            return;
        };
        match history.complete(prefix.trim()) {
            Ok(candidates) => match CompletionState::new(prefix.trim(), candidates) {
                Some(c) => {
                    self.view.dial = Some(c.uri().to_owned());
                    self.view.panes.completion = Some(c);
                }
                None => {
                    self.view.status = Some(format!(
                        "nothing in contacts or history starts with {:?}",
                        prefix.trim()
                    ))
                }
            },
            Err(e) => self.view.status = Some(format!("no completion: {e}")),
        }
    }
}

/// Lists the audio devices into the chooser.
#[cfg(feature = "cpal")]
fn list_devices(pane: &mut panes::DevicePane) {
    pane.selected = 0;
    match tincan_media::device::list_devices() {
        Ok(list) => {
            pane.error = None;
            pane.inputs = list
                .iter()
                .filter(|d| d.input)
                .map(|d| panes::DeviceEntry {
                    name: d.name.clone(),
                    default: d.default_input,
                })
                .collect();
            pane.outputs = list
                .iter()
                .filter(|d| d.output)
                .map(|d| panes::DeviceEntry {
                    name: d.name.clone(),
                    default: d.default_output,
                })
                .collect();
        }
        Err(e) => pane.error = Some(e.to_string()),
    }
}

/// This build has no audio devices.
#[cfg(not(feature = "cpal"))]
fn list_devices(pane: &mut panes::DevicePane) {
    pane.error = Some("this tincan is built without audio devices (feature `cpal`)".into());
}

/// How long quitting waits for the calls it hung up to end, so that they reach the history.
const QUIT_WAIT_FOR_ENDS: Duration = Duration::from_secs(4);

impl Screen<'_> {
    /// After [`hang_up_all`](Self::hang_up_all) (quit, Ctrl-C, SIGTERM): takes in the phone's
    /// events until every call in progress has ended, at most [`QUIT_WAIT_FOR_ENDS`], so that
    /// the calls ended by quitting are written to the history like the others.
    async fn record_the_hung_up_calls(&mut self) {
        if self.history.is_none() {
            return;
        }
        let deadline = tokio::time::Instant::now() + QUIT_WAIT_FOR_ENDS;
        while !self.started.is_empty() {
            match tokio::time::timeout_at(deadline, self.phone.next_event()).await {
                Ok(Some(ev)) => {
                    let _ = self.note_for_history(&ev);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
}
