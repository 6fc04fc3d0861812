//! The failover decision for each outcome, and the per-target budgets.

use std::time::Duration;

use tincan_sip::resolve::{AttemptOutcome, FailoverDecision, FailoverPolicy, FailureCause};

#[test]
fn transport_errors_icmp_timeouts_and_503_move_on() {
    let p = FailoverPolicy::default();
    assert_eq!(
        p.decide(AttemptOutcome::TransportError),
        FailoverDecision::TryNext(FailureCause::TransportError)
    );
    assert_eq!(
        p.decide(AttemptOutcome::Unreachable),
        FailoverDecision::TryNext(FailureCause::Unreachable)
    );
    assert_eq!(
        p.decide(AttemptOutcome::Timeout),
        FailoverDecision::TryNext(FailureCause::Timeout)
    );
    let ra = Some(Duration::from_secs(120));
    assert_eq!(
        p.decide(AttemptOutcome::Response {
            status: 503,
            retry_after: ra
        }),
        FailoverDecision::TryNext(FailureCause::ServiceUnavailable { retry_after: ra })
    );
    assert_eq!(
        p.decide(AttemptOutcome::Response {
            status: 503,
            retry_after: None
        }),
        FailoverDecision::TryNext(FailureCause::ServiceUnavailable { retry_after: None })
    );
}

#[test]
fn other_final_responses_end_the_request() {
    let p = FailoverPolicy::default();
    for status in [
        200, 202, 302, 401, 403, 404, 407, 408, 423, 480, 486, 500, 502, 504, 600, 603,
    ] {
        assert_eq!(
            p.decide(AttemptOutcome::Response {
                status,
                retry_after: None
            }),
            FailoverDecision::Done,
            "{status}"
        );
    }
}

#[test]
fn interactive_budget_is_seconds_not_timer_f() {
    let p = FailoverPolicy::default();
    let timer_f = Duration::from_millis(64 * 500);
    assert!(p.budget(true) >= Duration::from_secs(2));
    assert!(p.budget(true) <= Duration::from_secs(4));
    assert!(p.budget(true) * 8 <= timer_f);
    assert_eq!(p.budget(false), timer_f);
    assert!(p.probe_budget <= Duration::from_secs(4));
}
