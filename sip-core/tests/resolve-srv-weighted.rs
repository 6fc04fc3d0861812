//! RFC 2782 weighted selection: statistics with a fixed seed, priorities first, zero weights
//! last, determinism for a given seed.

#[path = "resolve-common/mod.rs"]
mod common;

use common::rng;
use tincan_sip::resolve::{DnsRecord, RecordData, order_srv};

fn srv(priority: u16, weight: u16, target: &str) -> DnsRecord {
    DnsRecord::new(
        60,
        RecordData::Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        },
    )
}

#[test]
fn weights_10_and_90_are_picked_first_about_10_and_90_percent_of_the_time() {
    let records = [srv(10, 10, "light"), srv(10, 90, "heavy")];
    let mut r = rng(42);
    let draws = 10_000;
    let light_first = (0..draws)
        .filter(|_| order_srv("_sip._udp.t", &records, &mut r)[0].target == "light")
        .count();
    // Expected 1000; 4 standard deviations (sqrt(10000*0.1*0.9) = 30) either side.
    assert!(
        (880..=1120).contains(&light_first),
        "light first {light_first} times of {draws}"
    );
}

#[test]
fn three_way_split_is_proportional() {
    let records = [srv(1, 20, "a"), srv(1, 30, "b"), srv(1, 50, "c")];
    let mut r = rng(7);
    let mut counts = [0usize; 3];
    for _ in 0..10_000 {
        let first = order_srv("_sip._udp.t", &records, &mut r)[0].target.clone();
        counts[["a", "b", "c"].iter().position(|t| *t == first).unwrap()] += 1;
    }
    for (count, expected) in counts.iter().zip([2000, 3000, 5000]) {
        assert!(count.abs_diff(expected) < 200, "{counts:?}");
    }
}

#[test]
fn lower_priority_always_first_and_zero_weight_last_in_its_group() {
    let records = [
        srv(20, 100, "backup"),
        srv(10, 0, "zero"),
        srv(10, 5, "small"),
        srv(10, 50, "big"),
    ];
    let mut r = rng(3);
    for _ in 0..1000 {
        let order: Vec<String> = order_srv("n", &records, &mut r)
            .into_iter()
            .map(|s| s.target)
            .collect();
        assert_eq!(order.len(), 4);
        assert_eq!(order[2], "zero");
        assert_eq!(order[3], "backup");
    }
}

#[test]
fn all_zero_weights_keep_the_server_order() {
    let records = [srv(10, 0, "a"), srv(10, 0, "b"), srv(10, 0, "c")];
    let order: Vec<String> = order_srv("n", &records, &mut rng(1))
        .into_iter()
        .map(|s| s.target)
        .collect();
    assert_eq!(order, ["a", "b", "c"]);
}

#[test]
fn same_seed_same_order() {
    let records: Vec<DnsRecord> = (0..8).map(|i| srv(1, 10 + i, &format!("h{i}"))).collect();
    let a = order_srv("n", &records, &mut rng(99));
    let b = order_srv("n", &records, &mut rng(99));
    assert_eq!(a, b);
}
