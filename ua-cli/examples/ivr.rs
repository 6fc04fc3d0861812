//! An IVR on the library: answers every call with a welcome prompt, plays prompt `d` when
//! the caller presses `d` (RFC 4733 or SIP INFO, both come as `CallEvent::Dtmf`), and on `2`
//! transfers the caller (REFER) or hangs up. Calls are independent, as many at once as
//! `--max-calls`; OPTIONS say whether it takes calls (200, or 503 when full or draining).
//! SIGTERM drains: new calls get 503 with Retry-After, the calls in progress finish, then it
//! exits.
//!
//! ```text
//! cargo run -p tincan --example ivr -- --listen 127.0.0.1:5080 --max-calls 20 \
//!     [--prompts DIR] [--transfer-to sip:desk@example.com]
//! ```
//!
//! DIR holds `welcome.wav` and `1.wav` .. `9.wav`; without it the IVR writes its own into a
//! temporary directory: a 1 s tone of 350 Hz to welcome, 2 s of `500 + 100 * d` Hz for `d`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use tincan::phone::driver::Phone;
use tincan::phone::{CallEvent, PhoneConfig, PhoneEvent};
use tincan_media::codec::FRAME_SAMPLES;
use tincan_media::device::{AudioSink, AudioSource, DeviceError, NullSink, SourceStatus};
use tincan_media::device::{ToneSource, WavSink, WavSource};

/// A call's audio: the prompt it was last given, then silence. Never `Ended` (the session
/// would stop reading it), so the next prompt plays in the same stream.
struct Prompts {
    playing: Option<WavSource>,
    next: mpsc::Receiver<WavSource>,
}

impl AudioSource for Prompts {
    fn read_frame(&mut self, frame: &mut [i16]) -> Result<SourceStatus, DeviceError> {
        while let Ok(prompt) = self.next.try_recv() {
            self.playing = Some(prompt);
        }
        let status = match self.playing.as_mut() {
            Some(prompt) => prompt.read_frame(frame)?,
            None => SourceStatus::Ended,
        };
        if status != SourceStatus::Audio {
            frame.fill(0);
            return Ok(SourceStatus::Underrun);
        }
        Ok(status)
    }
}

/// Writes the built-in prompts into `dir`.
fn write_prompts(dir: &Path) -> Result<(), DeviceError> {
    let mut tones = vec![("welcome".to_owned(), 350.0, 50)];
    tones.extend((1..=9).map(|d| (d.to_string(), 500.0 + 100.0 * f64::from(d), 100)));
    for (name, hz, frames) in tones {
        let mut tone = ToneSource::new(hz, -12.0);
        let mut wav = WavSink::create(dir.join(format!("{name}.wav")))?;
        let mut frame = vec![0i16; FRAME_SAMPLES];
        for _ in 0..frames {
            tone.read_frame(&mut frame)?;
            wav.write_frame(&frame)?;
        }
        wav.finish()?;
    }
    Ok(())
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let listen = arg(&args, "--listen")
        .unwrap_or_else(|| "127.0.0.1:5060".into())
        .parse()?;
    let max_calls = arg(&args, "--max-calls").map_or(Ok(10), |n| n.parse())?;
    let transfer_to = arg(&args, "--transfer-to");
    let prompts = match arg(&args, "--prompts") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = std::env::temp_dir().join(format!("tincan-ivr-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            write_prompts(&dir)?;
            dir
        }
    };
    let prompt = |name: &str| WavSource::open(prompts.join(format!("{name}.wav")));
    prompt("welcome")?; // a missing prompt fails now, not at the first call

    let config = PhoneConfig {
        call_limit: max_calls,
        ..PhoneConfig::default()
    };
    let mut phone = Phone::builder().bind(listen).config(config).start().await?;
    // Caught before `listening on` is printed: a SIGTERM right after it drains as well.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let udp = phone
        .local_addresses()
        .iter()
        .find(|(t, _)| t.as_str() == "udp");
    println!(
        "listening on {}",
        udp.map(|(_, a)| *a).ok_or("no udp socket")?
    );
    let mut calls = HashMap::new(); // each call's prompt queue
    loop {
        let event = tokio::select! {
            event = phone.next_event() => event,
            _ = terminate.recv() => {
                println!("draining");
                phone.drain(Duration::from_secs(30)).await;
                continue;
            }
        };
        match event {
            Some(PhoneEvent::Incoming(incoming)) => {
                let (tx, next) = mpsc::channel();
                let source = Box::new(Prompts {
                    playing: Some(prompt("welcome")?),
                    next,
                });
                if phone
                    .accept(incoming.call, source, Box::new(NullSink::new()))
                    .await
                    .is_ok()
                {
                    println!("{}: answered, from {}", incoming.call, incoming.from);
                    calls.insert(incoming.call, tx);
                }
            }
            Some(PhoneEvent::Call {
                call,
                event: CallEvent::Dtmf { digit, via },
            }) => {
                println!("{call}: digit {digit} ({via:?})");
                match (digit, &transfer_to) {
                    ('2', Some(uri)) => phone
                        .transfer(call, uri)
                        .await
                        .unwrap_or_else(|e| println!("{call}: {e}")),
                    ('2', None) => phone
                        .hangup(call)
                        .await
                        .unwrap_or_else(|e| println!("{call}: {e}")),
                    ('1'..='9', _) => {
                        if let (Some(tx), Ok(p)) = (calls.get(&call), prompt(&digit.to_string())) {
                            let _ = tx.send(p);
                        }
                    }
                    _ => {}
                }
            }
            Some(PhoneEvent::Call {
                call,
                event: CallEvent::Ended(end),
            }) => {
                println!("{call}: ended, {}", end.reason.as_str());
                calls.remove(&call);
            }
            Some(PhoneEvent::Drained) | None => break,
            Some(_) => {}
        }
    }
    println!("drained");
    phone.shutdown().await;
    Ok(())
}
