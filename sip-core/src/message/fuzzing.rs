//! Entry points shared by the fuzz targets (`fuzz/`) and the stable test that replays their
//! corpus. They panic only when an invariant of the message layer is broken.

use bytes::Bytes;

use super::framing::{Frame, StreamFramer};
use super::{CheckConfig, Message, diagnose, typed};

/// Parses `data` as a datagram, reads every typed header, and checks that a parsed message
/// prints to bytes that parse to the same message.
pub fn fuzz_one_datagram(data: &[u8]) {
    let _ = diagnose(data);
    // The one-pass SIP URI path gives what the general one gives, on any URI-like text.
    if let Ok(text) = std::str::from_utf8(data) {
        for piece in text.split(['<', '>', ' ', '\r', '\n', ',', ':']) {
            super::uri::check_plain_path(piece);
        }
        for piece in text.split(['<', '>', ' ', '\r', '\n', ',']) {
            if let Some(rest) = piece.strip_prefix("sip:") {
                super::uri::check_plain_path(rest);
            }
        }
        // The one-pass Via and parameter lookup paths, on every line and on what follows
        // each ';' of it.
        for line in text.split(['\r', '\n']) {
            let value = line.split_once(':').map_or(line, |(_, v)| v.trim_start());
            typed::check_plain_via(value);
            typed::check_plain_name_addr(value);
            // A line the one-pass path reads whole is the one element of the line.
            if let Some(via) = <typed::Via<'_> as typed::Header<'_>>::parse_line(value) {
                let mut elements = super::split_list(value);
                let first = elements.next().and_then(Result::ok);
                assert!(
                    elements.next().is_none()
                        && first.map(<typed::Via<'_> as typed::Header<'_>>::parse) == Some(Ok(via)),
                    "a Via line read whole differs from its one element: {value:?}"
                );
            }
            if let Some(contact) = <typed::Contact<'_> as typed::Header<'_>>::parse_line(value) {
                let mut elements = super::split_list(value);
                let first = elements.next().and_then(Result::ok);
                assert!(
                    elements.next().is_none()
                        && first.map(<typed::Contact<'_> as typed::Header<'_>>::parse)
                            == Some(Ok(contact)),
                    "a Contact line read whole differs from its one element: {value:?}"
                );
            }
            for (i, _) in line.match_indices(';') {
                super::params::check_plain_get(&line[i + 1..]);
            }
        }
    }
    let Ok(msg) = Message::parse(Bytes::copy_from_slice(data)) else {
        return;
    };
    let _ = msg.check(&CheckConfig::default());
    let _ = msg.uri();
    let _ = msg.reason();
    for v in msg.vias() {
        let _ = v.map(|v| {
            (
                v.branch().map(str::len),
                v.received().map(str::len),
                v.rport(),
            )
        });
    }
    let _ = msg
        .from()
        .map(|f| f.map(|f| (f.tag().map(str::len), f.uri().is_ok())));
    let _ = msg.to().map(|t| t.map(|t| t.to_string()));
    let _ = msg.call_id();
    let _ = msg.cseq();
    let _ = msg.max_forwards();
    for c in msg.contacts().flatten() {
        // A name-addr's URI is parsed when read; it must print as it parsed.
        if let Some(Ok(uri)) = c.address().map(typed::NameAddr::uri) {
            let again = uri.to_string();
            assert_eq!(
                crate::message::Uri::parse(&again)
                    .map(|u| u.to_string())
                    .as_deref(),
                Ok(again.as_str()),
                "a Contact URI reprints differently"
            );
        }
    }
    let _ = msg.routes().count();
    let _ = msg.record_routes().count();
    let _ = msg.content_type();
    let _ = msg.get::<typed::WwwAuthenticate<'_>>();
    let _ = msg.get::<typed::Date>();
    let printed = msg.to_bytes();
    let again = Message::parse(printed.clone()).expect("a parsed message reprints parseably");
    assert!(again == msg, "reprinted message differs");
    assert_eq!(again.to_bytes(), printed, "printing is stable");
}

/// Frames `data` as a stream, pushed whole and pushed in small pieces: both give the same
/// frames, and every framed message is handed to [`fuzz_one_datagram`].
pub fn fuzz_one_stream(data: &[u8]) {
    let whole = frames(data, data.len().max(1));
    let chunk = usize::from(data.first().copied().unwrap_or(1) % 7) + 1;
    let pieces = frames(data, chunk);
    assert_eq!(whole, pieces, "framing depends on how the bytes arrived");
    for f in whole.0 {
        if let Frame::Message(m) = f {
            fuzz_one_datagram(&m);
        }
    }
}

fn frames(data: &[u8], chunk: usize) -> (Vec<Frame>, bool) {
    let mut f = StreamFramer::default();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        f.push(piece);
        loop {
            match f.next_frame() {
                Ok(Some(fr)) => out.push(fr),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}
