//! SIP traces: every SIP message a phone sends or receives, written as text with a time
//! stamp, the transport and both addresses (`tincan --sip-trace FILE`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tincan_sip::driver::{TraceRecord, Tracer};
use tincan_sip::message::typed::Date;

/// A tracer that appends every message to the file at `path` (created if missing), or to
/// standard error for `-`. Each message is one write, so a trace cut short by a crash or a
/// kill ends with whole messages.
pub fn to_path(path: &Path) -> io::Result<Tracer> {
    let write = writer(path)?;
    Ok(Tracer::new(move |r| write(r)))
}

/// Writes one message somewhere (see [`writer`]).
pub type Writer = Box<dyn Fn(&TraceRecord<'_>) + Send + Sync>;

/// What [`to_path`]'s tracer does with each message, for a tracer that also does something
/// else with it (the full-screen phone's SIP log).
pub fn writer(path: &Path) -> io::Result<Writer> {
    if path == Path::new("-") {
        return Ok(Box::new(|r| {
            let _ = io::stderr().write_all(format(r, SystemTime::now()).as_bytes());
        }));
    }
    let file: Mutex<File> = Mutex::new(OpenOptions::new().create(true).append(true).open(path)?);
    Ok(Box::new(move |r| {
        let text = format(r, SystemTime::now());
        if let Ok(mut f) = file.lock() {
            let _ = f.write_all(text.as_bytes());
        }
    }))
}

/// One message as the trace prints it: a header line
/// (`2026-11-27T19:30:01.123Z sent udp 127.0.0.1:5060 -> 127.0.0.1:5070 (412 bytes)`), the
/// message (line ends as received; bytes that are not UTF-8 replaced), a blank line.
pub fn format(record: &TraceRecord<'_>, at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let d = Date::from_unix_seconds(i64::try_from(since.as_secs()).unwrap_or(0));
    let local = record
        .local
        .map_or_else(|| "-".to_owned(), |a| a.to_string());
    let (from, to) = match record.direction {
        tincan_sip::driver::Direction::Sent => (local, record.remote.to_string()),
        tincan_sip::driver::Direction::Received => (record.remote.to_string(), local),
    };
    let mut out = std::format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} {} {from} -> {to} ({} bytes)\n",
        d.year,
        d.month,
        d.day,
        d.hour,
        d.minute,
        d.second,
        since.subsec_millis(),
        record.direction.as_str(),
        record.transport.as_str(),
        record.payload.len(),
    );
    out.push_str(&String::from_utf8_lossy(record.payload));
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tincan_sip::driver::Direction;
    use tincan_sip::transport::Transport;

    use super::*;

    #[test]
    fn a_record_is_a_header_line_the_message_and_a_blank_line() {
        let record = TraceRecord {
            direction: Direction::Received,
            transport: Transport::Udp,
            local: Some("127.0.0.1:5060".parse().unwrap()),
            remote: "[::1]:5070".parse().unwrap(),
            payload: b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        };
        let at = UNIX_EPOCH + Duration::from_millis(1_795_800_601_123);
        assert_eq!(
            format(&record, at),
            "2026-11-27T17:30:01.123Z received udp [::1]:5070 -> 127.0.0.1:5060 (37 bytes)\n\
             SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n\n"
        );
        let sent = TraceRecord {
            direction: Direction::Sent,
            local: None,
            payload: b"OPTIONS sip:x \xff",
            ..record
        };
        assert_eq!(
            format(&sent, at),
            "2026-11-27T17:30:01.123Z sent udp - -> [::1]:5070 (15 bytes)\n\
             OPTIONS sip:x \u{fffd}\n\n"
        );
    }
}
