//! The RTCP transmission interval (RFC 3550 §6.2, §6.3.1 and Appendix A.7).

use std::time::Duration;

/// RFC 3550 §6.2: the recommended minimum RTCP interval, 5 seconds.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);

/// RFC 3550 §6.2: RTCP gets 5 % of the session bandwidth.
pub const RTCP_BANDWIDTH_FRACTION: f64 = 0.05;

/// RFC 3550 §6.3.1: the compensation for the timer reconsideration, e − 3/2.
const COMPENSATION: f64 = std::f64::consts::E - 1.5;

/// Inputs of the RFC 3550 §6.3.1 interval computation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalParams {
    /// Session members (ourselves included).
    pub members: u32,
    /// Members that sent RTP recently (ourselves included if we did).
    pub senders: u32,
    /// Session bandwidth in octets per second (RTCP gets 5 % of it).
    pub session_bandwidth: f64,
    /// Average compound RTCP packet size in octets, UDP/IP overhead included.
    pub avg_rtcp_size: f64,
    /// Whether we sent RTP since the second-last report.
    pub we_sent: bool,
    /// Whether no report has been sent yet (the minimum is halved, §6.2).
    pub initial: bool,
}

/// The randomized RTCP interval (RFC 3550 A.7 `rtcp_interval`).
///
/// `random_unit` is a uniform draw in [0, 1) from the caller's injected RNG: the deterministic
/// interval is scaled by a factor in [0.5, 1.5) and divided by e − 3/2.
pub fn rtcp_interval(p: &IntervalParams, random_unit: f64) -> Duration {
    let mut rtcp_bw = p.session_bandwidth * RTCP_BANDWIDTH_FRACTION;
    let mut n = f64::from(p.members.max(1));
    let senders = f64::from(p.senders);
    // §6.3.1: senders get a quarter of the RTCP bandwidth if they are at most 25 %.
    if senders <= n * 0.25 {
        if p.we_sent {
            rtcp_bw *= 0.25;
            n = senders.max(1.0);
        } else {
            rtcp_bw *= 0.75;
            n -= senders;
        }
    }
    let t_min = if p.initial {
        MIN_INTERVAL.as_secs_f64() / 2.0
    } else {
        MIN_INTERVAL.as_secs_f64()
    };
    let mut t = if rtcp_bw > 0.0 {
        p.avg_rtcp_size * n / rtcp_bw
    } else {
        t_min
    };
    if t < t_min {
        t = t_min;
    }
    let factor = 0.5 + random_unit.clamp(0.0, 1.0);
    Duration::from_secs_f64(t * factor / COMPENSATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voice(initial: bool) -> IntervalParams {
        IntervalParams {
            members: 2,
            senders: 2,
            session_bandwidth: 64_000.0 / 8.0,
            avg_rtcp_size: 100.0,
            we_sent: true,
            initial,
        }
    }

    #[test]
    fn voice_call_hits_the_minimum() {
        // 5 % of 8000 B/s = 400 B/s; 100 B * 2 / 400 = 0.5 s < 5 s -> 5 s.
        // Middle of the random range (factor 1.0): 5 / 1.21828 = 4.104 s.
        let t = rtcp_interval(&voice(false), 0.5);
        assert_eq!(t.as_millis(), 4104);
        // Extremes: factor 0.5 -> 2.052 s, 1.5 -> 6.156 s.
        assert_eq!(rtcp_interval(&voice(false), 0.0).as_millis(), 2052);
        assert_eq!(rtcp_interval(&voice(false), 1.0).as_millis(), 6156);
        // The first report uses half the minimum.
        assert_eq!(rtcp_interval(&voice(true), 0.5).as_millis(), 2052);
    }

    #[test]
    fn large_session_exceeds_minimum() {
        // 100 members, 1 sender (us): senders ≤ 25 % -> bw/4 = 100 B/s, n = 1 -> 1 s < 5 s.
        // Receivers: 300 B/s, n = 99 -> 100*99/300 = 33 s; factor 1 -> 33/1.21828 = 27.087 s.
        let p = IntervalParams {
            members: 100,
            senders: 1,
            we_sent: false,
            ..voice(false)
        };
        assert_eq!(rtcp_interval(&p, 0.5).as_millis(), 27_087);
    }
}
