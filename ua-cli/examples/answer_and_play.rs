//! Answer every call and play a WAV file to the caller, in a page of code.
//!
//! ```text
//! cargo run -p tincan --example answer_and_play -- AOR USERNAME PASSWORD FILE.wav [CALLS [REGISTRAR]]
//! cargo run -p tincan --example answer_and_play -- sip:bob@example.com bob secret greeting.wav
//! ```
//!
//! Registers AOR with REGISTRAR (default: the AOR's domain, found by RFC 3263) and answers
//! every call to it with FILE.wav (then silence) until the caller hangs up. With CALLS, it
//! unregisters and exits 0 once that many calls have ended; a refused registration exits 1.

use tincan::phone::driver::Phone;
use tincan::phone::{AccountConfig, AccountEvent, CallEvent, PhoneEvent};
use tincan_media::device::{NullSink, WavSource};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [aor, user, password, wav, rest @ ..] = args.as_slice() else {
        eprintln!("usage: answer_and_play AOR USERNAME PASSWORD FILE.wav [CALLS [REGISTRAR]]");
        std::process::exit(2);
    };
    let calls: Option<usize> = rest.first().map(|s| s.parse()).transpose()?;
    WavSource::open(wav)?; // a missing or unreadable file fails now, not at the first call
    let mut account = AccountConfig::new("main", aor, user, password);
    account.registrars = rest.get(1).cloned().into_iter().collect();
    let mut phone = Phone::builder().account(account).start().await?;

    let mut ended = 0;
    while let Some(event) = phone.next_event().await {
        match event {
            PhoneEvent::Account { event, .. } => match event {
                AccountEvent::Registered { registrar, .. } => {
                    println!("registered at {registrar}, waiting for calls");
                }
                AccountEvent::AuthenticationFailed { .. } | AccountEvent::Rejected { .. } => {
                    return Err(format!("not registered: {event:?}").into());
                }
                other => println!("{other:?}"),
            },
            PhoneEvent::Incoming(incoming) => {
                println!("{}: call from {}", incoming.call, incoming.from);
                let source = Box::new(WavSource::open(wav)?);
                let sink = Box::new(NullSink::new());
                if let Err(e) = phone.accept(incoming.call, source, sink).await {
                    println!("{}: {e}", incoming.call); // the caller gave up meanwhile
                }
            }
            PhoneEvent::Call {
                call,
                event: CallEvent::Answered { codec, .. },
            } => {
                println!("{call}: playing {wav} ({codec})");
            }
            PhoneEvent::Call {
                call,
                event: CallEvent::Ended(end),
            } => {
                println!("{call}: ended, {}", end.reason.as_str());
                ended += 1;
                if calls == Some(ended) {
                    break;
                }
            }
            _ => {}
        }
    }
    phone.shutdown().await; // unregisters
    Ok(())
}
