//! One phone, two accounts, each with its own registrar, in a page of code.
//!
//! ```text
//! cargo run -p tincan --example two_accounts -- AOR1 PASSWORD1 REGISTRAR1 AOR2 PASSWORD2 REGISTRAR2 [CALLS [VIA CALLEE]]
//! cargo run -p tincan --example two_accounts -- sip:alice@home.example alicepw sip:home.example \
//!     sip:alice@work.example secret sip:pbx.work.example 0 2 sip:bob@work.example
//! ```
//!
//! Registers both accounts (the digest user is the AOR's user), answers calls to either with
//! a 440 Hz tone and says which account each is for. With VIA (1 or 2) and CALLEE, once both
//! are registered it calls CALLEE through that account (its registrar, its credentials); the
//! callee hangs up. With CALLS (0: never), it unregisters and exits 0 once that many calls
//! (incoming and outgoing) have ended; a refused registration exits 1.

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{AccountConfig, AccountEvent, CallEvent, CallParams, PhoneEvent};
use tincan_media::device::{NullSink, ToneSource};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [aor1, pw1, registrar1, aor2, pw2, registrar2, rest @ ..] = args.as_slice() else {
        eprintln!(
            "usage: two_accounts AOR1 PASSWORD1 REGISTRAR1 AOR2 PASSWORD2 REGISTRAR2 [CALLS [VIA CALLEE]]"
        );
        std::process::exit(2);
    };
    let calls: usize = rest.first().map_or(Ok(0), |s| s.parse())?;
    let outgoing = match rest {
        [_, via, callee] => match via.as_str() {
            "1" => Some((0, callee)),
            "2" => Some((1, callee)),
            _ => return Err("VIA is 1 or 2".into()),
        },
        _ => None,
    };
    let mut builder = Phone::builder();
    for (aor, password, registrar) in [(aor1, pw1, registrar1), (aor2, pw2, registrar2)] {
        let user = aor.split([':', '@']).nth(1).unwrap_or(aor); // sip:USER@domain
        let mut account = AccountConfig::new(aor, aor, user, password);
        account.registrars = vec![registrar.clone()];
        builder = builder.account(account);
    }
    let mut phone = builder.start().await?;
    let names = [aor1, aor2];

    let (mut registered, mut ended) = ([false; 2], 0);
    while let Some(event) = phone.next_event().await {
        match event {
            PhoneEvent::Account { account, event } => match event {
                AccountEvent::Registered { registrar, .. } if !registered[account.0] => {
                    println!("{} registered at {registrar}", names[account.0]);
                    registered[account.0] = true;
                    if let ([true, true], Some((via, callee))) = (registered, outgoing) {
                        let account = Some(phone.accounts()[via]);
                        let params = CallParams {
                            account,
                            ..CallParams::default()
                        };
                        let options = CallOptions {
                            params,
                            ..CallOptions::default()
                        };
                        let call = phone.call(callee, options).await?;
                        println!("{call}: calling {callee} as {}", names[via]);
                    }
                }
                AccountEvent::AuthenticationFailed { .. } | AccountEvent::Rejected { .. } => {
                    return Err(format!("{} not registered: {event:?}", names[account.0]).into());
                }
                _ => {}
            },
            PhoneEvent::Incoming(incoming) => {
                let to = incoming
                    .account
                    .map_or("no account", |a| names[a.0].as_str());
                println!("{}: call from {} for {to}", incoming.call, incoming.from);
                let source = Box::new(ToneSource::new(440.0, -12.0));
                let sink = Box::new(NullSink::new());
                if let Err(e) = phone.accept(incoming.call, source, sink).await {
                    println!("{}: {e}", incoming.call); // the caller gave up meanwhile
                }
            }
            PhoneEvent::Call {
                call,
                event: CallEvent::Ended(end),
            } => {
                println!("{call}: ended, {}", end.reason.as_str());
                ended += 1;
                if ended == calls {
                    break;
                }
            }
            _ => {}
        }
    }
    phone.shutdown().await; // unregisters both
    Ok(())
}
