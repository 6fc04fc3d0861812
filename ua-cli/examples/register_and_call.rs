//! Register with a provider and place a call, in a page of code.
//!
//! ```text
//! cargo run -p tincan --example register_and_call -- sip:alice@example.com alice secret sip:bob@example.com
//! ```

use std::time::Duration;

use tincan::account::{AccountEvent, AccountSpec, RegisterMode, run_account};
use tincan::call::{CallEvent, CallOptions, Phone, PhoneConfig};
use tincan_media::device::{NullSink, ToneSource};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [aor, user, password, callee] = args.as_slice() else {
        eprintln!("usage: register_and_call AOR USERNAME PASSWORD CALLEE");
        std::process::exit(2);
    };
    let domain = aor.rsplit('@').next().unwrap_or(aor).to_owned();
    let phone = Phone::start(PhoneConfig {
        user: user.clone(),
        domain: Some(domain.clone()),
        credentials: Some((user.clone(), password.clone())),
        outbound_proxy: Some(format!("sip:{domain}")),
        ..PhoneConfig::default()
    })
    .await?;

    // Register (RFC 3263 finds the registrar; failover between its servers is built in).
    let spec = AccountSpec {
        name: "main".into(),
        aor: aor.clone(),
        username: user.clone(),
        password: password.clone(),
        transport: None,
        registrars: Vec::new(),
        mode: RegisterMode::Failover,
        expires: 600,
        instance_id: None,
    };
    let (events, mut account_events) = tokio::sync::mpsc::unbounded_channel();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(run_account(phone.context().clone(), spec, events, stopped));
    if let Some(AccountEvent::Registered { registrar, .. }) = account_events.recv().await {
        println!("registered at {registrar}");
    }

    // Call: a 440 Hz tone for ten seconds, received audio dropped.
    let options = CallOptions {
        source: Box::new(ToneSource::new(440.0, -12.0)),
        sink: Box::new(NullSink::new()),
        ..CallOptions::default()
    };
    let mut call = phone.call(callee, options).await?;
    let hangup = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(hangup);
    loop {
        tokio::select! {
            event = call.next_event() => match event {
                Some(CallEvent::Ended { reason, status, .. }) => {
                    println!("ended: {reason} {status:?}");
                    break;
                }
                Some(event) => println!("{}", serde_json::to_string(&event)?),
                None => break,
            },
            () = &mut hangup => call.hangup(),
        }
    }
    let _ = stop.send(true);
    phone.shutdown().await;
    Ok(())
}
