//! The SIP log pane's feed: a [`Tracer`] that turns every message the phone sends or
//! receives into a [`TraceEntry`] (a summary line and the text) and hands it to the screen's
//! loop over a bounded channel (a message that finds the channel full is counted and dropped:
//! the driver never waits for the screen). With `--sip-trace FILE` the same tracer also
//! appends to the file, as every other command does.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tincan_sip::driver::{Direction, TraceRecord, Tracer};
use tincan_sip::message::typed::Date;
use tokio::sync::mpsc;

use super::panes::TraceEntry;

/// How many messages may wait for the screen's loop.
const QUEUE: usize = 256;

/// The receiving end of the feed.
pub struct Feed {
    /// The messages, in order.
    pub entries: mpsc::Receiver<TraceEntry>,
    /// Messages dropped because the loop was behind.
    pub dropped: Arc<AtomicU64>,
}

/// The tracer for the phone, and the feed of its messages. `file`: `--sip-trace FILE`, also
/// written (the caller refuses `-`, which would write over the screen).
///
/// # Errors
///
/// The file cannot be opened for appending.
pub fn tracer(file: Option<&Path>) -> std::io::Result<(Tracer, Feed)> {
    let to_file = file.map(tincan::trace::writer).transpose()?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let dropped = Arc::new(AtomicU64::new(0));
    let counter = dropped.clone();
    let tracer = Tracer::new(move |r| {
        if let Some(write) = &to_file {
            write(r);
        }
        hand_over(r, &tx, &counter);
    });
    Ok((
        tracer,
        Feed {
            entries: rx,
            dropped,
        },
    ))
}

/// Queues one message for the screen, or counts it as dropped when the queue is full.
fn hand_over(r: &TraceRecord<'_>, tx: &mpsc::Sender<TraceEntry>, dropped: &AtomicU64) {
    let entry = TraceEntry {
        summary: summary(r, SystemTime::now()),
        text: String::from_utf8_lossy(r.payload).into_owned(),
    };
    if tx.try_send(entry).is_err() {
        dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// `12:00:01 sent INVITE sip:bob@example.com -> udp:192.0.2.1:5060` or
/// `12:00:01 recv 200 OK (INVITE) <- udp:192.0.2.1:5060` (UTC).
pub fn summary(r: &TraceRecord<'_>, at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let d = Date::from_unix_seconds(i64::try_from(since.as_secs()).unwrap_or(0));
    let text = String::from_utf8_lossy(r.payload);
    let first = text.lines().next().unwrap_or("").trim();
    let what = match first.strip_prefix("SIP/2.0 ") {
        Some(status) => {
            // A response: its status, and the method it answers (from CSeq).
            let method = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case("cseq")
                        .then(|| value.split_whitespace().nth(1).map(str::to_owned))
                        .flatten()
                });
            match method {
                Some(m) => format!("{status} ({m})"),
                None => status.to_owned(),
            }
        }
        None => first.strip_suffix(" SIP/2.0").unwrap_or(first).to_owned(),
    };
    let what: String = what.chars().take(200).collect();
    let peer = format!("{}:{}", r.transport.as_str(), r.remote);
    let (verb, arrow) = match r.direction {
        Direction::Sent => ("sent", "->"),
        Direction::Received => ("recv", "<-"),
    };
    format!(
        "{:02}:{:02}:{:02} {verb} {what} {arrow} {peer}",
        d.hour, d.minute, d.second
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tincan_sip::transport::Transport;

    use super::*;

    fn record(direction: Direction, payload: &[u8]) -> TraceRecord<'_> {
        TraceRecord {
            direction,
            transport: Transport::Udp,
            local: Some("127.0.0.1:5070".parse().unwrap()),
            remote: "192.0.2.1:5060".parse().unwrap(),
            payload,
        }
    }

    fn noon() -> SystemTime {
        // 2026-12-07 12:00:01 UTC.
        UNIX_EPOCH + Duration::from_secs(1_796_644_801)
    }

    #[test]
    fn a_request_and_a_response_make_one_line_each() {
        let invite = record(
            Direction::Sent,
            b"INVITE sip:bob@example.com SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n",
        );
        assert_eq!(
            summary(&invite, noon()),
            "12:00:01 sent INVITE sip:bob@example.com -> udp:192.0.2.1:5060"
        );
        let ok = record(
            Direction::Received,
            b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x\r\ncseq:  2 REGISTER\r\n\r\n",
        );
        assert_eq!(
            summary(&ok, noon()),
            "12:00:01 recv 200 OK (REGISTER) <- udp:192.0.2.1:5060"
        );
    }

    #[test]
    fn garbage_is_summarised_without_panicking() {
        for payload in [&b""[..], b"\xff\xfe\r\n", b"SIP/2.0 ", b"CSeq:\r\n"] {
            let line = summary(&record(Direction::Received, payload), noon());
            assert!(line.starts_with("12:00:01 recv"), "{line}");
        }
    }

    #[tokio::test]
    async fn the_feed_queues_messages_and_counts_what_does_not_fit() {
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let dropped = AtomicU64::new(0);
        let invite = b"INVITE sip:bob@example.com SIP/2.0\r\n\r\n";
        for _ in 0..(QUEUE + 5) {
            hand_over(&record(Direction::Sent, invite), &tx, &dropped);
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 5);
        let first = rx.recv().await.expect("a message");
        assert!(first.summary.contains("sent INVITE sip:bob@example.com"));
        assert!(first.text.starts_with("INVITE sip:bob@example.com SIP/2.0"));
    }
}
