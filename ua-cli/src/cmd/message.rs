//! `tincan message URI TEXT`: one page-mode MESSAGE (RFC 3428) and its delivery report, and
//! how `tincan listen` shows the messages it receives (see docs/messaging.md).

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};
use tincan::config::Config;
use tincan::history::{Delivery, Direction, MessageRecord};
use tincan::phone::driver::Phone;
use tincan::phone::message::TEXT_PLAIN;
use tincan::phone::{IncomingMessage, MessageEvent, PhoneConfig, PhoneEvent};

/// Arguments of `tincan message`.
#[derive(Debug, clap::Args)]
pub struct MessageArgs {
    /// The recipient: a SIP URI (`sip:bob@example.com`), `user@domain`, or a user of the
    /// account's domain.
    uri: String,
    /// The text to send (`text/plain;charset=UTF-8`).
    text: String,
    /// Send through this account of the config (its proxy or registrars, its credentials;
    /// default: the account of the recipient's domain, else the only account, else directly
    /// to the recipient's domain).
    #[arg(long)]
    account: Option<String>,
    /// One JSON object for the delivery report.
    #[arg(long)]
    json: bool,
    /// Local SIP address to bind (default: the config's, else any address and port).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// DNS server (ADDR:PORT) instead of the config's or the system's.
    #[arg(long)]
    dns_server: Option<SocketAddr>,
    /// Do not keep the message in the history.
    #[arg(long)]
    no_history: bool,
}

/// Runs `tincan message`: exit 0 when a 2xx came back, 1 when the message was refused or
/// no server answered (the status or the reason is printed), 2 on usage errors.
pub fn run(args: &MessageArgs, config_path: Option<&Path>) -> ExitCode {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tincan message: {e}");
            return ExitCode::from(2);
        }
    };
    super::print_config_warnings("message", &config);
    let rt = match super::call::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(send(args, config))
}

async fn send(args: &MessageArgs, config: Config) -> ExitCode {
    let fail = |msg: String, code: u8| {
        eprintln!("tincan message: {msg}");
        ExitCode::from(code)
    };
    let chosen = match &args.account {
        Some(name) => match config.accounts.iter().position(|a| a.name == *name) {
            Some(i) => Some(i),
            None => return fail(format!("no account named {name:?} in the config"), 2),
        },
        None => None,
    };
    let mut pc = PhoneConfig::default();
    super::apply_keepalives(&config.network, &mut pc);
    let bind = args
        .bind
        .or(config.network.bind)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut builder = Phone::builder()
        .config(pc)
        .bind(bind)
        .tcp(true)
        .dual_stack(true)
        .ringback(None);
    if let Some(dns) = args.dns_server.or(config.network.dns_server) {
        builder = builder.dns_server(dns);
    }
    if let Some(t) = super::sip_trace() {
        builder = builder.sip_trace(t);
    }
    // Every account, none registering: a MESSAGE needs the account's route and credentials,
    // not a binding.
    for a in &config.accounts {
        match super::account_config(a) {
            Ok(mut ac) => {
                ac.register = false;
                builder = builder.account(ac);
            }
            Err(e) => return fail(e.to_string(), 2),
        }
    }
    let mut phone = match builder.start().await {
        Ok(p) => p,
        Err(e) => return fail(e.to_string(), 1),
    };
    let account = chosen.and_then(|i| phone.accounts().get(i).copied());
    let id = match phone.send_message(&args.uri, &args.text, account).await {
        Ok(id) => id,
        Err(e) => {
            phone.shutdown().await;
            return fail(e.to_string(), 2);
        }
    };
    // The account it went through, for the history: the named one, else the recipient's
    // domain's, else the only one (as the phone chooses).
    let host = tincan::phone::call::request_uri(&args.uri, None)
        .ok()
        .and_then(|u| u.as_sip().map(|s| s.host.to_string()));
    let account_name = chosen
        .or_else(|| {
            config.accounts.iter().position(|a| {
                host.as_deref()
                    .is_some_and(|h| a.aor.host.to_string().eq_ignore_ascii_case(h))
            })
        })
        .or_else(|| (config.accounts.len() == 1).then_some(0))
        .and_then(|i| config.accounts.get(i))
        .map(|a| a.name.clone());
    let default_domain = account_name
        .as_deref()
        .and_then(|n| config.accounts.iter().find(|a| a.name == n))
        .map(|a| a.aor.host.to_string());
    let peer = tincan::phone::call::request_uri(&args.uri, default_domain.as_deref())
        .map_or_else(|_| args.uri.clone(), |u| u.to_string());
    let mut history = super::history::Recorder::open("message", args.no_history);
    let row = history.record_message(&MessageRecord::new(
        Direction::Outgoing,
        &peer,
        account_name,
        super::history::unix_ms_now(),
        TEXT_PLAIN,
        args.text.as_bytes(),
    ));
    let code = loop {
        let Some(ev) = phone.next_event().await else {
            break fail("the phone stopped before the delivery report".into(), 1);
        };
        let PhoneEvent::Message(report) = ev else {
            continue;
        };
        let (delivery, status, reason, code) = match &report {
            MessageEvent::Delivered { message, status } if *message == id => {
                (Delivery::Delivered, Some(*status), None, ExitCode::SUCCESS)
            }
            MessageEvent::Failed {
                message,
                status,
                reason,
            } if *message == id => (
                Delivery::Failed,
                *status,
                Some(reason.clone()),
                ExitCode::from(1),
            ),
            _ => continue,
        };
        if let Some(row) = row {
            history.set_delivery(row, delivery, status, reason.as_deref());
        }
        if args.json {
            println!(
                "{}",
                json!({
                    "event": delivery.as_str(),
                    "to": peer,
                    "status": status,
                    "reason": reason,
                })
            );
        } else {
            match (status, &reason) {
                (Some(s), _) if delivery == Delivery::Delivered => println!("delivered: {s}"),
                (Some(s), Some(r)) => println!("failed: {s} {r}"),
                (_, r) => println!("failed: {}", r.as_deref().unwrap_or("no answer")),
            }
        }
        break code;
    };
    phone.shutdown().await;
    code
}

/// The line `tincan listen` prints for a message received: human text (control characters
/// escaped, so a peer cannot drive the terminal) or one JSON object.
pub(crate) fn received_line(m: &IncomingMessage, json: bool) -> String {
    let from = super::call::caller_text(&m.from);
    if json {
        let v: Value = json!({
            "event": "message",
            "from": from,
            "to": m.to,
            "content_type": m.content_type,
            "text": m.text,
            "bytes": m.body.len(),
        });
        return v.to_string();
    }
    match &m.text {
        Some(text) => format!("message from {from}: {}", escape_controls(text)),
        None => format!(
            "message from {from}: {} bytes of {}",
            m.body.len(),
            if m.content_type.is_empty() {
                "nothing"
            } else {
                &m.content_type
            }
        ),
    }
}

/// The line `tincan call` and `tincan listen` print for a message event: the message
/// received, or the delivery report of one sent in a call (`message delivered: 200`,
/// `message failed: 486 Busy Here`; `--json`: `message_delivered` / `message_failed` with
/// `status` and `reason`).
pub(crate) fn event_line(event: &MessageEvent, json: bool) -> Option<String> {
    let (delivered, status, reason) = match event {
        MessageEvent::Received(m) => return Some(received_line(m, json)),
        MessageEvent::Delivered { status, .. } => (true, Some(*status), None),
        MessageEvent::Failed { status, reason, .. } => (false, *status, Some(reason.as_str())),
        _ => return None,
    };
    if json {
        let event = if delivered {
            "message_delivered"
        } else {
            "message_failed"
        };
        return Some(json!({"event": event, "status": status, "reason": reason}).to_string());
    }
    Some(match (delivered, status, reason) {
        (true, Some(s), _) => format!("message delivered: {s}"),
        (_, Some(s), Some(r)) => format!("message failed: {s} {r}"),
        (_, _, r) => format!("message failed: {}", r.unwrap_or("no answer")),
    })
}

/// The line `tincan listen` prints for a PBX's message-waiting report (RFC 3842).
pub(crate) fn waiting_line(
    w: &tincan::phone::message_waiting::MessageWaiting,
    account: Option<&str>,
    json: bool,
) -> String {
    let voice = w.summary.voice().unwrap_or_default();
    if json {
        return json!({
            "event": "message_waiting",
            "account": account,
            "waiting": w.summary.waiting,
            "new": voice.new,
            "old": voice.old,
            "urgent_new": voice.urgent_new,
            "urgent_old": voice.urgent_old,
        })
        .to_string();
    }
    let whose = account.map_or_else(String::new, |a| format!(" ({a})"));
    if w.summary.voice().is_some() {
        format!("voicemail{whose}: {} new, {} old", voice.new, voice.old)
    } else if w.summary.waiting {
        format!("voicemail{whose}: messages waiting")
    } else {
        format!("voicemail{whose}: no messages")
    }
}

/// A message received, for the history.
pub(crate) fn received_record(m: &IncomingMessage, account: Option<String>) -> MessageRecord {
    MessageRecord::new(
        Direction::Incoming,
        &m.from,
        account,
        super::history::unix_ms_now(),
        &m.content_type,
        &m.body,
    )
}

/// Control characters (escape sequences, carriage returns) as Rust escapes.
fn escape_controls(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(text: Option<&str>, body: &[u8]) -> IncomingMessage {
        IncomingMessage {
            from: "\"Bob\" <sip:bob@example.com>;tag=1".into(),
            to: "<sip:alice@example.com>".into(),
            call_id: "x".into(),
            content_type: "text/plain".into(),
            text: text.map(str::to_owned),
            body: bytes::Bytes::copy_from_slice(body),
            account: None,
            call: None,
        }
    }

    #[test]
    fn a_received_text_cannot_drive_the_terminal() {
        let m = incoming(Some("hi\u{1b}[2J\nthere"), b"");
        assert_eq!(
            received_line(&m, false),
            "message from \"Bob\" <sip:bob@example.com>: hi\\u{1b}[2J\\nthere"
        );
        let v: Value = serde_json::from_str(&received_line(&m, true)).unwrap();
        assert_eq!(v["text"], "hi\u{1b}[2J\nthere");
        assert_eq!(v["from"], "\"Bob\" <sip:bob@example.com>");
    }

    #[test]
    fn bytes_are_counted_not_printed() {
        let m = incoming(None, &[0, 1, 2]);
        assert_eq!(
            received_line(&m, false),
            "message from \"Bob\" <sip:bob@example.com>: 3 bytes of text/plain"
        );
    }
}
