//! The ringer: while a call rings here, the ring tone plays on the ring device; `s` silences
//! it for the calls ringing now.
//!
//! [`Ringer`] decides from the [`PhoneView`] alone (the oldest incoming call still ringing
//! and not silenced rings; nothing else does) and plays through a
//! [`TonePlayer`](tincan_media::driver::player::TonePlayer) on the devices an opener gives
//! it: the ring tone (`[audio] ring_tone`, a WAV file played in a loop, else the built-in
//! chime [`Cadence::ring`]) on the ring device (the account's `ring_device`, else `[audio]
//! ring_device`, else the output device; see [`ring_sink`]). The phone loop calls
//! [`Screen::ring_on_event`] after each event of the phone and [`Screen::update_ringer`]
//! after each key.

use std::collections::HashSet;
use std::path::Path;

use tincan::phone::{AccountId, CallId, PhoneEvent};
use tincan_media::device::{AudioSink, AudioSource, WavSource};
use tincan_media::driver::player::TonePlayer;
use tincan_media::tones::{Cadence, CadenceSource};

use super::Screen;
use super::view::{CallState, CallView, PhoneView};
use crate::cmd::call::ring_sink;

/// What rings: the tone and the device it plays on.
pub type RingDevices = (Box<dyn AudioSource>, Box<dyn AudioSink>);

/// Rings while a call rings here.
#[derive(Debug, Default)]
pub struct Ringer {
    /// Calls that do not ring here any more: silenced with `s`, being answered, or whose
    /// ring device could not be opened.
    silenced: HashSet<CallId>,
    /// The ring playing.
    playing: Option<TonePlayer>,
}

impl Ringer {
    /// The call that should ring: the oldest incoming call still ringing and not silenced.
    fn wanted<'v>(&self, view: &'v PhoneView) -> Option<&'v CallView> {
        view.calls
            .iter()
            .find(|c| rings_here(c) && !self.silenced.contains(&c.id))
    }

    /// Starts or stops the ring after `view` changed. `open` gives the tone and the ring
    /// device for a call to an account (`Ok(None)`: nothing to ring on, as with
    /// `--no-audio`). Returns what to tell the person when the ring device cannot be
    /// opened (that call then rings silently; it is not tried again).
    pub fn update(
        &mut self,
        view: &PhoneView,
        open: impl FnOnce(Option<AccountId>) -> Result<Option<RingDevices>, String>,
    ) -> Option<String> {
        self.silenced
            .retain(|id| view.calls.iter().any(|c| c.id == *id));
        let wanted = self.wanted(view).map(|c| (c.id, c.account));
        match (wanted, self.playing.is_some()) {
            (None, true) => {
                // Dropping the player stops it; the device closes with it.
                self.playing = None;
                None
            }
            (Some((call, account)), false) => match open(account) {
                Ok(Some((tone, sink))) => {
                    self.playing = Some(TonePlayer::spawn(tone, sink));
                    None
                }
                Ok(None) => {
                    self.silenced.insert(call);
                    None
                }
                Err(e) => {
                    self.silenced.insert(call);
                    Some(format!("cannot ring: {e}"))
                }
            },
            _ => None,
        }
    }

    /// `s`: the calls ringing here now ring no more (a call arriving later rings). Returns
    /// how many there were.
    pub fn silence(&mut self, view: &PhoneView) -> usize {
        let ringing: Vec<CallId> = view
            .calls
            .iter()
            .filter(|c| rings_here(c))
            .map(|c| c.id)
            .collect();
        self.silenced.extend(&ringing);
        ringing.len()
    }

    /// The call is being answered: it rings no more (before its own devices open, which
    /// may be the ring device).
    pub fn answering(&mut self, call: CallId) {
        self.silenced.insert(call);
    }

    /// Whether the ring plays.
    #[cfg(test)]
    pub fn is_ringing(&self) -> bool {
        self.playing.is_some()
    }

    /// Stops the ring (leaving the phone).
    pub fn stop(&mut self) {
        self.playing = None;
    }
}

/// An incoming call that has not been answered.
fn rings_here(c: &CallView) -> bool {
    c.incoming && c.state == CallState::Ringing
}

/// The ring tone: `file` played in a loop, else (no file, or one that cannot be played:
/// the error is returned beside) the built-in chime.
pub fn ring_tone(file: Option<&Path>) -> (Box<dyn AudioSource>, Option<String>) {
    let built_in = || Box::new(CadenceSource::new(Cadence::ring()));
    match file.map(|f| (f, WavSource::open(f))) {
        None => (built_in(), None),
        Some((_, Ok(wav))) if !wav.is_empty() => (Box::new(wav.looped()), None),
        Some((f, Ok(_))) => (
            built_in(),
            Some(format!("the ring tone {} is empty", f.display())),
        ),
        Some((f, Err(e))) => (
            built_in(),
            Some(format!("cannot play the ring tone {}: {e}", f.display())),
        ),
    }
}

impl Screen<'_> {
    /// After an event of the phone: a new incoming call is told it rings here (180), and
    /// the ring starts or stops.
    pub(super) async fn ring_on_event(&mut self, event: &PhoneEvent) {
        if let PhoneEvent::Incoming(incoming) = event {
            let _ = self.phone.ring(incoming.call).await;
        }
        self.update_ringer();
    }

    /// Starts or stops the ring as the screen now stands.
    pub(super) fn update_ringer(&mut self) {
        let (common, config, phone) = (self.common, self.config, &self.phone);
        let open = |account: Option<AccountId>| {
            let account = account
                .and_then(|id| phone.accounts().iter().position(|a| *a == id))
                .and_then(|i| config.accounts.get(i));
            let Some(sink) = ring_sink(common, config, account)? else {
                return Ok(None);
            };
            // A tone file that cannot be played was reported when the phone opened.
            let (tone, _) = ring_tone(config.audio.ring_tone.as_deref());
            Ok(Some((tone, sink)))
        };
        if let Some(message) = self.ringer.update(&self.view, open) {
            self.view.status = Some(message);
        }
    }

    /// `s`: silences the ringing calls, and says so.
    pub(super) fn silence_ringer(&mut self) {
        let n = self.ringer.silence(&self.view);
        self.update_ringer();
        self.view.status = Some(match n {
            0 => "nothing is ringing".to_owned(),
            1 => "ringer silenced: a answers, x/X declines".to_owned(),
            n => format!("ringer silenced for {n} calls: a answers, x/X declines"),
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tincan::phone::{CallEvent, IncomingCall};
    use tincan_media::codec::CodecKind;
    use tincan_media::device::DeviceError;
    use tincan_media::tones::goertzel_power;

    use super::*;

    /// What a ring device was given, and whether it was let go.
    #[derive(Clone, Default)]
    struct Device {
        frames: Arc<Mutex<Vec<Vec<i16>>>>,
        dropped: Arc<AtomicBool>,
    }

    struct Capture(Device);

    impl AudioSink for Capture {
        fn write_frame(&mut self, frame: &[i16]) -> Result<(), DeviceError> {
            self.0.frames.lock().unwrap().push(frame.to_vec());
            Ok(())
        }
    }

    impl Drop for Capture {
        fn drop(&mut self) {
            self.0.dropped.store(true, Ordering::SeqCst);
        }
    }

    impl Device {
        fn opener(&self) -> impl FnOnce(Option<AccountId>) -> Result<Option<RingDevices>, String> {
            let d = self.clone();
            move |_| {
                let (tone, warning) = ring_tone(None);
                assert!(warning.is_none());
                Ok(Some((tone, Box::new(Capture(d)) as Box<dyn AudioSink>)))
            }
        }

        fn len(&self) -> usize {
            self.frames.lock().unwrap().len()
        }

        /// Waits (up to 20 s: a loaded machine) until `ok` holds.
        async fn wait(&self, ok: impl Fn(&Device) -> bool) {
            tokio::time::timeout(Duration::from_secs(20), async {
                while !ok(self) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
            .await
            .expect("the ring device got there in time");
        }
    }

    fn incoming(view: &mut PhoneView, n: u64) {
        view.apply(&PhoneEvent::Incoming(IncomingCall {
            call: CallId(n),
            call_id: format!("c{n}"),
            from: format!("<sip:caller{n}@example.test>;tag={n}"),
            to: "<sip:me@example.test>".into(),
            account: None,
        }));
    }

    fn answered(view: &mut PhoneView, n: u64) {
        view.apply(&PhoneEvent::Call {
            call: CallId(n),
            event: CallEvent::Answered {
                setup: Duration::from_secs(1),
                codec: CodecKind::Opus,
                srtp: false,
                remote_rtp: "127.0.0.1:4000".parse().unwrap(),
            },
        });
    }

    fn never(_: Option<AccountId>) -> Result<Option<RingDevices>, String> {
        panic!("no ring device should be opened")
    }

    #[tokio::test]
    async fn rings_the_chime_while_a_call_rings_here_and_stops_at_the_answer() {
        let mut view = PhoneView::default();
        let mut ringer = Ringer::default();
        let device = Device::default();
        assert_eq!(ringer.update(&view, never), None);
        incoming(&mut view, 1);
        assert_eq!(ringer.update(&view, device.opener()), None);
        assert!(ringer.is_ringing());
        // The first quarter second of the chime: its 880 Hz note.
        device.wait(|d| d.len() >= 10).await;
        let first: Vec<i16> = device.frames.lock().unwrap()[..10].concat();
        assert!(goertzel_power(&first, 880.0) > 50.0 * goertzel_power(&first, 660.0));
        // A second call rings beside it: the same ring goes on.
        incoming(&mut view, 2);
        assert_eq!(ringer.update(&view, never), None);
        ringer.answering(CallId(1));
        answered(&mut view, 1);
        assert_eq!(ringer.update(&view, never), None);
        assert!(ringer.is_ringing(), "call 2 still rings");
        view.apply(&PhoneEvent::Call {
            call: CallId(2),
            event: CallEvent::Ended(tincan::phone::CallEnd {
                reason: tincan::phone::EndReason::RemoteHangup,
                status: None,
                status_text: None,
                answered: false,
                duration: Duration::ZERO,
                codec: None,
                quality: Default::default(),
                tried: vec![],
                errors: vec![],
            }),
        });
        assert_eq!(ringer.update(&view, never), None);
        assert!(!ringer.is_ringing());
        device.wait(|d| d.dropped.load(Ordering::SeqCst)).await;
        let n = device.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(device.len(), n);
    }

    #[tokio::test]
    async fn s_silences_the_calls_ringing_now_not_the_next_one() {
        let mut view = PhoneView::default();
        let mut ringer = Ringer::default();
        let device = Device::default();
        incoming(&mut view, 1);
        ringer.update(&view, device.opener());
        assert_eq!(ringer.silence(&view), 1);
        ringer.update(&view, never);
        assert!(!ringer.is_ringing());
        device.wait(|d| d.dropped.load(Ordering::SeqCst)).await;
        // Silenced, call 1 stays on the screen ringing; a new call rings again.
        assert!(view.calls[0].state == CallState::Ringing);
        let second = Device::default();
        incoming(&mut view, 2);
        ringer.update(&view, second.opener());
        assert!(ringer.is_ringing());
        second.wait(|d| d.len() >= 1).await;
        assert_eq!(Ringer::default().silence(&PhoneView::default()), 0);
    }

    #[tokio::test]
    async fn outgoing_calls_do_not_ring_here_and_a_missing_device_is_said_once() {
        let mut view = PhoneView::default();
        let mut ringer = Ringer::default();
        view.add_outgoing(CallId(1), "sip:bob@example.test", None);
        view.apply(&PhoneEvent::Call {
            call: CallId(1),
            event: CallEvent::Progress {
                status: 180,
                reason: "Ringing".into(),
            },
        });
        assert_eq!(ringer.update(&view, never), None);
        assert!(!ringer.is_ringing());
        incoming(&mut view, 2);
        let message = ringer.update(&view, |_| Err("no output device named \"x\"".into()));
        assert_eq!(
            message.as_deref(),
            Some("cannot ring: no output device named \"x\"")
        );
        assert_eq!(ringer.update(&view, never), None);
        // --no-audio: nothing to ring on, nothing said.
        incoming(&mut view, 3);
        assert_eq!(ringer.update(&view, |_| Ok(None)), None);
        assert!(!ringer.is_ringing());
    }

    #[test]
    fn a_ring_tone_file_is_looped_and_a_bad_one_falls_back_to_the_chime() {
        let (_, warning) = ring_tone(Some(Path::new("/nonexistent/ring.wav")));
        assert!(
            warning
                .as_deref()
                .is_some_and(|w| w.starts_with("cannot play the ring tone /nonexistent/ring.wav")),
            "{warning:?}"
        );
        let path = std::env::temp_dir().join(format!("tincan-ring-{}.wav", std::process::id()));
        let mut sink = tincan_media::device::WavSink::create(&path).unwrap();
        let frame = vec![1000i16; tincan_media::codec::FRAME_SAMPLES];
        sink.write_frame(&frame).unwrap();
        sink.finish().unwrap();
        let (mut tone, warning) = ring_tone(Some(&path));
        assert_eq!(warning, None);
        let mut out = vec![0i16; tincan_media::codec::FRAME_SAMPLES];
        for _ in 0..3 {
            tone.read_frame(&mut out).unwrap();
            assert_eq!(out, frame);
        }
        std::fs::remove_file(path).ok();
    }
}
