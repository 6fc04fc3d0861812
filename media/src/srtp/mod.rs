//! SRTP and SRTCP (RFC 3711) keyed with SDES (RFC 4568 `a=crypto`).
//!
//! Packet protection is done by the webrtc-rs `rtc-srtp` crate with the `ring` crypto
//! provider; the `a=crypto` attribute is ours ([`CryptoAttribute`]).
//!
//! ```
//! use tincan_media::srtp::{CryptoAttribute, CryptoSuite, SrtpSession};
//!
//! let alice = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, |b| b.fill(7));
//! let bob = CryptoAttribute::generate(1, CryptoSuite::AesCm128HmacSha1_80, |b| b.fill(9));
//! let mut a = SrtpSession::new(&alice, &bob).expect("valid keys");
//! let mut b = SrtpSession::new(&bob, &alice).expect("valid keys");
//! let rtp = [0x80, 0, 0, 1, 0, 0, 0, 160, 0, 0, 0, 42, 1, 2, 3, 4];
//! let protected = a.protect_rtp(&rtp).expect("protects");
//! assert_eq!(protected.len(), rtp.len() + 10);
//! assert_eq!(b.unprotect_rtp(&protected).expect("authentic"), rtp);
//! // The same packet again is a replay.
//! assert!(b.unprotect_rtp(&protected).is_err());
//! ```

mod crypto_attribute;

pub use crypto_attribute::{
    CryptoAttribute, CryptoAttributeError, CryptoSuite, MASTER_KEY_LEN, MASTER_SALT_LEN,
};

use rtc_srtp::context::Context;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;

/// RFC 3711 §3.3.2: the replay window; 64 is the minimum the RFC allows and what libsrtp uses
/// by default. We take 128 to tolerate more reordering on jittery links.
pub const REPLAY_WINDOW: usize = 128;

/// Why SRTP could not be set up or a packet could not be (un)protected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// The keys could not be turned into a crypto context.
    #[error("srtp key setup failed: {0}")]
    KeySetup(String),
    /// The packet failed authentication, was a replay, or was malformed.
    #[error("srtp unprotect failed: {0}")]
    Unprotect(String),
    /// Protecting failed (packet malformed or key exhausted, RFC 3711 §9.2).
    #[error("srtp protect failed: {0}")]
    Protect(String),
}

fn profile(suite: CryptoSuite) -> ProtectionProfile {
    match suite {
        CryptoSuite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
        CryptoSuite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
    }
}

/// The two SRTP contexts of one media stream: ours (protect) and the peer's (unprotect).
pub struct SrtpSession {
    outbound: Context,
    inbound: Context,
    suite: CryptoSuite,
}

impl std::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// Contexts from our `a=crypto` (used to protect what we send) and the peer's (used to
    /// check and decrypt what we receive). Inbound contexts have replay protection
    /// ([`REPLAY_WINDOW`]).
    ///
    /// # Errors
    ///
    /// [`SrtpError::KeySetup`] if the crypto provider refuses the keys.
    pub fn new(local: &CryptoAttribute, remote: &CryptoAttribute) -> Result<Self, SrtpError> {
        let provider = rtc_crypto::default_provider()
            .map_err(|e| SrtpError::KeySetup(e.to_string().to_lowercase()))?;
        let outbound = Context::new(
            &local.key,
            &local.salt,
            profile(local.suite),
            None,
            None,
            provider.crypto(),
        )
        .map_err(|e| SrtpError::KeySetup(e.to_string().to_lowercase()))?;
        let inbound = Context::new(
            &remote.key,
            &remote.salt,
            profile(remote.suite),
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
            provider.crypto(),
        )
        .map_err(|e| SrtpError::KeySetup(e.to_string().to_lowercase()))?;
        Ok(Self {
            outbound,
            inbound,
            suite: local.suite,
        })
    }

    /// Our crypto suite.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// Encrypts and authenticates an RTP packet.
    ///
    /// # Errors
    ///
    /// [`SrtpError::Protect`] if the packet is not RTP or the key is exhausted.
    pub fn protect_rtp(&mut self, rtp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.outbound
            .encrypt_rtp(rtp)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Protect(e.to_string().to_lowercase()))
    }

    /// Authenticates, replay-checks and decrypts an SRTP packet.
    ///
    /// # Errors
    ///
    /// [`SrtpError::Unprotect`] for a forged, corrupted, replayed or malformed packet.
    pub fn unprotect_rtp(&mut self, srtp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.inbound
            .decrypt_rtp(srtp)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Unprotect(e.to_string().to_lowercase()))
    }

    /// Encrypts and authenticates a (compound) RTCP packet (SRTCP, RFC 3711 §3.4).
    ///
    /// # Errors
    ///
    /// [`SrtpError::Protect`] if the packet is not RTCP or the key is exhausted.
    pub fn protect_rtcp(&mut self, rtcp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.outbound
            .encrypt_rtcp(rtcp)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Protect(e.to_string().to_lowercase()))
    }

    /// Authenticates, replay-checks and decrypts an SRTCP packet.
    ///
    /// # Errors
    ///
    /// [`SrtpError::Unprotect`] for a forged, corrupted, replayed or malformed packet.
    pub fn unprotect_rtcp(&mut self, srtcp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        self.inbound
            .decrypt_rtcp(srtcp)
            .map(|b| b.to_vec())
            .map_err(|e| SrtpError::Unprotect(e.to_string().to_lowercase()))
    }
}
