//! Register with a provider and place a call, in a page of code.
//!
//! ```text
//! cargo run -p tincan --example register_and_call -- AOR USERNAME PASSWORD CALLEE [SECONDS [REGISTRAR]]
//! cargo run -p tincan --example register_and_call -- sip:alice@example.com alice secret bob 10
//! ```
//!
//! Registers AOR with REGISTRAR (default: the AOR's domain, found by RFC 3263), calls CALLEE
//! (a bare user is a user of the AOR's domain) through the account with a 440 Hz tone, hangs
//! up SECONDS (default 10) after the answer, unregisters and exits: 0 when the registration
//! and the call succeeded, 1 when either failed.

use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{AccountConfig, AccountEvent, CallEvent, PhoneEvent};
use tincan_media::device::{NullSink, ToneSource};
use tokio::time::{Instant, sleep_until};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [aor, user, password, callee, rest @ ..] = args.as_slice() else {
        eprintln!("usage: register_and_call AOR USERNAME PASSWORD CALLEE [SECONDS [REGISTRAR]]");
        std::process::exit(2);
    };
    let talk = Duration::from_secs(rest.first().map_or(Ok(10), |s| s.parse())?);
    let mut account = AccountConfig::new("main", aor, user, password);
    account.registrars = rest.get(1).cloned().into_iter().collect();
    let mut phone = Phone::builder().account(account).start().await?;

    // Register (failover between the registrar's servers is built in).
    loop {
        match phone.next_event().await {
            Some(PhoneEvent::Account { event, .. }) => match event {
                AccountEvent::Registered { registrar, .. } => {
                    println!("registered at {registrar}");
                    break;
                }
                AccountEvent::Failed { .. } => {} // the next server is tried
                other => return Err(format!("not registered: {other:?}").into()),
            },
            Some(_) => {}
            None => return Err("the phone stopped".into()),
        }
    }

    // Call: a 440 Hz tone, received audio dropped; hang up `talk` after the answer.
    let options = CallOptions {
        source: Box::new(ToneSource::new(440.0, -12.0)),
        sink: Box::new(NullSink::new()),
        ..CallOptions::default()
    };
    let call = phone.call(callee, options).await?;
    let mut hang_up_at = None;
    let mut answered = false;
    loop {
        let timer = async move {
            match hang_up_at {
                Some(at) => sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = timer => {
                hang_up_at = None;
                phone.hangup(call).await?;
            }
            event = phone.next_event() => match event {
                Some(PhoneEvent::Call { event: CallEvent::Answered { codec, srtp, .. }, .. }) => {
                    println!("answered: {codec}{}", if srtp { " over SRTP" } else { "" });
                    hang_up_at = Some(Instant::now() + talk);
                }
                Some(PhoneEvent::Call { event: CallEvent::Ended(end), .. }) => {
                    let status = end.status.map(|s| format!(" ({s})")).unwrap_or_default();
                    println!("ended: {}{status}", end.reason.as_str());
                    answered = end.answered;
                    break;
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    phone.shutdown().await; // unregisters
    std::process::exit(if answered { 0 } else { 1 });
}
