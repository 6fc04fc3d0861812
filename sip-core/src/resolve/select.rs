//! Record selection rules: NAPTR filtering and ordering (RFC 3263 §4.1, RFC 3403) and SRV
//! priority/weight ordering (RFC 2782).

use rand_core::Rng;

use super::Transport;
use super::dns::{DnsRecord, RecordData};

/// A NAPTR record RFC 3263 can use: flags `s`, a SIP service we support.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct NaptrStep {
    /// The domain whose NAPTR set this came from.
    pub domain: String,
    /// NAPTR order.
    pub order: u16,
    /// NAPTR preference.
    pub preference: u16,
    /// The service field as published (`SIP+D2U`).
    pub service: String,
    /// The SRV name to query next.
    pub replacement: String,
    /// The transport the service means.
    pub transport: Transport,
}

/// The usable NAPTR records, best first: flags `s`, services `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`
/// restricted to `supported` (and to `SIPS+D2T` for a `sips:` URI), sorted by order then
/// preference (RFC 3403 §4.1; the sort is stable so equal records keep the server's order).
pub fn select_naptr(
    domain: &str,
    records: &[DnsRecord],
    secure: bool,
    supported: &[Transport],
) -> Vec<NaptrStep> {
    let mut steps: Vec<NaptrStep> = records
        .iter()
        .filter_map(|r| match &r.data {
            RecordData::Naptr {
                order,
                preference,
                flags,
                services,
                replacement,
                ..
            } => {
                if !flags.eq_ignore_ascii_case("s") {
                    return None;
                }
                let transport = Transport::from_naptr_service(services)?;
                if !supported.contains(&transport) || (secure && transport != Transport::Tls) {
                    return None;
                }
                let replacement = super::dns::normalize_name(replacement);
                if replacement.is_empty() {
                    return None;
                }
                Some(NaptrStep {
                    domain: domain.to_owned(),
                    order: *order,
                    preference: *preference,
                    service: services.clone(),
                    replacement,
                    transport,
                })
            }
            _ => None,
        })
        .collect();
    steps.sort_by_key(|s| (s.order, s.preference));
    steps
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SrvStep {
    /// The SRV owner name (`_sip._udp.example.com`).
    pub name: String,
    /// Priority (lower first).
    pub priority: u16,
    /// Weight (relative share among equal priorities).
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host.
    pub target: String,
}

/// The SRV records of `name`, in the order to try them (RFC 2782): ascending priority; within
/// a priority, repeated weighted random selection using `rng`. A record of weight `w` in a group
/// of total weight `W` comes first with probability `w / W`; zero-weight records come after the
/// weighted ones of their group, in the server's order (RFC 2782 gives them "a very small
/// chance"; we make it none while a weighted record remains). A lone `.` target (service
/// explicitly unavailable) yields nothing.
pub fn order_srv<R: Rng + ?Sized>(name: &str, records: &[DnsRecord], rng: &mut R) -> Vec<SrvStep> {
    let mut all: Vec<SrvStep> = records
        .iter()
        .filter_map(|r| match &r.data {
            RecordData::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                let target = super::dns::normalize_name(target);
                (!target.is_empty()).then(|| SrvStep {
                    name: name.to_owned(),
                    priority: *priority,
                    weight: *weight,
                    port: *port,
                    target,
                })
            }
            _ => None,
        })
        .collect();
    all.sort_by_key(|s| s.priority);
    let mut out = Vec::with_capacity(all.len());
    let mut rest = all.as_slice();
    while let Some(first) = rest.first() {
        let end = rest
            .iter()
            .position(|s| s.priority != first.priority)
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(end);
        rest = tail;
        let mut weighted: Vec<SrvStep> = group.iter().filter(|s| s.weight > 0).cloned().collect();
        while !weighted.is_empty() {
            let total: u64 = weighted.iter().map(|s| u64::from(s.weight)).sum();
            // Uniform in 1..=total (the modulo bias is below 2^-40 for any realistic total).
            let pick = rng.next_u64() % total + 1;
            let mut running = 0u64;
            let idx = weighted
                .iter()
                .position(|s| {
                    running += u64::from(s.weight);
                    running >= pick
                })
                .expect("pick <= total, so some running sum reaches it");
            out.push(weighted.remove(idx));
        }
        out.extend(group.iter().filter(|s| s.weight == 0).cloned());
    }
    out
}
