//! `tincan demo`: two Tincan phones on loopback call each other with SRTP and Opus; a
//! voice-like signal flows both ways, live state and quality are shown, and a summary says
//! whether the audio arrived intact. With `--audio`, the default sound devices are used as an
//! echo test instead.

use std::process::ExitCode;
use std::time::Duration;

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{CallEvent, PhoneConfig, PhoneEvent};
use tincan_media::codec::CodecKind;
use tincan_media::device::LoopbackDevice;
#[cfg(feature = "cpal")]
use tincan_media::device::{CpalSink, CpalSource, DeviceSelector};
use tincan_media::sdp::SrtpPolicy;

use super::call::{Devices, mos_text};

mod two_phones;

use two_phones::{AudioCheck, DemoConfig, run_demo};

/// Arguments of `tincan demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seconds of conversation.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Use the default microphone and speaker: what you say comes back through the call.
    #[arg(long)]
    audio: bool,
    /// One JSON object per event per line, then the summary object.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
pub fn run(args: &Args) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tincan demo: {e}");
            return ExitCode::from(2);
        }
    };
    if args.audio {
        return rt.block_on(echo(args));
    }
    let json = args.json;
    let config = DemoConfig {
        seconds: args.seconds.clamp(1.0, 600.0),
        sip_trace: super::sip_trace(),
        ..DemoConfig::default()
    };
    if !json {
        println!(
            "Tincan demo: alice calls bob on 127.0.0.1 (SIP over UDP, Opus, SRTP required), {} s of voice each way",
            config.seconds
        );
    }
    let result = rt.block_on(run_demo(&config, |who, ev| {
        let who = if who == "caller" { "alice" } else { "bob" };
        if json {
            if let Some(mut v) = super::call::event_json(ev) {
                v["party"] = who.into();
                println!("{v}");
            }
            return;
        }
        match ev {
            CallEvent::Calling { target, .. } if who == "alice" => {
                println!(
                    "[alice] calling bob via {}",
                    super::call::target_text(target)
                )
            }
            CallEvent::Progress { status, reason } => println!("[{who}] {status} {reason}"),
            CallEvent::Answered {
                setup, codec, srtp, ..
            } if who == "alice" => println!(
                "[alice] answered in {} ms: {}{}",
                setup.as_millis(),
                codec.name().to_ascii_lowercase(),
                if *srtp { " over SRTP" } else { "" }
            ),
            CallEvent::Quality(q) if who == "alice" => println!(
                "[alice] rtp sent {} received {} lost {:.1}% jitter {:.1} ms MOS {}",
                q.packets_sent,
                q.packets_received,
                q.loss_percent,
                q.jitter_ms,
                mos_text(q.mos)
            ),
            CallEvent::Ended(end) => {
                println!("[{who}] call ended: {}", two_phones::end_reason(end.reason))
            }
            CallEvent::Warning(w) => println!("[{who}] warning: {w}"),
            _ => {}
        }
    }));
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tincan demo: {e}");
            return ExitCode::from(1);
        }
    };
    if json {
        let mut v = serde_json::to_value(&report).expect("the report serializes");
        v["event"] = "summary".into();
        v["ok"] = report.ok().into();
        println!("{v}");
    } else {
        let dir = |name: &str, c: &AudioCheck| {
            println!(
                "  {name}: {:.1} s received, {:.0}% of the speech matched (correlation {:.2}), delay {:.0} ms: {}",
                c.received_s,
                c.matched * 100.0,
                c.correlation,
                c.delay_ms,
                if c.intact { "intact" } else { "NOT intact" }
            )
        };
        println!("summary:");
        println!(
            "  setup {} ms, codec {}{}",
            report.setup_ms,
            report.codec,
            if report.srtp { ", SRTP" } else { "" }
        );
        for (who, q) in [("alice", &report.caller), ("bob", &report.callee)] {
            println!(
                "  {who}: sent {} received {} lost {:.1}% jitter {:.1} ms concealed {:.1}% MOS {}",
                q.packets_sent,
                q.packets_received,
                q.loss_percent,
                q.jitter_ms,
                q.concealed_percent,
                mos_text(q.mos)
            );
        }
        dir("alice -> bob", &report.caller_to_callee);
        dir("bob -> alice", &report.callee_to_caller);
        println!(
            "  result: {}",
            if report.ok() {
                "OK, the audio arrived intact both ways"
            } else {
                "FAILED"
            }
        );
    }
    if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Echo test: alice uses the sound devices, bob sends back what he receives.
async fn echo(args: &Args) -> ExitCode {
    let (source, sink) = match sound_devices() {
        Ok(devices) => devices,
        Err(e) => {
            eprintln!("tincan demo --audio: {e}");
            return ExitCode::from(1);
        }
    };
    let phone = |user: &str| {
        let core = PhoneConfig {
            user: user.into(),
            codecs: vec![CodecKind::Opus],
            srtp: SrtpPolicy::Required,
            ..PhoneConfig::default()
        };
        let mut b = Phone::builder()
            .config(core)
            .bind("127.0.0.1:0".parse().expect("a valid literal"));
        if let Some(t) = super::sip_trace() {
            b = b.sip_trace(t);
        }
        b.start()
    };
    let (mut alice, mut bob) = match (phone("alice").await, phone("bob").await) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("tincan demo: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(bob_addr) = bob.local_addresses().first().map(|(_, a)| *a) else {
        return ExitCode::from(1);
    };
    tokio::spawn(async move {
        let mut taken = false;
        while let Some(ev) = bob.next_event().await {
            if let PhoneEvent::Incoming(incoming) = ev
                && !taken
            {
                taken = true;
                let (back_sink, back_source) = LoopbackDevice::new(50).split();
                let _ = bob
                    .accept(incoming.call, Box::new(back_source), Box::new(back_sink))
                    .await;
            }
        }
    });
    let options = CallOptions {
        source,
        sink,
        ..CallOptions::default()
    };
    let call = match alice.call(&format!("sip:bob@{bob_addr}"), options).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tincan demo: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "echo test: speak, you should hear yourself; {} s",
        args.seconds
    );
    let end = tokio::time::Instant::now() + Duration::from_secs_f64(args.seconds.max(1.0));
    let mut code = ExitCode::from(1);
    let mut hung_up = false;
    loop {
        tokio::select! {
            ev = alice.next_event() => match ev {
                Some(PhoneEvent::Call { call: c, event: CallEvent::Ended(e) }) if c == call => {
                    if e.answered { code = ExitCode::SUCCESS; }
                    break;
                }
                Some(PhoneEvent::Call { call: c, event: CallEvent::Quality(q) }) if c == call => {
                    println!("rtp sent {} received {} MOS {}", q.packets_sent, q.packets_received, mos_text(q.mos))
                }
                Some(_) => {}
                None => break,
            },
            () = tokio::time::sleep_until(end), if !hung_up => {
                hung_up = true;
                let _ = alice.hangup(call).await;
            }
        }
    }
    alice.shutdown().await;
    code
}

/// The default microphone and speaker.
#[cfg(feature = "cpal")]
fn sound_devices() -> Result<Devices, String> {
    let source =
        CpalSource::open(DeviceSelector::Default).map_err(|e| format!("no microphone: {e}"))?;
    let sink = CpalSink::open(DeviceSelector::Default).map_err(|e| format!("no speaker: {e}"))?;
    Ok((Box::new(source), Box::new(sink)))
}

/// This build has no audio devices.
#[cfg(not(feature = "cpal"))]
fn sound_devices() -> Result<Devices, String> {
    Err("this tincan is built without audio devices (feature `cpal`)".to_owned())
}
