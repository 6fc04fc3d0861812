//! A black-holed first registrar or proxy (a UDP socket that reads nothing and answers
//! nothing) in front of a live kamailio, with the library's phone:
//!
//! - the account's REGISTER moves on to kamailio after the 1 s budget of a request the
//!   registrar answers itself (`RequestKind::Direct`; it was 4 s), and the black hole's
//!   failure says so (`no response in 1000 ms`);
//! - a call through the same registrars (the health table now knows the black hole is down)
//!   goes straight to kamailio; a second phone, with a fresh table, passes the black hole in
//!   1 s: its INVITE goes to kamailio 1 s after the first `calling` (INVITE budget, RFC 3261
//!   §17.2.1: a live proxy says 100 Trying within 200 ms), and the abandoned INVITE is not
//!   sent to the black hole again (B2: it was retransmitted to Timer B's end before).
//!
//! Run with `--nocapture` to see the measured times (docs/resilience.md).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tincan::phone::driver::{CallOptions, Phone};
use tincan::phone::{AccountConfig, AccountEvent, CallEvent, PhoneEvent};
use tincan_interop_tests::{Kamailio, require_peers};
use tincan_media::device::{NullSink, NullSource};
use tincan_sip::resolve::failover::AttemptFailure;

async fn next(phone: &mut Phone, what: &str) -> PhoneEvent {
    tokio::time::timeout(Duration::from_secs(30), phone.next_event())
        .await
        .unwrap_or_else(|_| panic!("no {what} in 30 s"))
        .expect("the phone runs")
}

fn account(kamailio: &Kamailio, user: &str, registrars: Vec<String>) -> AccountConfig {
    let mut a = AccountConfig::new(
        user,
        format!("sip:{user}@{}", kamailio.domain()),
        user,
        kamailio.password(user).expect("a lab user"),
    );
    a.registrars = registrars;
    a.expires = 60;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_first_registrar_and_proxy_are_passed_in_a_second() {
    if !require_peers(&["kamailio"]) {
        return;
    }
    let kamailio = Kamailio::start().expect("kamailio starts");
    let hole = UdpSocket::bind("127.0.0.1:0").expect("a black hole");
    let hole_addr: SocketAddr = hole.local_addr().unwrap();
    // The black hole notes when each INVITE reached it (it answers nothing).
    let invites_at = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listener = {
        let hole = hole.try_clone().unwrap();
        hole.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let (invites_at, stop) = (invites_at.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 65_536];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok((n, _)) = hole.recv_from(&mut buf)
                    && buf[..n].starts_with(b"INVITE ")
                {
                    invites_at.lock().unwrap().push(Instant::now());
                }
            }
        })
    };
    let registrars = vec![
        format!("sip:{hole_addr}"),
        format!("sip:{}", kamailio.addr()),
    ];
    let bind: SocketAddr = "127.0.0.1:0".parse().unwrap();

    // bob registers with kamailio alone.
    let mut bob = Phone::builder()
        .bind(bind)
        .account(account(
            &kamailio,
            "bob",
            vec![format!("sip:{}", kamailio.addr())],
        ))
        .start()
        .await
        .unwrap();
    loop {
        if let PhoneEvent::Account {
            event: AccountEvent::Registered { .. },
            ..
        } = next(&mut bob, "bob registered").await
        {
            break;
        }
    }

    // alice: the black hole first.
    let started = Instant::now();
    let mut alice = Phone::builder()
        .bind(bind)
        .account(account(&kamailio, "alice", registrars.clone()))
        .start()
        .await
        .unwrap();
    let mut failed = None;
    loop {
        match next(&mut alice, "alice registered").await {
            PhoneEvent::Account {
                event: AccountEvent::Failed { attempt, .. },
                ..
            } => failed = Some(attempt),
            PhoneEvent::Account {
                event: AccountEvent::Registered { registrar, .. },
                ..
            } => {
                assert_eq!(registrar.addr, kamailio.addr());
                break;
            }
            _ => {}
        }
    }
    println!(
        "MEASURED: registered at the second registrar {} ms after the start (first black-holed)",
        started.elapsed().as_millis()
    );
    let failed = failed.expect("the black hole's failure is reported");
    assert_eq!(failed.target.addr, hole_addr);
    assert_eq!(
        failed.why,
        AttemptFailure::NoResponse {
            waited: Duration::from_secs(1)
        }
    );

    // carol has a fresh health table: her INVITE meets the black hole first.
    let mut carol_account = account(&kamailio, "carol", registrars);
    carol_account.register = false;
    let mut carol = Phone::builder()
        .bind(bind)
        .account(carol_account)
        .start()
        .await
        .unwrap();
    let call = carol
        .call("bob", CallOptions::default())
        .await
        .expect("the call starts");
    let mut calling = Vec::new();
    loop {
        match next(&mut carol, "carol's call").await {
            PhoneEvent::Call {
                event: CallEvent::Calling { target, .. },
                ..
            } => {
                calling.push((target.addr, Instant::now()));
                if target.addr == kamailio.addr() {
                    break;
                }
            }
            PhoneEvent::Call {
                event: CallEvent::Ended(end),
                ..
            } => panic!("the call ended: {end:?}"),
            _ => {}
        }
    }
    assert_eq!(calling[0].0, hole_addr, "{calling:?}");
    println!(
        "MEASURED: INVITE moved from the black-holed proxy to kamailio after {} ms",
        calling[1].1.duration_since(calling[0].1).as_millis()
    );
    // bob answers; carol hangs up.
    loop {
        if let PhoneEvent::Incoming(i) = next(&mut bob, "bob's incoming call").await {
            bob.accept(
                i.call,
                Box::new(NullSource::new()),
                Box::new(NullSink::new()),
            )
            .await
            .unwrap();
            break;
        }
    }
    loop {
        if let PhoneEvent::Call {
            event: CallEvent::Answered { .. },
            ..
        } = next(&mut carol, "carol answered").await
        {
            break;
        }
    }
    carol.hangup(call).await.unwrap();
    loop {
        if let PhoneEvent::Call {
            event: CallEvent::Ended(end),
            ..
        } = next(&mut carol, "carol ended").await
        {
            assert!(end.answered);
            break;
        }
    }
    // Timer A would resend an INVITE still alive 1.5 s and 3.5 s after the first send.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    for phone in [alice, bob, carol] {
        phone.shutdown().await;
    }
    // B2: the abandoned INVITE was stopped when the call moved on: none reached the black
    // hole after the move (Timer A would have resent it 0.5 s later, and on to 32 s).
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    listener.join().unwrap();
    let moved = calling[1].1;
    let late: Vec<Duration> = invites_at
        .lock()
        .unwrap()
        .iter()
        .filter(|t| **t > moved + Duration::from_millis(100))
        .map(|t| t.duration_since(moved))
        .collect();
    assert!(
        late.is_empty(),
        "INVITEs to the black hole after the move: {late:?}"
    );
    drop(hole);
}
