//! Register with a provider and place a call, in a page of code.
//!
//! ```text
//! cargo run -p tincan --example register_and_call -- sip:alice@example.com alice secret sip:bob@example.com
//! ```

use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{AccountConfig, AccountEvent, CallEvent, CallParams, PhoneEvent};
use tincan_media::device::{NullSink, ToneSource};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [aor, user, password, callee] = args.as_slice() else {
        eprintln!("usage: register_and_call AOR USERNAME PASSWORD CALLEE");
        std::process::exit(2);
    };
    // The account registers as soon as the phone starts (RFC 3263 finds the registrar;
    // failover between its servers, and back, is built in).
    let mut phone = Phone::builder()
        .account(AccountConfig::new("main", aor, user, password))
        .start()
        .await?;
    let account = phone.accounts()[0];
    while let Some(event) = phone.next_event().await {
        match event {
            PhoneEvent::Account {
                event: AccountEvent::Registered { registrar, .. },
                ..
            } => {
                println!("registered at {registrar}");
                break;
            }
            PhoneEvent::Account {
                event: AccountEvent::Unavailable { tried, .. },
                ..
            } => {
                eprintln!("not registered: {tried:?}");
                break;
            }
            _ => {}
        }
    }

    // Call: a 440 Hz tone for ten seconds, received audio dropped.
    let options = CallOptions {
        source: Box::new(ToneSource::new(440.0, -12.0)),
        sink: Box::new(NullSink::new()),
        params: CallParams {
            account: Some(account),
            ..CallParams::default()
        },
    };
    let call = phone.call(callee, options).await?;
    let hangup = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(hangup);
    let mut hung_up = false;
    loop {
        tokio::select! {
            event = phone.next_event() => match event {
                Some(PhoneEvent::Call { call: c, event: CallEvent::Ended(end) }) if c == call => {
                    println!("ended: {} {:?}", end.reason.as_str(), end.status);
                    break;
                }
                Some(PhoneEvent::Call { call: c, event }) if c == call => println!("{event:?}"),
                Some(_) => {}
                None => break,
            },
            () = &mut hangup, if !hung_up => {
                hung_up = true;
                let _ = phone.hangup(call).await;
            }
        }
    }
    phone.shutdown().await;
    Ok(())
}
