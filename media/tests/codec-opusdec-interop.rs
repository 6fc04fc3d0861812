//! Interop: Tincan's Opus packets, written to an Ogg Opus file by our own writer, are
//! decoded by libopus' reference decoder `opusdec` (Debian `opus-tools`) into a WAV file
//! that holds the tone we sent. Without `opusdec` the test skips (`skip::skip`; a failure
//! under `CI=true`); CI installs it (scripts/install-deps.sh).

#[path = "codec-util/mod.rs"]
mod util;

use std::path::Path;
use std::process::Command;

use tincan_media::codec::ogg::OggOpusWriter;
use tincan_media::codec::opus::{OpusConfig, OpusEncoder};
use tincan_media::codec::{AudioEncoder, FRAME_SAMPLES};
use tincan_media::device::{AudioSource, SourceStatus, ToneSource, WavSource};

#[path = "../../interop-tests/src/skip.rs"]
mod skip;

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|p| Path::new(&p).join(bin).is_file())
    })
}

#[test]
fn opusdec_decodes_our_ogg_opus_file() {
    if !on_path("opusdec") {
        skip::skip("opusdec not installed (Debian opus-tools; scripts/install-deps.sh --test)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("tincan-opusdec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    let ogg = dir.join("tone.opus");
    let wav = dir.join("tone.wav");

    // 3 s of 1 kHz at -12 dBFS.
    let mut encoder = OpusEncoder::new(OpusConfig::default()).expect("encoder");
    let mut tone = ToneSource::new(1000.0, -12.0).with_frames(150);
    let file = std::fs::File::create(&ogg).expect("ogg file");
    let mut writer =
        OggOpusWriter::new(std::io::BufWriter::new(file), 0x7117_ca17, 312).expect("headers");
    let mut frame = vec![0i16; FRAME_SAMPLES];
    let mut packet = Vec::new();
    while tone.read_frame(&mut frame).expect("tone") == SourceStatus::Audio {
        packet.clear();
        encoder.encode(&frame, &mut packet).expect("encodes");
        writer
            .write_packet(&packet, FRAME_SAMPLES as u32)
            .expect("writes");
    }
    writer.finish().expect("finishes");

    let out = Command::new("opusdec")
        .args(["--quiet", "--rate", "48000"])
        .arg(&ogg)
        .arg(&wav)
        .output()
        .expect("opusdec runs");
    assert!(
        out.status.success(),
        "opusdec failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut decoded = WavSource::open(&wav).expect("opusdec wrote a wav file");
    let mut pcm = Vec::new();
    while decoded.read_frame(&mut frame).expect("wav") == SourceStatus::Audio {
        pcm.extend_from_slice(&frame);
    }
    // The pre-skip was applied and the granule position trimmed the end: 3 s exactly.
    assert!(
        (pcm.len() as i64 - 144_000).abs() <= FRAME_SAMPLES as i64,
        "{} samples",
        pcm.len()
    );
    let x = &pcm[24_000..120_000];
    let hz = util::zero_crossing_hz(x, 48_000.0);
    let rms = util::rms(x);
    let expected = 32767.0 * 10f64.powf(-12.0 / 20.0) / 2f64.sqrt();
    println!(
        "opusdec output: {} samples, {hz:.1} Hz, rms {rms:.0} (sent {expected:.0})",
        pcm.len()
    );
    assert!((hz - 1000.0).abs() < 5.0, "frequency {hz}");
    assert!((rms / expected - 1.0).abs() < 0.1, "level {rms}");
    std::fs::remove_dir_all(&dir).ok();
}
