//! baresip 1.0 (Debian), headless: a second softphone for calls with Tincan.
//!
//! Each instance gets a config dir (its scratch dir) made from the lab's
//! `interop-tests/lab/baresip/alice/config` with free SIP, ctrl_tcp and RTP ports, an
//! `accounts` file for one user, the `ausine` tone generator as microphone, the ALSA `null`
//! device as speaker and the `sndfile` module recording each call's sent (`*-enc.wav`) and
//! received (`*-dec.wav`) audio into `rec/`. It is driven over ctrl_tcp
//! ([`BaresipControl`]).

pub mod control;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use control::{BaresipControl, ControlError, Event, Response};

use crate::peer::{Peer, PeerError, WorkDir, files_matching};
use crate::ports::{self, Protocols, V4};

/// SIP transport of the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AccountTransport {
    /// UDP.
    #[default]
    Udp,
    /// TCP.
    Tcp,
}

impl AccountTransport {
    fn name(self) -> &'static str {
        match self {
            AccountTransport::Udp => "udp",
            AccountTransport::Tcp => "tcp",
        }
    }
}

/// How to start baresip; see [`Baresip::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct BaresipBuilder {
    user: String,
    password: String,
    domain: String,
    transport: AccountTransport,
    outbound: Option<SocketAddr>,
    dns: Option<SocketAddr>,
    auto_answer: bool,
    register: bool,
    tone_hz: u32,
    source_wav: Option<PathBuf>,
    codecs: String,
    extra_config: Vec<String>,
    extra_account_params: Vec<String>,
    contacts: Vec<String>,
    sip_trace: bool,
}

impl BaresipBuilder {
    /// Prints every SIP message it sends and receives into its log (`baresip -s`).
    pub fn sip_trace(mut self, on: bool) -> Self {
        self.sip_trace = on;
        self
    }

    /// Adds a line to its `contacts` file (`"Name" <sip:user@host:port>`): the `contact`
    /// module's first contact is the current one, the target of its `message` command.
    pub fn contact(mut self, line: &str) -> Self {
        self.contacts.push(line.to_owned());
        self
    }

    /// AoR domain (default `example.test`).
    pub fn domain(mut self, domain: &str) -> Self {
        domain.clone_into(&mut self.domain);
        self
    }

    /// Account transport (default UDP).
    pub fn transport(mut self, transport: AccountTransport) -> Self {
        self.transport = transport;
        self
    }

    /// Outbound proxy (an IP literal; e.g. the kamailio): every request goes there and no
    /// DNS lookup is needed for the next hop.
    pub fn outbound(mut self, proxy: SocketAddr) -> Self {
        self.outbound = Some(proxy);
        self
    }

    /// DNS server for baresip's own resolver (e.g. a [`crate::Dnsmasq`]). Without one,
    /// baresip is pointed at a loopback port where nothing answers, so that it never asks
    /// the system resolver.
    pub fn dns(mut self, server: SocketAddr) -> Self {
        self.dns = Some(server);
        self
    }

    /// Answer incoming calls automatically (`answermode=auto`, the default) or not
    /// (`manual`: use [`BaresipControl::accept`]).
    pub fn auto_answer(mut self, on: bool) -> Self {
        self.auto_answer = on;
        self
    }

    /// Whether to REGISTER (default yes, `regint=600`; no: `regint=0`).
    pub fn register(mut self, on: bool) -> Self {
        self.register = on;
        self
    }

    /// Frequency of the sine sent as microphone (`ausine`, default 440 Hz).
    pub fn tone(mut self, hz: u32) -> Self {
        self.tone_hz = hz;
        self
    }

    /// Sends a WAV file instead of the tone (`audio_source aufile,<path>`). baresip 1.0's
    /// `aufile` needs 16-bit PCM at 48 kHz, 2 channels (see [`crate::audio::write_wav`] and
    /// [`crate::audio::to_stereo`]); after the end of the file it sends nothing.
    pub fn source_wav(mut self, path: impl Into<PathBuf>) -> Self {
        self.source_wav = Some(path.into());
        self
    }

    /// `audio_codecs` of the account (default `opus/48000/2,PCMU/8000/1,PCMA/8000/1`).
    pub fn codecs(mut self, codecs: &str) -> Self {
        codecs.clone_into(&mut self.codecs);
        self
    }

    /// An extra line for baresip's `config` (a later line wins over the template's).
    pub fn config_line(mut self, line: &str) -> Self {
        self.extra_config.push(line.to_owned());
        self
    }

    /// An extra `;name=value` parameter for the account line.
    pub fn account_param(mut self, param: &str) -> Self {
        self.extra_account_params.push(param.to_owned());
        self
    }

    /// Writes the config dir and starts baresip; waits until it is ready and its ctrl_tcp
    /// port listens (not for the registration: see [`Baresip::wait_registered`]).
    pub fn start(self) -> Result<Baresip, PeerError> {
        let dir = WorkDir::new(&format!("baresip-{}", self.user))?;
        let sip_port = ports::free_port_block(&[V4], Protocols::Both, 2);
        let ctrl_port = ports::free_tcp_port();
        let rtp_first = ports::free_port_block(&[V4], Protocols::Udp, 16);
        let rtp_last = rtp_first + 15;
        let dns = self
            .dns
            .unwrap_or_else(|| SocketAddr::new(V4, ports::free_udp_port()));

        let template = std::fs::read_to_string(crate::lab_file("baresip/alice/config"))
            .map_err(|e| PeerError::io("reading lab/baresip/alice/config", e))?;
        let mut config = String::new();
        for line in template.lines() {
            let key = line.split_whitespace().next().unwrap_or("");
            let replaced = match key {
                "sip_listen" => format!("sip_listen\t\t127.0.0.1:{sip_port}"),
                "dns_server" => format!("dns_server\t\t{dns}"),
                "audio_source" => match &self.source_wav {
                    Some(wav) => format!("audio_source\t\taufile,{}", wav.display()),
                    None => format!("audio_source\t\tausine,{}", self.tone_hz),
                },
                "rtp_ports" => format!("rtp_ports\t\t{rtp_first}-{rtp_last}"),
                "ctrl_tcp_listen" => format!("ctrl_tcp_listen\t\t127.0.0.1:{ctrl_port}"),
                _ => line.to_owned(),
            };
            config.push_str(&replaced);
            config.push('\n');
        }
        for line in &self.extra_config {
            config.push_str(line);
            config.push('\n');
        }
        dir.write("config", config)?;

        let aor = format!("sip:{}@{}", self.user, self.domain);
        let mut account = format!(
            "<{aor};transport={}>;auth_pass={};answermode={};regint={}",
            self.transport.name(),
            self.password,
            if self.auto_answer { "auto" } else { "manual" },
            if self.register { 600 } else { 0 },
        );
        if let Some(proxy) = self.outbound {
            account.push_str(&format!(
                ";outbound=\"sip:{proxy};transport={}\"",
                self.transport.name()
            ));
        }
        account.push_str(&format!(";audio_codecs={}", self.codecs));
        for p in &self.extra_account_params {
            account.push(';');
            account.push_str(p.trim_start_matches(';'));
        }
        dir.write("accounts", format!("{account}\n"))?;
        if !self.contacts.is_empty() {
            dir.write("contacts", self.contacts.join("\n") + "\n")?;
        }
        std::fs::create_dir_all(dir.join("rec")).map_err(|e| PeerError::io("creating rec/", e))?;

        let config_dir = dir.path().to_owned();
        let mut builder =
            Peer::builder(&format!("baresip-{}", self.user), crate::program("baresip"))
                .arg("-f")
                .arg(&config_dir);
        if self.sip_trace {
            builder = builder.arg("-s");
        }
        let mut peer = builder
            .lifetime(Duration::from_secs(180))
            .stop_grace(Duration::from_secs(2))
            .spawn_in(dir)?;
        peer.wait_for_log("baresip is ready", Duration::from_secs(15))?;
        peer.wait_for_port(Protocols::Tcp, ctrl_port, Duration::from_secs(10))?;
        Ok(Baresip {
            peer,
            user: self.user,
            domain: self.domain,
            aor,
            sip_port,
            ctrl_port,
            rtp_ports: (rtp_first, rtp_last),
        })
    }
}

/// A running baresip; stopped on drop (stop it before its registrar: on SIGTERM it
/// un-REGISTERs and would otherwise wait for the answer).
#[derive(Debug)]
pub struct Baresip {
    peer: Peer,
    user: String,
    domain: String,
    aor: String,
    sip_port: u16,
    ctrl_port: u16,
    rtp_ports: (u16, u16),
}

impl Baresip {
    /// A baresip for `user` with `password`, domain `example.test`, auto-answer, 440 Hz tone.
    pub fn builder(user: &str, password: &str) -> BaresipBuilder {
        BaresipBuilder {
            user: user.to_owned(),
            password: password.to_owned(),
            domain: crate::kamailio::DOMAIN.to_owned(),
            transport: AccountTransport::Udp,
            outbound: None,
            dns: None,
            auto_answer: true,
            register: true,
            tone_hz: 440,
            source_wav: None,
            codecs: "opus/48000/2,PCMU/8000/1,PCMA/8000/1".to_owned(),
            extra_config: Vec::new(),
            extra_account_params: Vec::new(),
            contacts: Vec::new(),
            sip_trace: false,
        }
    }

    /// The account's AoR, `sip:user@domain`.
    pub fn aor(&self) -> &str {
        &self.aor
    }

    /// Its SIP listener on 127.0.0.1 (UDP and TCP).
    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::new(V4, self.sip_port)
    }

    /// Its ctrl_tcp port on 127.0.0.1.
    pub fn ctrl_port(&self) -> u16 {
        self.ctrl_port
    }

    /// Its RTP port range (first, last).
    pub fn rtp_ports(&self) -> (u16, u16) {
        self.rtp_ports
    }

    /// The process guard.
    pub fn peer(&mut self) -> &mut Peer {
        &mut self.peer
    }

    /// Waits until the log shows a `200 OK` to its REGISTER
    /// (`alice@example.test: {0/UDP/v4} 200 OK (...) [1 binding]`).
    pub fn wait_registered(&mut self, timeout: Duration) -> Result<String, PeerError> {
        let pattern = format!(
            r"{}@{}: \{{[^}}]*\}} 200 OK",
            regex::escape(&self.user),
            regex::escape(&self.domain)
        );
        self.peer.wait_for_log(&pattern, timeout)
    }

    /// Connects a ctrl_tcp client (several may be connected; each gets every event).
    pub fn control(&self) -> Result<BaresipControl, ControlError> {
        BaresipControl::connect(SocketAddr::new(V4, self.ctrl_port))
    }

    /// The received audio of each call (`rec/*-dec.wav`), oldest first. Complete once the
    /// call has ended.
    pub fn decoded_recordings(&self) -> Vec<PathBuf> {
        files_matching(&self.peer.dir().join("rec"), r"-dec\.wav$")
    }

    /// The sent audio of each call (`rec/*-enc.wav`), oldest first.
    pub fn encoded_recordings(&self) -> Vec<PathBuf> {
        files_matching(&self.peer.dir().join("rec"), r"-enc\.wav$")
    }

    /// Stops baresip (SIGTERM, a second SIGTERM after 2 s, then SIGKILL).
    pub fn stop(mut self) {
        self.peer.stop();
    }
}
