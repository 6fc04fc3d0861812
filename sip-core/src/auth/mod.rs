//! Authentication: HTTP digest (RFC 2617, RFC 7616, RFC 8760) for SIP (RFC 3261 §22).
//!
//! - [`header`]: generic, lossless parsing and printing of `WWW-Authenticate`,
//!   `Proxy-Authenticate`, `Authorization`, `Proxy-Authorization` and `Authentication-Info`
//!   values. The message layer uses these for typed access to those headers.
//! - [`digest`]: the digest scheme: typed challenge/credentials, the response computation
//!   (MD5, SHA-256, SHA-512-256 and their `-sess` variants; qop `auth`, `auth-int`, none) and
//!   [`DigestClient`], the per-account state (credentials, nonce counts, `stale` handling).
//!
//! ```
//! use tincan_sip::auth::{ChallengeKind, DigestClient, DigestRequest};
//!
//! # struct Fixed;
//! # impl rand_core::TryRng for Fixed {
//! #     type Error = core::convert::Infallible;
//! #     fn try_next_u32(&mut self) -> Result<u32, Self::Error> { Ok(7) }
//! #     fn try_next_u64(&mut self) -> Result<u64, Self::Error> { Ok(7) }
//! #     fn try_fill_bytes(&mut self, d: &mut [u8]) -> Result<(), Self::Error> { d.fill(7); Ok(()) }
//! # }
//! # let mut rng = Fixed;
//! let mut client = DigestClient::new("alice", "secret");
//! let challenge = r#"Digest realm="example.test", nonce="26397n1x608", algorithm=MD5, qop="auth""#;
//! let request = DigestRequest { method: "REGISTER", uri: "sip:example.test", body: b"" };
//! let answers = client
//!     .respond_to_values(ChallengeKind::Www, &[challenge], &request, &[], &mut rng)
//!     .expect("a supported challenge");
//! assert_eq!(answers[0].header_name(), "Authorization");
//! assert!(answers[0].credentials.to_string().contains("nc=00000001"));
//! ```

pub mod challenge;
pub mod digest;
pub mod header;

pub use challenge::{ChallengeAnswer, answer_challenge};

pub use digest::{
    Algorithm, AuthError, Authorization, ChallengeKind, DigestChallenge, DigestClient,
    DigestCredentials, DigestRequest, Qop, ResponseInputs, digest_response, digest_rspauth,
};
pub use header::{AuthParam, AuthParseError, AuthenticationInfo, Challenge, Credentials};
