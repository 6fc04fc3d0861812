//! The keyboard: which key does what ([`Keymap`]), as a pure function of the key and of what
//! the screen is doing (dialling or not).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::panes::PaneKind;

/// What a person asked for with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open the dial prompt.
    StartDial,
    /// A character typed into the dial prompt.
    DialChar(char),
    /// Delete the last character of the dial prompt.
    DialBackspace,
    /// Call what the dial prompt holds.
    DialSubmit,
    /// Close the dial prompt without calling.
    DialCancel,
    /// Answer the selected ringing call.
    Answer,
    /// Decline the selected ringing call with this status (486 busy, 603 decline).
    Decline(u16),
    /// Hang up the selected call.
    Hangup,
    /// Hold the selected call, or resume it when it is on hold.
    ToggleHold,
    /// Send a DTMF digit on the selected call.
    Dtmf(char),
    /// Select the next call.
    NextCall,
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Hang up every call and leave.
    Quit,
    /// Silence the ringer for the calls ringing now.
    Silence,
    /// Complete what the dial prompt holds from contacts and history (Tab), or put the next
    /// candidate in.
    DialComplete,
    /// Open the pane, or close it when it is open (`r` recent calls, `l` SIP log, `v`
    /// devices).
    TogglePane(PaneKind),
    /// Move the open pane's selection by this many rows (arrows, Page Up/Down).
    PaneMove(isize),
    /// Enter on the open pane: call the entry, pick the device.
    PanePick,
    /// Close the open pane (Esc).
    PaneClose,
    /// Mute the selected call's microphone, or unmute it when it is muted.
    ToggleMute,
    /// Open the prompt that transfers the selected call (blind transfer: Enter sends it).
    StartTransfer,
    /// Accept (`true`, `y`) or refuse (`false`, `n`) the transfer the peer asked for.
    AnswerTransfer(bool),
    /// Join the selected call and the other call up in a three-way conference, or split the
    /// conference (`c`).
    ToggleConference,
    /// Attended transfer (`T`): put the peer of the other call up through to the peer of the
    /// selected call (a REFER with the selected call's dialog in `Replaces`).
    AttendedTransfer,
    /// Open the conversation (`M`) with the peer of the newest unread message, of the
    /// contact selected in the recent pane, of the selected call, or of the last message;
    /// with none of them, ask whom to write to.
    OpenConversation,
    /// A character typed into the open conversation's line.
    ConversationChar(char),
    /// Delete the last character of the conversation's line.
    ConversationBackspace,
    /// Send what the conversation's line holds.
    ConversationSend,
    /// Scroll the conversation by this many messages (negative: back to older ones).
    ConversationScroll(isize),
    /// Switch to the conversation of the newest unread message (Tab).
    ConversationUnread,
    /// Close the conversation (Esc).
    ConversationClose,
}

/// Maps keys to [`Action`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keymap;

impl Keymap {
    /// The action of `key`; `dialling`: the dial prompt is open (keys type into it).
    pub fn action(&self, key: KeyEvent, dialling: bool) -> Option<Action> {
        // Ctrl-C is a key in raw mode: quit, hanging the calls up.
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return matches!(key.code, KeyCode::Char('c') | KeyCode::Char('d'))
                .then_some(Action::Quit);
        }
        if dialling {
            return match key.code {
                KeyCode::Enter => Some(Action::DialSubmit),
                KeyCode::Esc => Some(Action::DialCancel),
                KeyCode::Backspace => Some(Action::DialBackspace),
                KeyCode::Tab => Some(Action::DialComplete),
                KeyCode::Char(c) => Some(Action::DialChar(c)),
                _ => None,
            };
        }
        match key.code {
            KeyCode::Char('d') => Some(Action::StartDial),
            KeyCode::Char('a') | KeyCode::Enter => Some(Action::Answer),
            KeyCode::Char('x') => Some(Action::Decline(486)),
            KeyCode::Char('X') => Some(Action::Decline(603)),
            KeyCode::Char('h') => Some(Action::Hangup),
            KeyCode::Char('o') => Some(Action::ToggleHold),
            KeyCode::Char(c @ ('0'..='9' | '*' | '#')) => Some(Action::Dtmf(c)),
            KeyCode::Tab => Some(Action::NextCall),
            KeyCode::Char('?') => Some(Action::ToggleHelp),
            KeyCode::Char('q') => Some(Action::Quit),
            KeyCode::Char('s') => Some(Action::Silence),
            KeyCode::Char('r') => Some(Action::TogglePane(PaneKind::Recent)),
            KeyCode::Char('l') => Some(Action::TogglePane(PaneKind::SipLog)),
            KeyCode::Char('v') => Some(Action::TogglePane(PaneKind::Devices)),
            KeyCode::Char('m') => Some(Action::ToggleMute),
            KeyCode::Char('t') => Some(Action::StartTransfer),
            KeyCode::Char('y') => Some(Action::AnswerTransfer(true)),
            KeyCode::Char('n') => Some(Action::AnswerTransfer(false)),
            KeyCode::Char('c') => Some(Action::ToggleConference),
            KeyCode::Char('T') => Some(Action::AttendedTransfer),
            KeyCode::Char('M') => Some(Action::OpenConversation),
            _ => None,
        }
    }

    /// The action of `key` while a pane is open and the dial prompt is not: arrows, Enter
    /// and Esc go to the pane; every other key does what it does without the pane.
    pub fn pane_action(&self, key: KeyEvent) -> Option<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return self.action(key, false);
        }
        match key.code {
            KeyCode::Up => Some(Action::PaneMove(-1)),
            KeyCode::Down => Some(Action::PaneMove(1)),
            KeyCode::PageUp => Some(Action::PaneMove(-10)),
            KeyCode::PageDown => Some(Action::PaneMove(10)),
            KeyCode::Enter => Some(Action::PanePick),
            KeyCode::Esc => Some(Action::PaneClose),
            _ => self.action(key, false),
        }
    }

    /// The action of `key` while the conversation is open and the dial prompt is not: the
    /// keys type the message; Enter sends it, the arrows and Page Up/Down scroll, Tab goes to
    /// the newest unread conversation, Esc closes.
    pub fn conversation_action(&self, key: KeyEvent) -> Option<Action> {
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return self.action(key, false);
        }
        match key.code {
            KeyCode::Enter => Some(Action::ConversationSend),
            KeyCode::Esc => Some(Action::ConversationClose),
            KeyCode::Backspace => Some(Action::ConversationBackspace),
            KeyCode::Tab => Some(Action::ConversationUnread),
            KeyCode::Up => Some(Action::ConversationScroll(-1)),
            KeyCode::Down => Some(Action::ConversationScroll(1)),
            KeyCode::PageUp => Some(Action::ConversationScroll(-10)),
            KeyCode::PageDown => Some(Action::ConversationScroll(10)),
            KeyCode::Char(c) => Some(Action::ConversationChar(c)),
            _ => None,
        }
    }
}

/// The keys, one line, for the status bar.
pub const KEY_HELP: &str = "d dial  a answer  x/X decline  s silence  h hang up  o hold  0-9*# dtmf  Tab next  ? help  q quit  m mute  t transfer  c conference  r recent  l log  v devices  M message";

/// The keys, one per line, for the help overlay.
pub const HELP_LINES: &[&str] = &[
    "d        dial a URI or number (Enter calls, Esc cancels)",
    "a Enter  answer the ringing call (a call in progress is held)",
    "x        decline the ringing call: 486 Busy Here",
    "X        decline the ringing call: 603 Decline",
    "s        silence the ringer (the calls ringing now)",
    "h        hang up the selected call",
    "o        hold / resume the selected call",
    "m        mute / unmute the selected call's microphone",
    "0-9 * #  send DTMF on the selected call",
    "t        transfer the selected call (type the URI, Enter)",
    "y n      accept / refuse the transfer the peer asks for",
    "c        three-way conference of the two calls up / split it",
    "T        attended transfer: the other call's peer to the selected one's",
    "Tab      select the next call",
    "Tab      in the dial prompt: complete from contacts and history",
    "r        recent calls and contacts (Enter calls)",
    "l        SIP log (Up/Down select a message)",
    "v        input and output device for the next calls",
    "M        messages with a peer (the newest unread, r's pick, the call's)",
    "?        show / hide this help",
    "q Ctrl-C hang up every call and quit",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions() {
        let k = Keymap;
        assert_eq!(
            k.action(key(KeyCode::Char('d')), false),
            Some(Action::StartDial)
        );
        assert_eq!(
            k.action(key(KeyCode::Char('a')), false),
            Some(Action::Answer)
        );
        assert_eq!(k.action(key(KeyCode::Enter), false), Some(Action::Answer));
        assert_eq!(
            k.action(key(KeyCode::Char('x')), false),
            Some(Action::Decline(486))
        );
        assert_eq!(
            k.action(key(KeyCode::Char('X')), false),
            Some(Action::Decline(603))
        );
        assert_eq!(
            k.action(key(KeyCode::Char('h')), false),
            Some(Action::Hangup)
        );
        assert_eq!(
            k.action(key(KeyCode::Char('o')), false),
            Some(Action::ToggleHold)
        );
        assert_eq!(
            k.action(key(KeyCode::Char('5')), false),
            Some(Action::Dtmf('5'))
        );
        assert_eq!(
            k.action(key(KeyCode::Char('#')), false),
            Some(Action::Dtmf('#'))
        );
        assert_eq!(k.action(key(KeyCode::Tab), false), Some(Action::NextCall));
        assert_eq!(
            k.action(key(KeyCode::Char('?')), false),
            Some(Action::ToggleHelp)
        );
        assert_eq!(k.action(key(KeyCode::Char('q')), false), Some(Action::Quit));
        assert_eq!(
            k.action(key(KeyCode::Char('s')), false),
            Some(Action::Silence)
        );
        assert_eq!(
            k.action(key(KeyCode::Char('s')), true),
            Some(Action::DialChar('s'))
        );
        assert_eq!(
            k.action(key(KeyCode::Char('m')), false),
            Some(Action::ToggleMute)
        );
        assert_eq!(
            k.action(key(KeyCode::Char('t')), false),
            Some(Action::StartTransfer)
        );
        assert_eq!(
            k.action(key(KeyCode::Char('y')), false),
            Some(Action::AnswerTransfer(true))
        );
        assert_eq!(
            k.action(key(KeyCode::Char('n')), false),
            Some(Action::AnswerTransfer(false))
        );
        assert_eq!(
            k.action(key(KeyCode::Char('c')), false),
            Some(Action::ToggleConference)
        );
        assert_eq!(
            k.action(key(KeyCode::Char('T')), false),
            Some(Action::AttendedTransfer)
        );
        assert_eq!(
            k.action(key(KeyCode::Char('T')), true),
            Some(Action::DialChar('T'))
        );
        assert_eq!(
            k.action(key(KeyCode::Char('m')), true),
            Some(Action::DialChar('m'))
        );
        assert_eq!(k.action(key(KeyCode::Char('z')), false), None);
    }

    #[test]
    fn pane_keys_and_completion() {
        let k = Keymap;
        assert_eq!(
            k.action(key(KeyCode::Char('r')), false),
            Some(Action::TogglePane(PaneKind::Recent))
        );
        assert_eq!(
            k.action(key(KeyCode::Char('l')), false),
            Some(Action::TogglePane(PaneKind::SipLog))
        );
        assert_eq!(
            k.action(key(KeyCode::Char('v')), false),
            Some(Action::TogglePane(PaneKind::Devices))
        );
        assert_eq!(
            k.action(key(KeyCode::Tab), true),
            Some(Action::DialComplete)
        );
        assert_eq!(k.pane_action(key(KeyCode::Up)), Some(Action::PaneMove(-1)));
        assert_eq!(k.pane_action(key(KeyCode::Down)), Some(Action::PaneMove(1)));
        assert_eq!(k.pane_action(key(KeyCode::Enter)), Some(Action::PanePick));
        assert_eq!(k.pane_action(key(KeyCode::Esc)), Some(Action::PaneClose));
        // The call keys still work with a pane open.
        assert_eq!(k.pane_action(key(KeyCode::Char('h'))), Some(Action::Hangup));
        assert_eq!(
            k.pane_action(key(KeyCode::Char('r'))),
            Some(Action::TogglePane(PaneKind::Recent))
        );
    }

    #[test]
    fn the_conversation_takes_the_keys_it_needs() {
        let k = Keymap;
        assert_eq!(
            k.action(key(KeyCode::Char('M')), false),
            Some(Action::OpenConversation)
        );
        assert_eq!(
            k.pane_action(key(KeyCode::Char('M'))),
            Some(Action::OpenConversation)
        );
        assert_eq!(
            k.conversation_action(key(KeyCode::Char('h'))),
            Some(Action::ConversationChar('h'))
        );
        assert_eq!(
            k.conversation_action(key(KeyCode::Enter)),
            Some(Action::ConversationSend)
        );
        assert_eq!(
            k.conversation_action(key(KeyCode::Esc)),
            Some(Action::ConversationClose)
        );
        assert_eq!(
            k.conversation_action(key(KeyCode::Tab)),
            Some(Action::ConversationUnread)
        );
        assert_eq!(
            k.conversation_action(key(KeyCode::PageUp)),
            Some(Action::ConversationScroll(-10))
        );
        assert_eq!(
            k.conversation_action(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
    }

    #[test]
    fn ctrl_c_quits_even_while_dialling() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(Keymap.action(ctrl_c, false), Some(Action::Quit));
        assert_eq!(Keymap.action(ctrl_c, true), Some(Action::Quit));
    }

    #[test]
    fn the_dial_prompt_takes_every_character() {
        let k = Keymap;
        assert_eq!(
            k.action(key(KeyCode::Char('q')), true),
            Some(Action::DialChar('q'))
        );
        assert_eq!(
            k.action(key(KeyCode::Char('h')), true),
            Some(Action::DialChar('h'))
        );
        assert_eq!(
            k.action(key(KeyCode::Enter), true),
            Some(Action::DialSubmit)
        );
        assert_eq!(k.action(key(KeyCode::Esc), true), Some(Action::DialCancel));
        assert_eq!(
            k.action(key(KeyCode::Backspace), true),
            Some(Action::DialBackspace)
        );
    }
}
