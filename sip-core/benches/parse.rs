//! SIP message parsing: Tincan's header index, Tincan's parse with typed access, and (with
//! the `bench-compare` feature) the same messages and the same typed access through rsip 0.4,
//! rsipstack's parser and ezk-sip-types.
//!
//! ```text
//! cargo bench -p tincan-sip --bench parse                              # Tincan only
//! cargo bench -p tincan-sip --bench parse --features bench-compare     # side by side
//! ```
//!
//! Each benchmark parses one datagram and, except for `tincan-index`, reads the same typed
//! fields: the top Via's branch, the From tag, the To (and its tag), the Call-ID, the CSeq
//! number and method, and every Contact's `expires`. Before measuring a comparison, the bench
//! checks that the other parser reads the same values as Tincan from that message; one that
//! fails or reads something else is not measured on it (the bench says so on stderr).
//! `tincan-typed-uris` also parses the URIs of From, To and every Contact, which Tincan's typed
//! reads leave as text until asked and the other parsers parse with the header.
//! Throughput is in bytes; messages per second are the inverse of the time per iteration
//! (docs/benchmarks.md has both).
//!
//! Time is the benchmark thread's CPU time, not wall-clock time: on a machine shared with other
//! jobs, the time the thread waits for a core would otherwise be counted as parsing time.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput, criterion_group};
use tincan_sip::message::{Message, Method};

/// A message of the benchmark.
struct Sample {
    /// Benchmark group name.
    name: &'static str,
    /// The datagram, byte-exact.
    bytes: &'static [u8],
}

/// The messages (see `benches/data/`).
const SAMPLES: [Sample; 4] = [
    Sample {
        name: "invite-sdp",
        bytes: include_bytes!("data/invite-sdp.sip"),
    },
    Sample {
        name: "401-challenge",
        bytes: include_bytes!("data/401-challenge.sip"),
    },
    Sample {
        name: "register-200-contacts",
        bytes: include_bytes!("data/register-200-contacts.sip"),
    },
    // The same without the RFC 5626 `+sip.instance` and `reg-id` parameters, which rsip 0.4
    // cannot parse.
    Sample {
        name: "register-200-contacts-plain",
        bytes: include_bytes!("data/register-200-contacts-plain.sip"),
    },
];

/// What every implementation reads from a message: lengths and numbers of the same typed
/// fields, so that results can be compared without allocating in the measured loop.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Extract {
    /// Length of the top Via's branch.
    branch: usize,
    /// Length of the From tag.
    from_tag: usize,
    /// Length of the To tag (0 without one).
    to_tag: usize,
    /// Length of the Call-ID.
    call_id: usize,
    /// CSeq number.
    cseq: u32,
    /// CSeq method: 1 INVITE, 2 REGISTER, 0 other.
    method: u8,
    /// Number of Contact values.
    contacts: usize,
    /// Sum of the Contacts' `expires` parameters.
    expires: u64,
}

/// Tincan: [`Message::parse`] then the typed accessors.
fn tincan_typed(buf: &Bytes) -> Option<Extract> {
    tincan_reads::<false>(buf)
}

/// [`tincan_typed`], and the URIs of From, To and every Contact parsed too (a name-addr's URI
/// is parsed when it is read; the other parsers parse it with the header).
fn tincan_typed_uris(buf: &Bytes) -> Option<Extract> {
    tincan_reads::<true>(buf)
}

/// The typed reads of the bench, with (`URIS`) or without the name-addr URIs.
#[inline(always)]
fn tincan_reads<const URIS: bool>(buf: &Bytes) -> Option<Extract> {
    let msg = Message::parse(buf.clone()).ok()?;
    let via = msg.top_via()?.ok()?;
    let from = msg.from()?.ok()?;
    let to = msg.to()?.ok()?;
    if URIS {
        black_box(from.uri().ok()?);
        black_box(to.uri().ok()?);
    }
    let call_id = msg.call_id()?.ok()?;
    let cseq = msg.cseq()?.ok()?;
    let mut out = Extract {
        branch: via.branch()?.len(),
        from_tag: from.tag()?.len(),
        to_tag: to.tag().map_or(0, str::len),
        call_id: call_id.as_str().len(),
        cseq: cseq.seq,
        method: match cseq.method {
            Method::Invite => 1,
            Method::Register => 2,
            _ => 0,
        },
        ..Extract::default()
    };
    for contact in msg.contacts() {
        let contact = contact.ok()?;
        if URIS && let Some(address) = contact.address() {
            black_box(address.uri().ok()?);
        }
        out.contacts += 1;
        out.expires += u64::from(contact.expires().unwrap_or(0));
    }
    Some(out)
}

/// The benchmark thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), printed like wall-clock time.
struct ThreadCpuTime {
    /// Lends its duration formatter.
    wall: WallTime,
}

impl Measurement for ThreadCpuTime {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }

    fn end(&self, start: ThreadTime) -> Duration {
        start.elapsed()
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

fn cpu_time_criterion() -> Criterion<ThreadCpuTime> {
    Criterion::default().with_measurement(ThreadCpuTime { wall: WallTime })
}

fn bench_parse(c: &mut Criterion<ThreadCpuTime>) {
    for sample in &SAMPLES {
        let buf = Bytes::from_static(sample.bytes);
        let mut group = c.benchmark_group(sample.name);
        group.throughput(Throughput::Bytes(sample.bytes.len() as u64));
        group.bench_function("tincan-index", |b| {
            b.iter(|| {
                Message::parse(black_box(&buf).clone())
                    .map(black_box)
                    .is_ok()
            })
        });
        group.bench_function("tincan-typed", |b| {
            b.iter(|| black_box(tincan_typed(black_box(&buf))))
        });
        group.bench_function("tincan-typed-uris", |b| {
            b.iter(|| black_box(tincan_typed_uris(black_box(&buf))))
        });
        #[cfg(feature = "bench-compare")]
        {
            let expected = tincan_typed(&buf).expect("the bench messages parse with Tincan");
            for (parser, typed) in compare::PARSERS {
                // A parser that fails, or reads other values, would be measured doing other
                // work than Tincan: it is left out of this message's group, loudly.
                match typed(&buf) {
                    Some(got) if got == expected => {
                        group.bench_function(format!("{parser}-typed"), |b| {
                            b.iter(|| black_box(typed(black_box(&buf))))
                        });
                    }
                    got => eprintln!(
                        "NOT MEASURED: {parser} on {}: it reads {got:?}, Tincan reads {expected:?}",
                        sample.name
                    ),
                }
            }
        }
        group.finish();
    }
}

/// The same work through the other Rust SIP parsers.
#[cfg(feature = "bench-compare")]
mod compare {
    use super::Extract;
    use bytes::Bytes;

    /// Parses a message and reads the [`Extract`] fields from it.
    pub(crate) type Typed = fn(&Bytes) -> Option<Extract>;

    /// The other parsers, each doing the same work as [`super::tincan_typed`].
    pub(crate) const PARSERS: [(&str, Typed); 3] = [
        ("rsip", rsip_typed),
        ("rsipstack", rsipstack_typed),
        ("ezk", ezk_typed),
    ];

    /// rsip 0.4: `SipMessage::try_from(&[u8])`, then the untyped headers' `typed()`.
    fn rsip_typed(buf: &Bytes) -> Option<Extract> {
        use rsip::prelude::*;

        let msg = rsip::SipMessage::try_from(&buf[..]).ok()?;
        let via = msg.via_header().ok()?.typed().ok()?;
        let from = msg.from_header().ok()?.typed().ok()?;
        let to = msg.to_header().ok()?.typed().ok()?;
        let call_id = msg.call_id_header().ok()?;
        let cseq = msg.cseq_header().ok()?.typed().ok()?;
        let mut out = Extract {
            branch: via.branch()?.value().len(),
            from_tag: from.tag()?.value().len(),
            to_tag: to.tag().map_or(0, |t| t.value().len()),
            call_id: call_id.value().len(),
            cseq: cseq.seq,
            method: match cseq.method {
                rsip::Method::Invite => 1,
                rsip::Method::Register => 2,
                _ => 0,
            },
            ..Extract::default()
        };
        for contact in msg.contact_headers() {
            let contact = contact.typed().ok()?;
            out.contacts += 1;
            out.expires += contact
                .expires()
                .and_then(|e| e.value().parse::<u64>().ok())
                .unwrap_or(0);
        }
        Some(out)
    }

    /// rsipstack 0.7 (its own fork of rsip in `rsipstack::sip`, parsed by
    /// `rsipstack::sip::parser::parse_message`, which `SipMessage::try_from` calls).
    fn rsipstack_typed(buf: &Bytes) -> Option<Extract> {
        use rsipstack::sip::prelude::*;

        let msg = rsipstack::sip::SipMessage::try_from(&buf[..]).ok()?;
        let via = msg.top_via_header().ok()?.typed().ok()?;
        let from = msg.from_header().ok()?.typed().ok()?;
        let to = msg.to_header().ok()?.typed().ok()?;
        let call_id = msg.call_id_header().ok()?;
        let cseq = msg.cseq_header().ok()?.typed().ok()?;
        let mut out = Extract {
            branch: via.branch()?.value().len(),
            from_tag: from.tag()?.value().len(),
            to_tag: to.tag().map_or(0, |t| t.value().len()),
            call_id: call_id.value().len(),
            cseq: cseq.seq,
            method: match cseq.method {
                rsipstack::sip::Method::Invite => 1,
                rsipstack::sip::Method::Register => 2,
                _ => 0,
            },
            ..Extract::default()
        };
        for contact in msg.typed_contact_headers().ok()? {
            out.contacts += 1;
            out.expires += u64::from(contact.expires().unwrap_or(0));
        }
        Some(out)
    }

    /// ezk-sip-types 0.6 has no one-call message parser: this is what a transport of ezk-sip
    /// does with a datagram ([`PullParser`](ezk_sip_types::msg::PullParser) for the lines,
    /// `MessageLine` for the start line, `Line` and `Headers::insert` for each header, the
    /// body cut at Content-Length), then `Headers::get_named`/`get` for the typed headers.
    fn ezk_typed(buf: &Bytes) -> Option<Extract> {
        use ezk_sip_types::header::typed::{CSeq, CallID, Contact, ContentLength, FromTo, Via};
        use ezk_sip_types::msg::{Line, MessageLine, PullParser};
        use ezk_sip_types::parse::Parse;
        use ezk_sip_types::{Headers, Method, Name};

        let mut lines = PullParser::new(buf, 0);
        let start = std::str::from_utf8(lines.next()?.ok()?).ok()?;
        let (_, start) = MessageLine::parse(buf)(start).ok()?;
        let mut headers = Headers::with_capacity(16);
        for line in &mut lines {
            let line = std::str::from_utf8(line.ok()?).ok()?;
            let (_, line) = Line::parse(buf, line).ok()?;
            headers.insert(line.name, line.value);
        }
        let head_end = lines.head_end();
        let length = headers
            .get_named::<ContentLength>()
            .map_or(0, |ContentLength(l)| l);
        let body = buf.get(head_end..head_end.checked_add(length)?)?;
        let body = buf.slice_ref(body);
        std::hint::black_box((&start, &body));

        let via: Via = headers.get_named().ok()?;
        let from: FromTo = headers.get(Name::FROM).ok()?;
        let to: FromTo = headers.get(Name::TO).ok()?;
        let call_id: CallID = headers.get_named().ok()?;
        let cseq: CSeq = headers.get_named().ok()?;
        let mut out = Extract {
            branch: via.params.get_val("branch")?.len(),
            from_tag: from.tag?.len(),
            to_tag: to.tag.map_or(0, |t| t.len()),
            call_id: call_id.0.len(),
            cseq: cseq.cseq,
            method: if cseq.method == Method::INVITE {
                1
            } else if cseq.method == Method::REGISTER {
                2
            } else {
                0
            },
            ..Extract::default()
        };
        if headers.contains(&Name::CONTACT) {
            let contacts: Vec<Contact> = headers.get_named().ok()?;
            for contact in contacts {
                out.contacts += 1;
                out.expires += contact
                    .params
                    .get_val("expires")
                    .and_then(|e| e.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        Some(out)
    }
}

criterion_group! {
    name = benches;
    config = cpu_time_criterion();
    targets = bench_parse
}

/// Criterion's benches, or with `PARSE_PAIRED=<rounds>` (and `bench-compare`) the paired
/// comparison of [`paired`].
fn main() {
    #[cfg(feature = "bench-compare")]
    if let Some(rounds) = std::env::var("PARSE_PAIRED")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        paired::run(rounds);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// Ratios measured in pairs: criterion measures one parser for seconds, then the next, so a
/// shared machine whose speed drifts between them moves the ratio (by 30 % between runs
/// here). This mode interleaves short bursts of every parser, round after round, in a
/// rotating order, and reports the median of each round's ratio, so that a slow phase of
/// the machine slows both sides of a ratio alike.
///
/// ```text
/// PARSE_PAIRED=400 cargo bench -p tincan-sip --bench parse --features bench-compare
/// ```
#[cfg(feature = "bench-compare")]
mod paired {
    use std::hint::black_box;

    use bytes::Bytes;
    use cpu_time::ThreadTime;

    use super::{SAMPLES, compare, tincan_typed, tincan_typed_uris};

    /// Iterations of one parser in one burst, unless `PARSE_BURST` says otherwise: a
    /// burst long enough that the caches hold the parser's code and data, as in criterion's
    /// loop, and short enough that the machine's speed does not drift within a round.
    const BURST: u32 = 1000;

    /// CPU time per message of `n` parses, in nanoseconds.
    fn burst(typed: compare::Typed, buf: &Bytes, n: u32) -> f64 {
        let start = ThreadTime::now();
        for _ in 0..n {
            black_box(typed(black_box(buf)));
        }
        start.elapsed().as_nanos() as f64 / f64::from(n)
    }

    /// The median of `v` (sorted in place).
    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// The first and third quartiles of sorted `v`.
    fn quartiles(v: &[f64]) -> (f64, f64) {
        (v[v.len() / 4], v[v.len() * 3 / 4])
    }

    pub(super) fn run(rounds: usize) {
        let n = std::env::var("PARSE_BURST")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(BURST);
        // The first two are Tincan: the ratios are given against both.
        let mut parsers: Vec<(&str, compare::Typed)> =
            vec![("tincan", tincan_typed), ("tincan-uris", tincan_typed_uris)];
        parsers.extend(compare::PARSERS);
        println!("paired: {rounds} rounds of {n} parses per parser, thread CPU time per message");
        println!(
            "| message | parser | median ns/msg | msg/s | tincan faster by (median of rounds, IQR) | tincan-uris faster by |"
        );
        println!("|---|---|---|---|---|---|");
        for sample in &SAMPLES {
            let buf = Bytes::from_static(sample.bytes);
            let expected = tincan_typed(&buf);
            let live: Vec<_> = parsers
                .iter()
                .filter(|(_, typed)| typed(&buf).is_some() && typed(&buf) == expected)
                .collect();
            // Warm-up: one burst each.
            for (_, typed) in &live {
                burst(*typed, &buf, n);
            }
            let mut times = vec![Vec::with_capacity(rounds); live.len()];
            for round in 0..rounds {
                for k in 0..live.len() {
                    let i = (round + k) % live.len();
                    times[i].push(burst(live[i].1, &buf, n));
                }
            }
            // The ratio of parser `i` to Tincan parser `base`, over the rounds.
            let ratio = |i: usize, base: usize| {
                if i <= base || live.len() <= base {
                    return "-".to_owned();
                }
                let mut ratios: Vec<f64> =
                    (0..rounds).map(|r| times[i][r] / times[base][r]).collect();
                let ratio = median(&mut ratios);
                let (q1, q3) = quartiles(&ratios);
                format!("{ratio:.2}x ({q1:.2}-{q3:.2})")
            };
            for (i, (name, _)) in live.iter().enumerate() {
                let ns = median(&mut times[i].clone());
                println!(
                    "| {} | {name} | {ns:.0} | {:.0}k | {} | {} |",
                    sample.name,
                    1e6 / ns,
                    ratio(i, 0),
                    ratio(i, 1),
                );
            }
        }
    }
}
