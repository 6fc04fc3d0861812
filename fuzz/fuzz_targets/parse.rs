//! Fuzz the datagram parser, the UA checks, typed access and printing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tincan_sip::message::fuzz_one_datagram(data);
});
