//! The selected call's audio on the screen: whether its microphone is muted, and two small
//! level meters (`in ▮▮▮▮▮▯▯▯▯▯ -23 dB`, `out ...`) from the phone's
//! [`CallEvent::Levels`] (five a second while the call's media runs; nothing while idle, so
//! an idle phone does not redraw).
//!
//! The meters show the RMS level over the last 200 ms in dB relative to full scale, from
//! [`METER_FLOOR_DB`] (an empty bar) to 0 dBFS (a full one).

use ratatui::text::Line;
use tincan::phone::{CallEvent, CallId, LEVEL_FLOOR_DBFS, Levels, PhoneEvent};

use super::view::PhoneView;

/// Cells of a bar meter.
pub const METER_CELLS: usize = 10;

/// The level of an empty bar: quieter than this shows nothing (a quiet room is around -60
/// dBFS, speech around -30 to -15).
pub const METER_FLOOR_DB: f32 = -60.0;

/// What the screen knows of a call's audio.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CallAudio {
    /// The microphone is muted (the phone said [`CallEvent::Muted`]).
    pub muted: bool,
    /// The latest levels, once reported.
    pub levels: Option<Levels>,
}

impl PhoneView {
    /// Takes in what an event says of a call's audio (mute, levels; an ended call's is
    /// forgotten). [`PhoneView::apply`] calls it.
    pub fn apply_audio(&mut self, event: &PhoneEvent) {
        let PhoneEvent::Call { call, event } = event else {
            return;
        };
        match event {
            CallEvent::Muted { muted } => self.audio.entry(*call).or_default().muted = *muted,
            CallEvent::Levels(levels) => {
                self.audio.entry(*call).or_default().levels = Some(*levels);
            }
            CallEvent::Ended(_) => {
                self.audio.remove(call);
            }
            _ => {}
        }
    }

    /// Whether the call's microphone is muted.
    pub fn is_muted(&self, call: CallId) -> bool {
        self.audio.get(&call).is_some_and(|a| a.muted)
    }
}

/// A bar of [`METER_CELLS`] cells for `db` (dBFS).
pub fn bar(db: f32) -> String {
    let share = ((db - METER_FLOOR_DB) / -METER_FLOOR_DB).clamp(0.0, 1.0);
    let full = (share * METER_CELLS as f32).round() as usize;
    let mut s = String::with_capacity(METER_CELLS * 3);
    for i in 0..METER_CELLS {
        s.push(if i < full { '▮' } else { '▯' });
    }
    s
}

/// One meter line: `in  ▮▮▮▮▯▯▯▯▯▯ -23 dB` (`-inf dB` for silence).
fn meter(label: &str, db: f32) -> String {
    let value = if db <= LEVEL_FLOOR_DBFS {
        "-inf".to_owned()
    } else {
        format!("{db:.0}")
    };
    format!("{label:<4}{} {value} dB", bar(db))
}

/// The two meter lines of the selected call (with `muted` beside the input while muted);
/// nothing while no call is selected or its media has not reported levels yet.
pub fn meter_lines(view: &PhoneView) -> Vec<Line<'static>> {
    let Some(call) = view.selected_call() else {
        return Vec::new();
    };
    let Some(audio) = view.audio.get(&call.id) else {
        return Vec::new();
    };
    let Some(levels) = audio.levels else {
        return if audio.muted {
            vec![Line::from("in  muted")]
        } else {
            Vec::new()
        };
    };
    let mut input = meter("in", levels.input_rms_dbfs);
    if audio.muted {
        input.push_str("  muted");
    }
    vec![
        Line::from(input),
        Line::from(meter("out", levels.output_rms_dbfs)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_run_from_the_floor_to_full_scale() {
        assert_eq!(bar(-96.0), "▯▯▯▯▯▯▯▯▯▯");
        assert_eq!(bar(-60.0), "▯▯▯▯▯▯▯▯▯▯");
        assert_eq!(bar(-30.0), "▮▮▮▮▮▯▯▯▯▯");
        assert_eq!(bar(0.0), "▮▮▮▮▮▮▮▮▮▮");
        assert_eq!(bar(f32::NAN).chars().count(), METER_CELLS);
        assert_eq!(meter("out", -96.0), "out ▯▯▯▯▯▯▯▯▯▯ -inf dB");
        assert_eq!(meter("in", -23.4), "in  ▮▮▮▮▮▮▯▯▯▯ -23 dB");
    }
}

#[cfg(test)]
mod screen_tests {
    use std::time::Duration;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use tincan::phone::{CallEnd, EndReason, Quality};
    use tincan_media::codec::CodecKind;

    use super::*;
    use crate::tui::view::render;

    fn screen(view: &PhoneView) -> Vec<String> {
        let mut terminal =
            Terminal::new(TestBackend::new(80, 24)).expect("a test backend cannot fail");
        terminal
            .draw(|f| render(view, f))
            .expect("a test backend cannot fail");
        let buffer = terminal.backend().buffer();
        (0..24)
            .map(|y| (0..80).map(|x| buffer[(x, y)].symbol()).collect())
            .collect()
    }

    fn row_with<'a>(rows: &'a [String], text: &str) -> Option<&'a str> {
        rows.iter().find(|r| r.contains(text)).map(String::as_str)
    }

    fn event(call: u64, event: CallEvent) -> PhoneEvent {
        PhoneEvent::Call {
            call: CallId(call),
            event,
        }
    }

    fn levels(input: f32, output: f32) -> CallEvent {
        CallEvent::Levels(Levels {
            input_peak_dbfs: input + 3.0,
            input_rms_dbfs: input,
            output_peak_dbfs: output + 3.0,
            output_rms_dbfs: output,
        })
    }

    #[test]
    fn the_selected_call_shows_muted_and_its_meters() {
        let mut view = PhoneView::default();
        view.add_outgoing(CallId(1), "sip:bob@example.test", None);
        view.apply(&event(
            1,
            CallEvent::Answered {
                setup: Duration::from_millis(80),
                codec: CodecKind::Opus,
                srtp: false,
                remote_rtp: "127.0.0.1:40000".parse().unwrap(),
            },
        ));
        // No levels yet: no meters.
        let rows = screen(&view);
        assert!(row_with(&rows, "in  ").is_none(), "{}", rows.join("\n"));
        view.apply(&event(1, levels(-23.0, -96.0)));
        let rows = screen(&view);
        let input = row_with(&rows, "in  ▮").expect("an input meter");
        assert!(input.contains("in  ▮▮▮▮▮▮▯▯▯▯ -23 dB"), "{input}");
        assert!(!input.contains("muted"), "{input}");
        let output = row_with(&rows, "out ▯").expect("an output meter");
        assert!(output.contains("out ▯▯▯▯▯▯▯▯▯▯ -inf dB"), "{output}");
        // The quality lines stay.
        view.apply(&event(1, CallEvent::Quality(Quality::default())));
        assert!(row_with(&screen(&view), "MOS -").is_some());

        view.apply(&event(1, CallEvent::Muted { muted: true }));
        let rows = screen(&view);
        let call = row_with(&rows, "bob").expect("the call");
        assert!(call.contains("talking  0:00  opus  rtp  muted"), "{call}");
        assert!(row_with(&rows, "-23 dB  muted").is_some());
        view.apply(&event(1, CallEvent::Muted { muted: false }));
        let rows = screen(&view);
        assert!(!row_with(&rows, "bob").expect("the call").contains("muted"));
        // The end forgets it.
        view.apply(&event(1, CallEvent::Muted { muted: true }));
        view.apply(&event(
            1,
            CallEvent::Ended(CallEnd {
                reason: EndReason::LocalHangup,
                status: None,
                status_text: None,
                answered: true,
                duration: Duration::from_secs(3),
                codec: Some(CodecKind::Opus),
                quality: Quality::default(),
                tried: vec![],
                errors: vec![],
            }),
        ));
        assert!(view.audio.is_empty());
        assert!(row_with(&screen(&view), "in  ").is_none());
    }
}
