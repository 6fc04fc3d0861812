//! Fuzz the stream framer: any split of the input into pushes gives the same frames.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tincan_sip::message::fuzz_one_stream(data);
});
