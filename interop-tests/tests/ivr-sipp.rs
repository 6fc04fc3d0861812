//! The IVR example (`ua-cli/examples/ivr.rs`, issue 20) against a real caller: a sipp UAC
//! (`lab/sipp/ivr_dtmf_uac.xml`) calls it, presses 1 (SIP INFO `application/dtmf-relay`),
//! hears prompt 1, presses 2 and is transferred (REFER, 202, NOTIFY, then the IVR's BYE) or
//! hung up, as the IVR is configured. The caller's SDP names a UDP port of the test itself,
//! which counts the RTP packets of each prompt by their tone (the IVR's built-in prompts:
//! welcome 350 Hz for 1 s, digit `d` `500 + 100 * d` Hz for 2 s). Also: OPTIONS to an idle
//! IVR get 200, to a full one 503 with the overload Retry-After (5 s), to a draining one
//! (SIGTERM) 503 with the drain's (30 s); the drained IVR exits 0 once its call is over.
//! And the keys pressed in the media instead (RFC 4733 telephone-events sent by the test
//! from the caller's media port, `lab/sipp/ivr_wait_bye_uac.xml`): prompt 1, then hung up.

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use tincan_interop_tests::{Peer, Sipp, WorkDir, audio, free_port, require_peer, tincan_example};

const WAIT: Duration = Duration::from_secs(60);

/// Starts the IVR on a free port with `args`; returns it and its SIP address once it says
/// `listening on`.
fn start_ivr(name: &str, args: &[&str]) -> (Peer, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut all = vec!["--listen".to_owned(), addr.to_string()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let mut ivr = Peer::builder(name, tincan_example("ivr"))
        .args(&all)
        .env("RUST_BACKTRACE", "1")
        .lifetime(Duration::from_secs(120))
        .stop_grace(Duration::from_secs(2))
        .spawn_in(WorkDir::new(name).expect("scratch dir"))
        .expect("the ivr starts");
    ivr.wait_for_log(&format!("listening on {addr}"), WAIT)
        .expect("the ivr listens");
    (ivr, addr)
}

/// The caller's media port: every RTP packet received there, with its arrival, on a thread.
fn rtp_receiver() -> (u16, mpsc::Receiver<Vec<u8>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a free udp port");
    let port = socket.local_addr().expect("bound").port();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a timeout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        // Ends when no packet came for 30 s, or the test dropped the receiver.
        while let Ok((n, _)) = socket.recv_from(&mut buf) {
            if tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    (port, rx)
}

/// G.711 mu-law decoding of one byte.
fn mulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let exponent = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0F);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let v = if b & 0x80 != 0 { -magnitude } else { magnitude };
    i16::try_from(v).unwrap_or(i16::MAX)
}

/// The prompt tone of one PCMU RTP packet (payload type 0): the frequency among `tones`
/// whose power dominates, or `None` for silence or another payload type.
fn tone_of(packet: &[u8], tones: &[f64]) -> Option<f64> {
    if packet.len() <= 12 || packet[1] & 0x7f != 0 {
        return None;
    }
    let samples: Vec<i16> = packet[12..].iter().map(|&b| mulaw_decode(b)).collect();
    if audio::rms(&samples) < 300.0 {
        return None;
    }
    let powers: Vec<(f64, f64)> = tones
        .iter()
        .map(|&hz| (hz, audio::goertzel_power(&samples, 8000, hz)))
        .collect();
    let total: f64 = powers.iter().map(|p| p.1).sum();
    powers
        .into_iter()
        .find(|(_, p)| *p > 0.8 * total)
        .map(|(hz, _)| hz)
}

/// Packets of each tone among `tones` received until the receiver has been quiet 2 s.
fn count_tones(rx: &mpsc::Receiver<Vec<u8>>, tones: &[f64]) -> Vec<usize> {
    let mut counts = vec![0; tones.len()];
    while let Ok(p) = rx.recv_timeout(Duration::from_secs(2)) {
        if let Some(hz) = tone_of(&p, tones) {
            let i = tones.iter().position(|t| *t == hz).expect("one of them");
            counts[i] += 1;
        }
    }
    counts
}

/// One sipp caller pressing 1 then 2; returns sipp's message trace and the packets of the
/// welcome tone, prompt 1 and prompt 2.
fn call_ivr(ivr: &mut Peer, addr: SocketAddr, name: &str) -> (String, Vec<usize>) {
    let (rtp_port, rx) = rtp_receiver();
    let uac = Sipp::lab_scenario("ivr_dtmf_uac.xml")
        .name(name)
        .remote(addr)
        .service("ivr")
        .inf_rows([format!("{rtp_port};")])
        .calls(1)
        .timeout(Duration::from_secs(40))
        .trace_msg()
        .run()
        .expect("sipp runs");
    assert_eq!(
        (uac.successful, uac.failed),
        (1, 0),
        "{}\n{}\n{}",
        uac.summary(),
        uac.messages(),
        ivr.log()
    );
    let counts = count_tones(&rx, &[350.0, 600.0, 700.0]);
    (uac.messages(), counts)
}

#[test]
fn a_caller_hears_prompt_1_then_is_transferred_on_2() {
    if !require_peer("sipp") {
        return;
    }
    let (mut ivr, addr) = start_ivr(
        "ivr-transfer",
        &[
            "--max-calls",
            "4",
            "--transfer-to",
            "sip:desk@127.0.0.1:5999",
        ],
    );
    let (messages, counts) = call_ivr(&mut ivr, addr, "sipp-ivr-transfer");
    let [welcome, one, two] = counts[..] else {
        unreachable!("three tones")
    };
    eprintln!("packets: welcome {welcome}, prompt 1 {one}, prompt 2 {two}");
    // 1 s of welcome is 50 packets, 2 s of prompt 1 is 100 (a few lost at the edges).
    assert!((35..=55).contains(&welcome), "welcome packets: {welcome}");
    assert!((80..=105).contains(&one), "prompt 1 packets: {one}");
    assert_eq!(two, 0, "2 transfers, it plays nothing");
    assert!(messages.contains("REFER sip:"), "{messages}");
    assert!(
        messages.contains("Refer-To: <sip:desk@127.0.0.1:5999>")
            || messages.contains("Refer-To: sip:desk@127.0.0.1:5999"),
        "{messages}"
    );
    ivr.wait_for_log("digit 2", WAIT).expect("the ivr saw 2");
    ivr.wait_for_log("ended", WAIT).expect("the call ended");
    ivr.stop();
}

#[test]
fn a_caller_is_hung_up_on_2_without_a_transfer_target() {
    if !require_peer("sipp") {
        return;
    }
    let (mut ivr, addr) = start_ivr("ivr-hangup", &["--max-calls", "4"]);
    let (messages, counts) = call_ivr(&mut ivr, addr, "sipp-ivr-hangup");
    eprintln!("packets: {counts:?}");
    assert!(
        (80..=105).contains(&counts[1]),
        "prompt 1 packets: {counts:?}"
    );
    assert!(!messages.contains("REFER sip:"), "{messages}");
    assert!(messages.contains("BYE sip:"), "{messages}");
    ivr.stop();
}

/// RFC 4733 packets of one key press (`event` 0-15, payload type 101 as the caller offered):
/// three updates 20 ms apart, then the end packet three times (§2.5.1.4).
fn press(socket: &UdpSocket, to: SocketAddr, event: u8, seq: &mut u16, timestamp: u32) {
    for (i, duration) in [160u16, 320, 480, 640, 640, 640].into_iter().enumerate() {
        let end = if i >= 3 { 0x80 } else { 0 };
        let marker = if i == 0 { 0x80 } else { 0 };
        let mut p = vec![0x80, marker | 101];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&timestamp.to_be_bytes());
        p.extend_from_slice(&0x4956_5231u32.to_be_bytes());
        p.extend_from_slice(&[event, end | 10]);
        p.extend_from_slice(&duration.to_be_bytes());
        socket.send_to(&p, to).expect("loopback send");
        *seq = seq.wrapping_add(1);
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn keys_pressed_in_the_media_play_prompt_1_and_hang_up_on_2() {
    if !require_peer("sipp") {
        return;
    }
    let (mut ivr, addr) = start_ivr("ivr-rfc4733", &["--max-calls", "4"]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a free udp port");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("a timeout");
    let rtp_port = socket.local_addr().expect("bound").port();
    let uac = Sipp::lab_scenario("ivr_wait_bye_uac.xml")
        .name("sipp-ivr-rfc4733")
        .remote(addr)
        .service("ivr")
        .inf_rows([format!("{rtp_port};")])
        .calls(1)
        .timeout(Duration::from_secs(40))
        .trace_msg()
        .spawn()
        .expect("sipp starts");
    let tones = [350.0, 600.0, 700.0];
    let mut counts = [0usize; 3];
    let mut buf = [0u8; 2048];
    // Listen to the welcome (1 s) from wherever the IVR sends its RTP; press 1 once it is
    // over, 2 three seconds later (prompt 1 lasts 2 s); listen until the RTP stops.
    let deadline = Instant::now() + WAIT;
    let (mut ivr_rtp, mut pressed, mut last) = (None, 0, Instant::now());
    let mut pressed_at = Instant::now();
    let mut seq = 1000u16;
    while Instant::now() < deadline {
        if let Ok((n, from)) = socket.recv_from(&mut buf) {
            ivr_rtp.get_or_insert(from);
            last = Instant::now();
            if let Some(hz) = tone_of(&buf[..n], &tones) {
                counts[tones.iter().position(|t| *t == hz).expect("one of them")] += 1;
            }
        } else if pressed == 2 && last.elapsed() > Duration::from_secs(2) {
            break;
        }
        let Some(to) = ivr_rtp else { continue };
        if pressed == 0 && counts[0] >= 45 {
            std::thread::sleep(Duration::from_millis(300));
            press(&socket, to, 1, &mut seq, 8000);
            (pressed, pressed_at) = (1, Instant::now());
        } else if pressed == 1 && pressed_at.elapsed() >= Duration::from_secs(3) {
            press(&socket, to, 2, &mut seq, 40_000);
            (pressed, last) = (2, Instant::now());
        }
    }
    let outcome = uac.wait(WAIT);
    eprintln!(
        "packets: welcome {}, prompt 1 {}, prompt 2 {}",
        counts[0], counts[1], counts[2]
    );
    assert_eq!(pressed, 2, "both keys pressed: {counts:?}\n{}", ivr.log());
    assert_eq!(
        (outcome.successful, outcome.failed),
        (1, 0),
        "{}\n{}\n{}",
        outcome.summary(),
        outcome.messages(),
        ivr.log()
    );
    assert!(
        (35..=55).contains(&counts[0]),
        "welcome packets: {counts:?}"
    );
    assert!(
        (80..=105).contains(&counts[1]),
        "prompt 1 packets: {counts:?}"
    );
    assert_eq!(counts[2], 0, "2 hangs up, it plays nothing");
    ivr.wait_for_log("digit 1 \\(Rfc4733\\)", WAIT)
        .expect("1 came in the media");
    ivr.stop();
}

/// An OPTIONS from a fresh socket to `target`; returns the whole response.
fn options(target: SocketAddr, n: u32) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("a free udp port");
    let local = socket.local_addr().expect("bound");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("a timeout");
    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let request = format!(
            "OPTIONS sip:ivr@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-ivr-options-{n};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:dispatcher@{local}>;tag=d{n}\r\n\
             To: <sip:ivr@{target}>\r\n\
             Call-ID: ivr-options-{n}@{local}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let _ = socket.send_to(request.as_bytes(), target);
        if let Ok((len, _)) = socket.recv_from(&mut buf) {
            return String::from_utf8_lossy(&buf[..len]).into_owned();
        }
    }
    panic!("no answer to OPTIONS from {target} in {WAIT:?}");
}

#[test]
fn options_say_503_when_full_and_when_draining_and_the_drained_ivr_exits_0() {
    if !require_peer("sipp") {
        return;
    }
    let (mut ivr, addr) = start_ivr("ivr-options", &["--max-calls", "1"]);
    let idle = options(addr, 1);
    assert!(idle.starts_with("SIP/2.0 200 "), "{idle}");

    // One call (about 6 s long) fills it.
    let (rtp_port, _rx) = rtp_receiver();
    let uac = Sipp::lab_scenario("ivr_dtmf_uac.xml")
        .name("sipp-ivr-options")
        .remote(addr)
        .service("ivr")
        .inf_rows([format!("{rtp_port};")])
        .calls(1)
        .timeout(Duration::from_secs(40))
        .spawn()
        .expect("sipp starts");
    ivr.wait_for_log("answered", WAIT)
        .expect("the call is taken");
    let full = options(addr, 2);
    assert!(full.starts_with("SIP/2.0 503 "), "{full}");
    assert!(full.contains("\r\nRetry-After: 5\r\n"), "{full}");

    ivr.signal(Signal::TERM);
    ivr.wait_for_log("draining", WAIT).expect("the ivr drains");
    let draining = options(addr, 3);
    assert!(draining.starts_with("SIP/2.0 503 "), "{draining}");
    assert!(draining.contains("\r\nRetry-After: 30\r\n"), "{draining}");

    // The call goes on to its end; then the IVR exits by itself, with 0.
    let outcome = uac.wait(WAIT);
    assert_eq!(
        (outcome.successful, outcome.failed),
        (1, 0),
        "{}",
        outcome.summary()
    );
    let status = ivr.wait(WAIT).expect("the ivr exits");
    assert_eq!(status.code(), Some(0), "{}", ivr.log());
    assert!(ivr.log().contains("drained"), "{}", ivr.log());
}
