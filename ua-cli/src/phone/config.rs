//! How a phone and its accounts are set up.

use std::time::Duration;

use tincan_media::codec::CodecKind;
use tincan_media::sdp::SrtpPolicy;
use tincan_sip::dialog::{PrackPolicy, SessionTimerConfig};
use tincan_sip::endpoint::EndpointConfig;
use tincan_sip::flow::KeepAliveConfig;
use tincan_sip::resolve::HealthConfig;
use tincan_sip::resolve::failover::FailoverConfig;
use tincan_sip::transport::Transport;

use super::transfer::TransferPolicy;

pub use crate::config::{RealmPolicy, RegisterMode};

/// The phone core's configuration (what does not depend on sockets).
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// Our user name for calls placed without an account (From and Contact user part).
    pub user: String,
    /// Our display name for calls placed without an account.
    pub display_name: Option<String>,
    /// The domain of our From URI for calls placed without an account; `None`: the local
    /// address.
    pub domain: Option<String>,
    /// Codecs in order of preference.
    pub codecs: Vec<CodecKind>,
    /// SRTP policy.
    pub srtp: SrtpPolicy,
    /// Offer and accept RFC 4733 telephone-event; without it DTMF goes in SIP INFO.
    pub telephone_event: bool,
    /// Hang up when no RTP arrives for this long while neither side holds the call (as
    /// Linphone's `nortp_timeout`). `None`: only warn.
    pub rtp_timeout_hangup: Option<Duration>,
    /// Force a transport for requests of calls placed without an account.
    pub transport: Option<Transport>,
    /// An outbound proxy (`sip:proxy.example.com`) for calls placed without an account.
    pub outbound_proxy: Option<String>,
    /// Per-target budgets of the failover machine.
    pub failover: FailoverConfig,
    /// How long failed targets cool off.
    pub health: HealthConfig,
    /// The transaction layer's configuration.
    pub endpoint: EndpointConfig,
    /// Longest wait for one DNS answer before it counts as a timeout.
    pub dns_timeout: Duration,
    /// Keep-alives on the TCP/TLS registration flows of outbound accounts (those with an
    /// `instance_id`): CRLF pings, RFC 5626 §4.4.1. The registrar's `Flow-Timer` replaces the
    /// interval. `None`: no keep-alives on stream flows.
    pub keepalive: Option<KeepAliveConfig>,
    /// STUN Binding keep-alives on the UDP registration flows of outbound accounts
    /// (RFC 5626 §4.4.2). The registrar's `Flow-Timer` replaces the interval. `None`: no
    /// keep-alives on UDP flows.
    pub udp_keepalive: Option<KeepAliveConfig>,
    /// Fail-back: while an account is registered with a registrar of lower priority than
    /// others of its list, the better ones (their cool-off over) are probed with OPTIONS at
    /// most this often; the account moves back when one answers.
    pub fail_back_interval: Duration,
    /// How long a fail-back probe waits for an answer.
    pub probe_budget: Duration,
    /// Most calls at once, incoming and outgoing (admission control, RFC 6357 §4): a new
    /// incoming INVITE while this many calls exist is refused 503 Service Unavailable with
    /// the endpoint's Retry-After ([`EndpointConfig::overload_retry_after`], 5 s), before
    /// any call state or media port is spent on it. Calls the application places are counted but never refused.
    /// Default [`DEFAULT_CALL_LIMIT`].
    pub call_limit: usize,
    /// Session timers of every call (RFC 4028): the interval asked for and granted, and the
    /// smallest one accepted. Calls are refreshed by UPDATE (re-INVITE when the peer does not
    /// allow UPDATE) and hung up when the peer's refresh is late. `None`: no timers (a
    /// peer's Session-Expires is not answered; our INVITE asks for none). Default 1800 s,
    /// Min-SE 90 s.
    pub session_timer: Option<SessionTimerConfig>,
    /// What a REFER from a peer does (RFC 3515 transfer): ask the application, accept or
    /// refuse it; an account's own [`AccountConfig::accept_transfer`] wins. Default
    /// [`TransferPolicy::Ask`].
    pub accept_transfer: TransferPolicy,
    /// Meter each call's audio and report [`CallEvent::Levels`](super::CallEvent::Levels)
    /// five times a second while its media runs (level meters, as the terminal phone shows).
    /// Off by default: a phone carrying many calls for a program pays nothing for meters.
    pub level_meters: bool,
    /// Capture processing of every call's microphone: echo cancellation, noise suppression,
    /// automatic gain ([`tincan_media::dsp`]); [`Phone::set_processing`](super::Phone::set_processing)
    /// changes it while the phone runs. Off by default (a library phone may carry files,
    /// tones or a server's audio, which processing would alter); the `tincan` binary switches
    /// it on from the config's `[audio]` keys, which default to on.
    pub processing: tincan_media::dsp::ProcessingConfig,
    /// Reliable provisional responses (RFC 3262) of every call: our INVITE lists
    /// `Supported: 100rel` (default), requires it, or neither; an incoming call whose caller
    /// requires `100rel` rings and sends early media reliably whatever this says.
    pub prack: PrackPolicy,
}

/// The default [`PhoneConfig::call_limit`]: more than a desk phone or a softphone ever
/// carries, and what one small PBX-facing endpoint can: each call holds two UDP sockets
/// (RTP, RTCP) and a media task, so 100 calls stay well inside the usual limit of 1024 open
/// files.
pub const DEFAULT_CALL_LIMIT: usize = 100;

impl Default for PhoneConfig {
    fn default() -> Self {
        let endpoint = EndpointConfig {
            methods: super::ALLOWED_METHODS.to_vec(),
            ..EndpointConfig::default()
        };
        PhoneConfig {
            user: "tincan".into(),
            display_name: None,
            domain: None,
            codecs: CodecKind::ALL.to_vec(),
            srtp: SrtpPolicy::Optional,
            telephone_event: true,
            rtp_timeout_hangup: Some(Duration::from_secs(30)),
            transport: None,
            outbound_proxy: None,
            failover: FailoverConfig::default(),
            health: HealthConfig::default(),
            endpoint,
            dns_timeout: Duration::from_secs(4),
            keepalive: Some(KeepAliveConfig::stream()),
            udp_keepalive: Some(KeepAliveConfig::datagram()),
            fail_back_interval: Duration::from_secs(5),
            probe_budget: Duration::from_secs(4),
            call_limit: DEFAULT_CALL_LIMIT,
            session_timer: Some(SessionTimerConfig::default()),
            accept_transfer: TransferPolicy::Ask,
            level_meters: false,
            processing: tincan_media::dsp::ProcessingConfig::OFF,
            prack: PrackPolicy::default(),
        }
    }
}

/// One SIP account: an address of record, its credentials (given once, used for REGISTER,
/// INVITE and every other challenged request), its registrars and outbound proxy.
/// `Debug` does not print the password.
#[derive(Clone)]
pub struct AccountConfig {
    /// A name for events and logs.
    pub name: String,
    /// The address of record (`sip:alice@example.com`).
    pub aor: String,
    /// Our display name in calls.
    pub display_name: Option<String>,
    /// Digest username.
    pub username: String,
    /// Digest password.
    pub password: String,
    /// Which digest realms the password answers; a 401/407 of another realm, to any request
    /// of the account, is refused ([`AccountEvent::ChallengeRefused`](super::AccountEvent::ChallengeRefused),
    /// [`CallWarning::ChallengeRefused`](super::CallWarning::ChallengeRefused)) and the
    /// request fails with it. By default the first realm that challenges the account pins
    /// (its registrar's, for an account that registers; the first challenge to a request
    /// through its outbound proxy, registrars or domain, for one that does not).
    pub realm: RealmPolicy,
    /// Forced transport (`None`: RFC 3263 chooses).
    pub transport: Option<Transport>,
    /// Explicit registrars (SIP URIs), in order; empty: the AOR's domain.
    pub registrars: Vec<String>,
    /// Where calls of this account go first; `None`: its registrars in order (with failover
    /// across them), as most providers expect.
    pub outbound_proxy: Option<String>,
    /// One registrar at a time, or all at once.
    pub mode: RegisterMode,
    /// Requested expiry, seconds.
    pub expires: u32,
    /// Whether to register at all (an account may only place calls).
    pub register: bool,
    /// RFC 5626 instance id for `+sip.instance` (with `reg-id`), if outbound is on: the
    /// registration flows are then kept alive as [`PhoneConfig::keepalive`] and
    /// [`PhoneConfig::udp_keepalive`] say, and replaced at once when they fail.
    pub instance_id: Option<String>,
    /// Most calls of this account at once (incoming and outgoing); a new incoming call to
    /// it over the bound is refused 486 Busy Here: the user is busy, though the phone could
    /// take calls for other accounts. `None`: only the phone's
    /// [`call_limit`](PhoneConfig::call_limit).
    pub call_limit: Option<usize>,
    /// Codecs of this account's calls (placed through it or to it), in order of preference;
    /// `None`: the phone's [`codecs`](PhoneConfig::codecs). A call's own
    /// [`CallParams::codecs`] wins over both.
    pub codecs: Option<Vec<CodecKind>>,
    /// SRTP policy of this account's calls; `None`: the phone's
    /// [`srtp`](PhoneConfig::srtp). A call's own [`CallParams::srtp`] wins over both.
    pub srtp: Option<SrtpPolicy>,
    /// What a REFER in this account's calls does; `None`: the phone's
    /// [`accept_transfer`](PhoneConfig::accept_transfer).
    pub accept_transfer: Option<TransferPolicy>,
    /// Subscribe to the account's `message-summary` event (RFC 3842) once it registers:
    /// its NOTIFYs come as [`PhoneEvent::MessageWaiting`](super::PhoneEvent::MessageWaiting);
    /// the subscription is refreshed while the account is registered and ended when it
    /// unregisters. Default false.
    pub mwi: bool,
    /// Publish the account's presence (RFC 3903 PUBLISH of a PIDF document) once it
    /// registers: available, and busy ("on the phone") while a call is up; see
    /// [`presence`](super::presence). Default false.
    pub presence: bool,
    /// Contacts whose presence the account watches once it registers (RFC 3856
    /// SUBSCRIBE): URIs, or user names in the account's domain. Their NOTIFYs come as
    /// [`PhoneEvent::Presence`](super::PhoneEvent::Presence).
    pub watch: Vec<String>,
    /// Contacts whose busy lamps (RFC 4235 dialog event package) this account watches once
    /// it registers, as with [`PhoneCore::watch_dialogs`](super::PhoneCore::watch_dialogs):
    /// SIP URIs, `user@domain` or users of the account's domain. Default none.
    pub blf: Vec<String>,
}

impl AccountConfig {
    /// An account for `aor` with these credentials, registering with the AOR's domain.
    pub fn new(
        name: impl Into<String>,
        aor: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> AccountConfig {
        AccountConfig {
            name: name.into(),
            aor: aor.into(),
            display_name: None,
            username: username.into(),
            password: password.into(),
            realm: RealmPolicy::FirstChallenge,
            transport: None,
            registrars: Vec::new(),
            outbound_proxy: None,
            mode: RegisterMode::Failover,
            expires: 600,
            register: true,
            instance_id: None,
            call_limit: None,
            codecs: None,
            srtp: None,
            accept_transfer: None,
            mwi: false,
            presence: false,
            watch: Vec::new(),
            blf: Vec::new(),
        }
    }

    /// The domain of the address of record.
    pub fn domain(&self) -> &str {
        let rest = self.aor.split_once(':').map_or(&*self.aor, |(_, r)| r);
        let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
        host.split([';', '?', '>']).next().unwrap_or(host)
    }
}

impl std::fmt::Debug for AccountConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountConfig")
            .field("name", &self.name)
            .field("aor", &self.aor)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("realm", &self.realm)
            .field("registrars", &self.registrars)
            .field("outbound_proxy", &self.outbound_proxy)
            .field("mode", &self.mode)
            .field("expires", &self.expires)
            .field("register", &self.register)
            .field("call_limit", &self.call_limit)
            .field("codecs", &self.codecs)
            .field("srtp", &self.srtp)
            .finish_non_exhaustive()
    }
}

/// What a call placed with [`PhoneCore::call`](super::PhoneCore::call) uses.
#[derive(Debug, Clone, Default)]
pub struct CallParams {
    /// Place it through this account (its outbound proxy or registrars, its credentials, its
    /// From); `None`: the account whose domain matches the callee's, or the only one, or
    /// straight to the callee's domain when there is none.
    pub account: Option<super::AccountId>,
    /// Codecs for this call (overrides the phone's).
    pub codecs: Option<Vec<CodecKind>>,
    /// SRTP policy for this call (overrides the phone's).
    pub srtp: Option<SrtpPolicy>,
    /// Send no offer in the INVITE (the callee offers in its 2xx, we answer in the ACK).
    pub late_offer: bool,
}

impl AccountConfig {
    /// The account of a config file's `[[account]]` (docs/config.md): its password read from
    /// where the file says (inline, a file, an environment variable, a command).
    ///
    /// # Errors
    ///
    /// [`ConfigError`](crate::config::ConfigError) when the password cannot be read.
    pub fn from_config(
        a: &crate::config::Account,
    ) -> Result<AccountConfig, crate::config::ConfigError> {
        let password = a.password()?;
        let mut ac = AccountConfig::new(
            a.name.clone(),
            a.aor.to_string(),
            a.username.clone(),
            password.expose().to_owned(),
        );
        ac.realm = a.realm.clone();
        ac.transport = a.transport.transport();
        ac.registrars = a.registrar_uris().iter().map(ToString::to_string).collect();
        ac.mode = a.register_mode;
        ac.expires = a.expires;
        ac.instance_id = a.outbound.then(|| a.instance_id.clone());
        ac.call_limit = a.call_limit;
        ac.codecs = a.codecs.clone();
        ac.srtp = a.srtp;
        ac.accept_transfer = a.accept_transfer;
        ac.mwi = a.mwi;
        ac.presence = a.presence;
        ac.watch = a.watch.clone();
        ac.blf = a.blf.clone();
        ac.display_name = a.display_name.clone();
        Ok(ac)
    }
}

impl PhoneConfig {
    /// The settings of a config file's `[network]`: the keep-alives (`keepalive_interval`,
    /// `udp_keepalive_interval`, `stun_rto_ms`; 0 turns one off) for the flows of outbound
    /// accounts, and the call limit (`call_limit`; 0: none).
    pub fn apply_network(&mut self, network: &crate::config::Network) {
        use tincan_sip::flow::KeepAliveConfig;
        self.call_limit = match network.call_limit {
            Some(0) => usize::MAX,
            Some(n) => n as usize,
            None => DEFAULT_CALL_LIMIT,
        };
        self.accept_transfer = network.accept_transfer.unwrap_or_default();
        self.session_timer = match network.session_expires {
            Some(0) => None,
            Some(interval) => Some(SessionTimerConfig {
                interval,
                ..SessionTimerConfig::default()
            }),
            None => Some(SessionTimerConfig::default()),
        };
        self.prack = network.prack.unwrap_or_default();
        self.keepalive = match network.keepalive_interval {
            Some(0) => None,
            Some(secs) => {
                let mut k = KeepAliveConfig::stream();
                k.interval = Duration::from_secs(u64::from(secs));
                Some(k)
            }
            None => Some(KeepAliveConfig::stream()),
        };
        self.udp_keepalive = match network.udp_keepalive_interval {
            Some(0) => None,
            secs => {
                let mut k = KeepAliveConfig::datagram();
                if let Some(secs) = secs {
                    k.interval = Duration::from_secs(u64::from(secs));
                }
                if let Some(ms) = network.stun_rto_ms {
                    k = k.with_stun_rto(Duration::from_millis(u64::from(ms)));
                }
                Some(k)
            }
        };
    }
}
