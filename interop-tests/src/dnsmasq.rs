//! dnsmasq as an authoritative-only DNS server for test domains (NAPTR, SRV, A, AAAA) on a
//! free port of 127.0.0.1 and ::1 (UDP and TCP), templated from
//! `interop-tests/lab/dns/dnsmasq.conf`'s global options.
//!
//! It never forwards: `no-resolv`, `no-hosts`, `local=/<domain>/` for every declared domain
//! (names below it that are not declared get NXDOMAIN, others REFUSED).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use crate::peer::{Peer, PeerError, WorkDir};
use crate::ports::{self, Protocols, V4, V6};

/// Records of a test zone, turned into dnsmasq options.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct DnsRecords {
    domains: Vec<String>,
    lines: Vec<String>,
}

impl DnsRecords {
    /// No records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares a domain this server is authoritative for (`local=/domain/`). Record
    /// methods declare the domain of their name automatically when it ends in `.test`,
    /// `.invalid` or `.example`; call this for anything else.
    pub fn domain(mut self, domain: &str) -> Self {
        let domain = domain.trim_end_matches('.').to_owned();
        if !self.domains.contains(&domain) {
            self.domains.push(domain);
        }
        self
    }

    fn declare(self, name: &str) -> Self {
        // the registrable part: last two labels
        let labels: Vec<&str> = name.trim_end_matches('.').rsplitn(3, '.').collect();
        if labels.len() >= 2 && ["test", "invalid", "example"].contains(&labels[0]) {
            let domain = format!("{}.{}", labels[1], labels[0]);
            self.domain(&domain)
        } else {
            self
        }
    }

    /// An A record.
    pub fn a(self, name: &str, ip: Ipv4Addr) -> Self {
        self.host(name, &[IpAddr::V4(ip)])
    }

    /// An AAAA record.
    pub fn aaaa(self, name: &str, ip: Ipv6Addr) -> Self {
        self.host(name, &[IpAddr::V6(ip)])
    }

    /// A and/or AAAA records for `name` (`host-record=`).
    pub fn host(mut self, name: &str, ips: &[IpAddr]) -> Self {
        let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
        self.lines
            .push(format!("host-record={name},{}", ips.join(",")));
        self.declare(name)
    }

    /// An SRV record (RFC 2782): `service` is the full owner name such as
    /// `_sip._udp.example.test`.
    pub fn srv(
        mut self,
        service: &str,
        target: &str,
        port: u16,
        priority: u16,
        weight: u16,
    ) -> Self {
        self.lines.push(format!(
            "srv-host={service},{target},{port},{priority},{weight}"
        ));
        self.declare(service)
    }

    /// A NAPTR record (RFC 3403) with flags `S` and an empty regexp, as SIP uses them
    /// (RFC 3263): `service` is `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`...; `replacement` the SRV
    /// owner name.
    pub fn naptr(
        self,
        name: &str,
        order: u16,
        preference: u16,
        service: &str,
        replacement: &str,
    ) -> Self {
        self.naptr_full(name, order, preference, "S", service, "", replacement)
    }

    /// A NAPTR record with every field.
    #[allow(clippy::too_many_arguments)]
    pub fn naptr_full(
        mut self,
        name: &str,
        order: u16,
        preference: u16,
        flags: &str,
        service: &str,
        regexp: &str,
        replacement: &str,
    ) -> Self {
        self.lines.push(format!(
            "naptr-record={name},{order},{preference},{flags},{service},{regexp},{replacement}"
        ));
        self.declare(name)
    }

    /// Any other dnsmasq option line (e.g. `cname=...`, `txt-record=...`).
    pub fn raw(mut self, line: &str) -> Self {
        self.lines.push(line.to_owned());
        self
    }

    /// The lab's `example.test` zone pointed at a registrar: NAPTR (TLS, TCP, UDP), SRV for
    /// `_sip._udp`/`_sip._tcp` with priority 10 -> `sip1.example.test` (127.0.0.1, ::1) at
    /// `primary_port` and, when `secondary_port` is given, priority 20 ->
    /// `sip2.example.test` (127.0.0.2) at it; `_sips._tcp` targets at `tls_port`
    /// placeholders (nothing listens there); `example.test` itself has A 127.0.0.1 and
    /// AAAA ::1. For a [`crate::Kamailio`]: `example_test(k.port(),
    /// k.secondary_addr().map(|a| a.port()), free_tcp_port())`.
    pub fn example_test(primary_port: u16, secondary_port: Option<u16>, tls_port: u16) -> Self {
        let mut r = Self::new()
            .host("example.test", &[V4, V6])
            .host("sip1.example.test", &[V4, V6])
            .naptr(
                "example.test",
                10,
                10,
                "SIPS+D2T",
                "_sips._tcp.example.test",
            )
            .naptr("example.test", 20, 10, "SIP+D2T", "_sip._tcp.example.test")
            .naptr("example.test", 30, 10, "SIP+D2U", "_sip._udp.example.test")
            .srv(
                "_sip._udp.example.test",
                "sip1.example.test",
                primary_port,
                10,
                100,
            )
            .srv(
                "_sip._tcp.example.test",
                "sip1.example.test",
                primary_port,
                10,
                100,
            )
            .srv(
                "_sips._tcp.example.test",
                "sip1.example.test",
                tls_port,
                10,
                100,
            );
        if let Some(q) = secondary_port {
            r = r
                .host(
                    "sip2.example.test",
                    &[IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))],
                )
                .srv("_sip._udp.example.test", "sip2.example.test", q, 20, 100)
                .srv("_sip._tcp.example.test", "sip2.example.test", q, 20, 100);
        }
        r
    }

    fn config(&self, port: u16, dir: &WorkDir) -> String {
        let mut c = format!(
            "# written by tincan-interop-tests (see interop-tests/lab/dns/dnsmasq.conf)\n\
             port={port}\n\
             listen-address=127.0.0.1\n\
             listen-address=::1\n\
             bind-interfaces\n\
             no-resolv\n\
             no-poll\n\
             no-hosts\n\
             no-negcache\n\
             local-ttl=60\n\
             log-queries\n\
             log-facility=-\n\
             pid-file={}\n",
            dir.join("dnsmasq.pid").display()
        );
        for d in &self.domains {
            c.push_str(&format!("local=/{d}/\n"));
        }
        for l in &self.lines {
            c.push_str(l);
            c.push('\n');
        }
        c
    }
}

/// A running dnsmasq; stopped on drop.
#[derive(Debug)]
pub struct Dnsmasq {
    peer: Peer,
    port: u16,
}

impl Dnsmasq {
    /// Writes the config, checks it (`dnsmasq --test`), starts dnsmasq in the foreground
    /// (`-k`) and waits until it listens.
    pub fn start(records: &DnsRecords) -> Result<Self, PeerError> {
        let dir = WorkDir::new("dnsmasq")?;
        let port = ports::free_port_block(&[V4, V6], Protocols::Both, 1);
        let conf = dir.write("dnsmasq.conf", records.config(port, &dir))?;
        let check = Command::new(crate::program("dnsmasq"))
            .arg("--test")
            .arg("-C")
            .arg(&conf)
            .output()
            .map_err(|e| PeerError::io("running dnsmasq --test", e))?;
        if !check.status.success() {
            return Err(PeerError::Protocol {
                name: "dnsmasq".to_owned(),
                message: format!(
                    "config rejected: {}{}",
                    String::from_utf8_lossy(&check.stdout),
                    String::from_utf8_lossy(&check.stderr)
                ),
            });
        }
        let mut peer = Peer::builder("dnsmasq", crate::program("dnsmasq"))
            .arg("-k")
            .arg("-C")
            .arg(&conf)
            .lifetime(Duration::from_secs(300))
            .spawn_in(dir)?;
        peer.wait_for_log("started, version", Duration::from_secs(10))?;
        peer.wait_for_port(Protocols::Both, port, Duration::from_secs(10))?;
        Ok(Self { peer, port })
    }

    /// The port (same on 127.0.0.1 and ::1, UDP and TCP).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(V4, self.port)
    }

    /// `[::1]:port`.
    pub fn addr_v6(&self) -> SocketAddr {
        SocketAddr::new(V6, self.port)
    }

    /// The process guard (its log has one line per query: `query[SRV] ... from 127.0.0.1`).
    pub fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    /// Asks this server with `dig @127.0.0.1 -p PORT TYPE NAME +short` (bounded: 2 s, one
    /// try) and returns the answer lines.
    pub fn dig(&self, rtype: &str, name: &str) -> Result<Vec<String>, PeerError> {
        let out = self.dig_raw(&[rtype, name, "+short"])?;
        Ok(out
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// The response status (`NOERROR`, `NXDOMAIN`, `REFUSED`...) for a query.
    pub fn dig_status(&self, rtype: &str, name: &str) -> Result<String, PeerError> {
        let out = self.dig_raw(&[rtype, name])?;
        out.split("status: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .map(str::to_owned)
            .ok_or_else(|| PeerError::Protocol {
                name: "dig".to_owned(),
                message: format!("no status in: {out}"),
            })
    }

    /// Runs dig against this server's port with extra arguments (e.g. `+tcp`); the server
    /// address is `@127.0.0.1` unless `args` has one (e.g. `@::1`).
    pub fn dig_raw(&self, args: &[&str]) -> Result<String, PeerError> {
        let server = if args.iter().any(|a| a.starts_with('@')) {
            None
        } else {
            Some("@127.0.0.1")
        };
        let out = Command::new(crate::program("dig"))
            .args(server)
            .arg("-p")
            .arg(self.port.to_string())
            .args(["+time=2", "+tries=1"])
            .args(args)
            .output()
            .map_err(|e| PeerError::io("running dig", e))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops dnsmasq.
    pub fn stop(mut self) {
        self.peer.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_declare_their_domain() {
        let r = DnsRecords::new()
            .a("sip1.example.test", Ipv4Addr::LOCALHOST)
            .srv("_sip._udp.other.test", "sip1.example.test", 5060, 10, 100)
            .domain("corp.internal");
        assert_eq!(r.domains, ["example.test", "other.test", "corp.internal"]);
        assert_eq!(r.lines[0], "host-record=sip1.example.test,127.0.0.1");
        assert_eq!(
            r.lines[1],
            "srv-host=_sip._udp.other.test,sip1.example.test,5060,10,100"
        );
    }
}
