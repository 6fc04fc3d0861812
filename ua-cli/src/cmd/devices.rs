//! `tincan devices [--json]`: the audio devices cpal sees.

use std::process::ExitCode;

#[cfg(feature = "cpal")]
use tincan_media::device::list_devices;

/// Arguments of `tincan devices`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// One JSON object per device.
    #[arg(long)]
    json: bool,
}

/// Runs the command.
#[cfg(feature = "cpal")]
pub fn run(args: &Args) -> ExitCode {
    let devices = match list_devices() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tincan devices: {e}");
            return ExitCode::from(1);
        }
    };
    if devices.is_empty() && !args.json {
        println!("no audio devices (tincan works headless with --play/--record WAV files)");
    }
    for d in devices {
        if args.json {
            let v = serde_json::json!({
                "id": d.id,
                "name": d.name,
                "input": d.input,
                "output": d.output,
                "default_input": d.default_input,
                "default_output": d.default_output,
                "default": d.default_input || d.default_output,
            });
            println!("{v}");
        } else {
            let mut kinds = Vec::new();
            if d.input {
                kinds.push(if d.default_input {
                    "input (default)"
                } else {
                    "input"
                });
            }
            if d.output {
                kinds.push(if d.default_output {
                    "output (default)"
                } else {
                    "output"
                });
            }
            println!("{}\t{}\t{}", d.id, d.name, kinds.join(", "));
        }
    }
    ExitCode::SUCCESS
}

/// Runs the command: this build has no audio devices.
#[cfg(not(feature = "cpal"))]
pub fn run(_args: &Args) -> ExitCode {
    eprintln!("tincan devices: this tincan is built without audio devices (feature `cpal`)");
    ExitCode::from(1)
}
