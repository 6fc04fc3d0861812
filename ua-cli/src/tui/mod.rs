//! The full-screen phone: `tincan` with no subcommand (or `tincan phone`) on a terminal.
//!
//! Three layers: [`view`] is the pure view model ([`view::PhoneView`], updated from the
//! phone's events, and [`view::render`]); [`input`] maps keys to [`input::Action`]s; this
//! module is the thin loop that selects over keys, the phone's events, a 1 s tick and SIGTERM,
//! carries the actions out on the [`Phone`] and redraws only after one of those.

pub mod input;
pub mod ring;
pub mod view;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crossterm::event::{Event, KeyEventKind};
use tincan::config::Config;
use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{CallId, CallParams};
use tokio::sync::mpsc;

use crate::cmd::call::{Common, DeviceNames, Setup, devices, runtime, setup};
use input::{Action, Keymap};
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

/// Runs `tincan phone`: builds the phone as `tincan listen` does (the `--account` registers),
/// then takes over the terminal until `q`, Ctrl-C or SIGTERM.
pub fn run(args: &PhoneArgs, config_path: Option<&Path>) -> ExitCode {
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
    rt.block_on(phone(args, config))
}

async fn phone(args: &PhoneArgs, config: Config) -> ExitCode {
    let Setup { phone, account } = match setup("phone", &args.common, &config).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut view = PhoneView::default();
    for (id, a) in phone.accounts().iter().zip(&config.accounts) {
        let registration = if Some(*id) == account {
            Registration::Registered
        } else {
            Registration::Idle
        };
        view.add_account(*id, &a.name, registration);
    }
    let mut screen = Screen {
        phone,
        view,
        account,
        common: &args.common,
        config: &config,
        ringer: ring::Ringer::default(),
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

/// The phone, what the screen shows and what calls need.
struct Screen<'a> {
    phone: Phone,
    view: PhoneView,
    /// The registered account (`--account`): outgoing calls go through it.
    account: Option<tincan::phone::AccountId>,
    common: &'a Common,
    config: &'a Config,
    /// The ring of incoming calls (tui/ring.rs).
    ringer: ring::Ringer,
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
        terminal.draw(|f| view::render(&self.view, f))?;
        loop {
            tokio::select! {
                ev = keys.recv() => match ev {
                    Some(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                        let Some(action) = Keymap.action(key, self.view.dial.is_some()) else {
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
                        self.view.apply(&ev);
                        self.ring_on_event(&ev).await;
                    }
                    None => return Ok(()),
                },
                _ = tick.tick() => {
                    if self.view.calls.is_empty() {
                        continue;
                    }
                    self.view.tick(Duration::from_secs(1));
                }
                _ = term.recv() => return Ok(()),
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
                self.view.dial.get_or_insert_default().push(c);
                Ok(())
            }
            Action::DialBackspace => {
                if let Some(d) = &mut self.view.dial {
                    d.pop();
                }
                Ok(())
            }
            Action::DialCancel => {
                self.view.dial = None;
                Ok(())
            }
            Action::DialSubmit => {
                let uri = self.view.dial.take().unwrap_or_default();
                let uri = uri.trim();
                if uri.is_empty() {
                    return;
                }
                self.dial(uri).await
            }
            Action::Answer => self.answer().await,
            Action::Decline(status) => match self.ringing() {
                Some(call) => self
                    .phone
                    .reject(call, status)
                    .await
                    .map_err(|e| e.to_string()),
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
        };
        if let Err(e) = result {
            self.view.status = Some(e);
        }
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

    /// Calls `uri` through the registered account, with the devices `call` would use.
    async fn dial(&mut self, uri: &str) -> Result<(), String> {
        let account = self
            .account
            .and_then(|id| self.phone.accounts().iter().position(|a| *a == id))
            .and_then(|i| self.config.accounts.get(i));
        let names = DeviceNames::of(self.common, self.config, account);
        let (source, sink) = devices(self.common, 1, &names)?;
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
        self.view.add_outgoing(call, uri, self.account);
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
            .and_then(|c| c.account)
            .and_then(|id| self.phone.accounts().iter().position(|a| *a == id))
            .and_then(|i| self.config.accounts.get(i));
        // The ring stops before the call's own devices open (the ring device may be one).
        self.ringer.answering(call);
        self.update_ringer();
        let names = DeviceNames::of(self.common, self.config, account);
        let (source, sink) = devices(self.common, 1, &names)?;
        self.phone
            .accept(call, source, sink)
            .await
            .map_err(|e| e.to_string())?;
        self.view.selected = Some(call);
        Ok(())
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
