//! What the phone core keeps of calls that are over: no more than a phone that never had
//! any. Two phone cores call each other in virtual time, a burst of calls at once; once every
//! timer has fired (Timers J, L, M: 32 s) each core is taken out and dropped, and the bytes
//! that frees (its footprint) are compared with a fresh core's. A counting global allocator
//! measures the live bytes exactly.
//!
//! Issue 19, finding 5: `tincan listen --auto-answer` never gave back what a burst of calls
//! had grown its tables to (the calls and the transactions at their peak: kilobytes per
//! concurrent call), so every busier burst raised its idle size for good.

#[path = "util/phone_sim.rs"]
mod phone_sim;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use phone_sim::{NetConfig, Sim};
use tincan::phone::{CallEvent, CallId, CallParams, PhoneConfig, PhoneCore, PhoneEvent};
use tincan_sip::rng::XorShiftRng;

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter only adds
// and subtracts the sizes the caller passes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc`, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ALICE: &str = "127.0.0.1:5061";
const BOB: &str = "127.0.0.1:5062";

/// Calls up at the same time in the burst.
const BURST: usize = 500;

/// What dropping `core` frees.
fn footprint(core: PhoneCore) -> isize {
    let before = LIVE.load(Ordering::Relaxed);
    drop(core);
    before - LIVE.load(Ordering::Relaxed)
}

fn fresh_core() -> PhoneCore {
    let config = PhoneConfig {
        user: "fresh".into(),
        ..PhoneConfig::default()
    };
    PhoneCore::new(
        config,
        Box::new(<XorShiftRng as rand_core::SeedableRng>::seed_from_u64(1)),
    )
}

fn ended(sim: &Sim, node: usize) -> usize {
    sim.phone(node)
        .events
        .iter()
        .filter(|(_, e)| {
            matches!(
                e,
                PhoneEvent::Call {
                    event: CallEvent::Ended(_),
                    ..
                }
            )
        })
        .count()
}

#[test]
fn a_burst_of_calls_leaves_nothing_behind() {
    let fresh = footprint(fresh_core());

    let mut sim = Sim::new(7, NetConfig::perfect());
    let alice = sim.add_phone(ALICE, "alice");
    // The whole burst is taken at once: above the default call limit (admission control is
    // not what this test measures).
    let bob = sim.add_phone_with(
        BOB,
        PhoneConfig {
            user: "bob".into(),
            call_limit: 2 * BURST,
            ..PhoneConfig::default()
        },
    );
    let mut placed: Vec<CallId> = Vec::new();
    for _ in 0..BURST {
        let uri = format!("sip:bob@{BOB}");
        placed.push(
            sim.act(alice, |c, now| c.call(now, &uri, CallParams::default()))
                .expect("a callable uri"),
        );
    }
    sim.run_for(Duration::from_secs(1));
    let incoming = sim.incoming(bob);
    assert_eq!(incoming.len(), BURST, "every call reached bob");
    for b in incoming {
        sim.act(bob, |c, now| c.accept(now, b)).expect("accepted");
    }
    sim.run_for(Duration::from_secs(1));
    assert_eq!(sim.core(bob).calls().count(), BURST, "every call is up");
    for a in placed {
        sim.act(alice, |c, now| c.hangup(now, a)).expect("hangup");
    }
    // Every transaction's last timer (32 s) and then some.
    sim.run_for(Duration::from_secs(40));
    assert_eq!(ended(&sim, alice), BURST, "alice's calls ended");
    assert_eq!(ended(&sim, bob), BURST, "bob's calls ended");
    for node in [alice, bob] {
        assert!(sim.core(node).is_idle(), "node {node} idle");
        let busy: Vec<_> = sim
            .core_ref(node)
            .table_sizes()
            .into_iter()
            .filter(|(name, n)| {
                *n > 0 && !matches!(*name, "ended_call_ids" | "health.srtt" | "endpoint.local")
            })
            .collect();
        assert!(busy.is_empty(), "node {node} still holds {busy:?}");
    }

    for (node, name) in [(alice, "alice"), (bob, "bob")] {
        let core = std::mem::replace(sim.core(node), fresh_core());
        let kept = footprint(core);
        // The 64 Call-IDs remembered for crossing BYEs, the round-trip estimate of the peer.
        let slack = 32 * 1024;
        assert!(
            kept < fresh + slack,
            "{name} holds {kept} bytes after {BURST} calls, a fresh phone {fresh}: \
             {} bytes more per call of the burst",
            (kept - fresh) / BURST as isize
        );
    }
}
