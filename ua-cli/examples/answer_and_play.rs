//! Answer every call and play a WAV file to the caller.
//!
//! ```text
//! cargo run -p tincan --example answer_and_play -- 0.0.0.0:5060 greeting.wav
//! ```

use tincan::call::{CallEvent, Phone, PhoneConfig};
use tincan_media::device::{NullSink, WavSource};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bind, wav] = args.as_slice() else {
        eprintln!("usage: answer_and_play ADDR:PORT FILE.wav");
        std::process::exit(2);
    };
    let mut phone = Phone::start(PhoneConfig {
        bind: bind.parse()?,
        ..PhoneConfig::default()
    })
    .await?;
    println!("waiting for calls on {:?}", phone.local_address());
    while let Some(incoming) = phone.next_incoming().await {
        println!("call from {}", incoming.from);
        let source = Box::new(WavSource::open(wav)?);
        let mut call = incoming.accept(source, Box::new(NullSink::new()));
        tokio::spawn(async move {
            while let Some(event) = call.next_event().await {
                if let CallEvent::Ended { reason, .. } = &event {
                    println!("call ended: {reason}");
                }
            }
        });
    }
    Ok(())
}
