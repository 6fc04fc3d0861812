//! Capture processing in the phone core, in virtual time: the stages chosen before a call
//! go into its media session's configuration; switching them while a call runs tells its
//! session at once, and the phone keeps the choice for its next calls. The config's `[audio]` keys
//! choose the stages, each on unless switched off.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::time::Duration;

use phone_sim::{NetConfig, Sim};
use tincan::phone::{CallId, CallParams, MediaCommand};
use tincan_media::dsp::ProcessingConfig;

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

/// The processing a phone gave a call's session: at its start, then each switch.
fn processing_of(sim: &Sim, node: usize, call: CallId) -> Vec<(&'static str, ProcessingConfig)> {
    sim.phone(node)
        .media
        .iter()
        .filter_map(|(_, m)| match m {
            MediaCommand::Start { call: c, config } if *c == call => {
                Some(("start", config.processing))
            }
            MediaCommand::SetProcessing {
                call: c,
                processing,
            } if *c == call => Some(("set", *processing)),
            _ => None,
        })
        .collect()
}

fn answered_call(sim: &mut Sim, alice: usize, bob: usize) -> CallId {
    let uri = format!("sip:bob@{BOB}");
    let earlier = sim.incoming(bob).len();
    let a = sim
        .act(alice, |c, now| c.call(now, &uri, CallParams::default()))
        .expect("a callable uri");
    assert!(
        sim.run_until_with(Duration::from_secs(1), |s| s.incoming(bob).len() > earlier),
        "the INVITE reached bob"
    );
    let b = *sim.incoming(bob).last().expect("an incoming call");
    sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    assert!(sim.run_until_with(Duration::from_secs(2), |s| s.answered(alice, a)));
    sim.run_for(Duration::from_millis(100));
    a
}

#[test]
fn processing_goes_into_new_calls_and_follows_into_running_ones() {
    let mut sim = Sim::new(8, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    let bob = sim.add_phone(BOB, "bob");
    // A library phone processes nothing unless asked.
    assert_eq!(sim.act(alice, |c, _| c.processing()), ProcessingConfig::OFF);
    let all = ProcessingConfig::default();
    sim.act(alice, |c, now| c.set_processing(now, all));
    let a = answered_call(&mut sim, alice, bob);
    assert_eq!(processing_of(&sim, alice, a), [("start", all)]);

    // Echo cancellation off (a headset): the running call's session hears of it at once.
    let headset = ProcessingConfig {
        echo_cancellation: false,
        ..all
    };
    sim.act(alice, |c, now| c.set_processing(now, headset));
    assert_eq!(
        processing_of(&sim, alice, a),
        [("start", all), ("set", headset)]
    );
    // Bob's phone was not asked: its session runs without processing.
    let b = sim.incoming(bob)[0];
    assert_eq!(
        processing_of(&sim, bob, b),
        [("start", ProcessingConfig::OFF)]
    );

    assert_eq!(sim.act(alice, |c, _| c.processing()), headset);
}

#[test]
fn audio_keys_choose_the_stages_and_default_to_on() {
    use tincan::config::Config;
    let none = Config::from_str_named("", "test").expect("an empty config");
    assert_eq!(none.audio.processing(), ProcessingConfig::default());
    let headset = Config::from_str_named(
        "[audio]\necho_cancellation = false\nauto_gain = false\n",
        "test",
    )
    .expect("a valid config");
    assert_eq!(
        headset.audio.processing(),
        ProcessingConfig {
            echo_cancellation: false,
            noise_suppression: true,
            auto_gain: false,
        }
    );
    let wrong = Config::from_str_named("[audio]\nnoise_suppression = \"yes\"\n", "test");
    assert!(wrong.is_err(), "a string is not a boolean");
}
