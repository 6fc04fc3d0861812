//! The tokio driver with an ICE agent on its RTP socket (`driver::spawn_with_ice`), two calls
//! on loopback: each session starts pointed at a port where nobody listens; ICE checks on the
//! RTP sockets select the pair, the driver points the session at it, and RTP flows both ways.
#![allow(clippy::disallowed_methods)] // a driver test: real sockets and the real clock

use std::time::Duration;

use tincan_media::codec::CodecKind;
use tincan_media::device::null::{NullSink, NullSource};
use tincan_media::driver::{MediaHandle, MediaPorts, PortRange, spawn_with_ice};
use tincan_media::ice::{self, Agent, AgentConfig, Credentials, RemoteIce, Role};
use tincan_media::session::{MediaEvent, SessionConfig};

/// Waits (generously: the machine may be loaded; at most 60 s in all) for the ICE selection
/// and then for RTP from the peer; returns the selected remote.
async fn selected_then_heard(call: &mut MediaHandle) -> std::net::SocketAddr {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut selected = None;
    loop {
        let event = tokio::time::timeout_at(deadline, call.next_event())
            .await
            .unwrap_or_else(|_| panic!("no RTP within 60 s (selected: {selected:?})"))
            .expect("the driver runs");
        match event {
            MediaEvent::Ice(ice::Event::Selected { remote, .. }) => selected = Some(remote),
            MediaEvent::Stats(stats) if selected.is_some() && stats.packets_received > 0 => {
                return selected.unwrap();
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_selects_the_pair_and_rtp_flows() {
    let ports_a = MediaPorts::bind("127.0.0.1".parse().unwrap(), PortRange::Any, true)
        .await
        .unwrap();
    let ports_b = MediaPorts::bind("127.0.0.1".parse().unwrap(), PortRange::Any, true)
        .await
        .unwrap();
    let (addr_a, addr_b) = (ports_a.rtp_addr(), ports_b.rtp_addr());
    // A closed port: what a wrong c=/m= would give.
    let nowhere = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let nowhere_addr = nowhere.local_addr().unwrap();
    drop(nowhere);

    let agent = |role, ufrag: &str, host, seed| {
        let mut agent = Agent::new(AgentConfig {
            role,
            credentials: Credentials::new(
                ufrag,
                &format!("{ufrag}{ufrag}{ufrag}{ufrag}{ufrag}{ufrag}"),
            )
            .unwrap(),
            tie_breaker: seed,
            seed,
        });
        agent.add_host(host);
        agent
    };
    let mut agent_a = agent(Role::Controlling, "aaaa", addr_a, 2);
    let mut agent_b = agent(Role::Controlled, "bbbb", addr_b, 1);
    let describe = |agent: &Agent| RemoteIce {
        credentials: agent.credentials().clone(),
        lite: false,
        candidates: agent.local_candidates(),
    };
    let (for_a, for_b) = (describe(&agent_b), describe(&agent_a));
    let now = std::time::Instant::now();
    agent_a.set_remote(for_a, now);
    agent_b.set_remote(for_b, now);

    let config = |ssrc| {
        let mut c = SessionConfig::new(ssrc, CodecKind::Pcmu, 0, nowhere_addr);
        c.rtcp_mux = true;
        c
    };
    let mut call_a = spawn_with_ice(
        ports_a,
        config(0xA),
        Box::new(NullSource::new()),
        Box::new(NullSink::new()),
        agent_a,
    )
    .unwrap();
    let mut call_b = spawn_with_ice(
        ports_b,
        config(0xB),
        Box::new(NullSource::new()),
        Box::new(NullSink::new()),
        agent_b,
    )
    .unwrap();
    let (heard_a, heard_b) = tokio::join!(
        selected_then_heard(&mut call_a),
        selected_then_heard(&mut call_b)
    );
    assert_eq!(heard_a, addr_b);
    assert_eq!(heard_b, addr_a);
    let stats_a = call_a.stop().await;
    let stats_b = call_b.stop().await;
    assert!(stats_a.packets_received > 0 && stats_b.packets_received > 0);
}
