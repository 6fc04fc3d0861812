//! The messages libasound gives for a device that cannot be opened are not kept: a machine
//! without a sound card (a server running `tincan listen --auto-answer`) tries the default
//! devices for every call, and each try must leave the C heap as it found it.
//!
//! Issue 19, finding 5: the thread's one error buffer kept every message, about a kilobyte
//! per call answered, for the life of the process. On a machine whose devices open, libasound
//! says nothing and this holds trivially.
#![cfg(all(feature = "cpal", target_os = "linux"))]

use tincan_media::device::{CpalSink, CpalSource, DeviceSelector};

/// Bytes in use on the C heap (every arena, and the blocks large enough to be mmap()ed).
fn c_heap_in_use() -> usize {
    // SAFETY: mallinfo2 reads the allocator's statistics; it has no preconditions.
    let m = unsafe { libc::mallinfo2() };
    m.uordblks + m.hblkhd
}

fn try_devices() {
    // Opened and dropped at once when they exist; an error each when they do not.
    let _ = CpalSource::open(DeviceSelector::Default);
    let _ = CpalSink::open(DeviceSelector::Default);
}

#[test]
fn failed_opens_leave_no_messages_behind() {
    // The first tries load libasound's configuration (kept for the process).
    for _ in 0..10 {
        try_devices();
    }
    let before = c_heap_in_use();
    let tries = 200;
    for _ in 0..tries {
        try_devices();
    }
    let grown = c_heap_in_use().saturating_sub(before);
    assert!(
        grown < 32 * 1024,
        "the C heap grew {grown} bytes over {tries} tries of the default devices ({} per try)",
        grown / tries
    );
}
