//! The SDP `a=crypto` attribute for SDES key exchange (RFC 4568 §4, §9.1).
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> <key-params> [<session-params>]
//! key-params = "inline:" base64(key || salt) ["|" lifetime] ["|" MKI ":" length]
//! ```

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Master key length of the AES_CM_128 suites, in octets (RFC 4568 §6.2).
pub const MASTER_KEY_LEN: usize = 16;
/// Master salt length of the AES_CM_128 suites, in octets (RFC 4568 §6.2).
pub const MASTER_SALT_LEN: usize = 14;

/// The SRTP crypto suites we support (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoSuite {
    /// AES counter mode, 128-bit key, HMAC-SHA1 with an 80-bit tag (RFC 4568 §6.2.1).
    AesCm128HmacSha1_80,
    /// AES counter mode, 128-bit key, HMAC-SHA1 with a 32-bit tag (RFC 4568 §6.2.2).
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    /// The suite's name as written in SDP.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Self::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// RFC 4568 §6.2.1: the default and maximum master key lifetime, 2^48 packets for SRTP.
    pub fn max_lifetime(self) -> u64 {
        1 << 48
    }
}

impl fmt::Display for CryptoSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an `a=crypto` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoAttributeError {
    /// Not of the form `tag suite key-params [session-params]`.
    #[error("malformed crypto attribute: {0}")]
    Malformed(&'static str),
    /// The tag is not a 1-9 digit decimal number.
    #[error("invalid crypto tag")]
    InvalidTag,
    /// A crypto suite we do not implement.
    #[error("unsupported crypto suite {0}")]
    UnsupportedSuite(String),
    /// Only the `inline` key method exists (RFC 4568 §6.1).
    #[error("unsupported key method")]
    UnsupportedKeyMethod,
    /// The inline key is not base64 or not 30 octets (16-octet key || 14-octet salt).
    #[error("invalid inline key: {0}")]
    InvalidKey(&'static str),
    /// The lifetime is not a number or `2^n`, or exceeds the suite's maximum.
    #[error("invalid key lifetime")]
    InvalidLifetime,
    /// An MKI was given: we support a single master key without MKI.
    #[error("mki is not supported")]
    MkiUnsupported,
    /// More than one key: only meaningful with an MKI, which we do not support.
    #[error("multiple keys are not supported")]
    MultipleKeys,
    /// A session parameter that changes the protection (RFC 4568 §6.3) that we do not implement.
    #[error("unsupported session parameter {0}")]
    UnsupportedSessionParameter(String),
}

/// One `a=crypto` line: a tag, a suite, one inline master key and salt.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag, 1-999999999, matching an answer to its offer (RFC 4568 §4.1).
    pub tag: u32,
    /// The crypto suite.
    pub suite: CryptoSuite,
    /// The 16-octet master key.
    pub key: [u8; MASTER_KEY_LEN],
    /// The 14-octet master salt.
    pub salt: [u8; MASTER_SALT_LEN],
    /// The master key lifetime in packets, when given.
    pub lifetime: Option<u64>,
}

impl fmt::Debug for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl CryptoAttribute {
    /// A fresh attribute with key and salt from `fill_random`, which must be a cryptographically
    /// secure RNG in production (the driver uses the operating system's) and may be seeded in tests.
    pub fn generate(tag: u32, suite: CryptoSuite, fill_random: impl FnOnce(&mut [u8])) -> Self {
        let Ok(a) = Self::try_generate(tag, suite, |buf| {
            fill_random(buf);
            Ok::<(), std::convert::Infallible>(())
        });
        a
    }

    /// [`generate`](Self::generate) with a generator that can fail (the operating system's):
    /// its error is returned and no attribute is made, never a weaker key.
    ///
    /// # Errors
    ///
    /// Whatever `fill_random` returns.
    pub fn try_generate<E>(
        tag: u32,
        suite: CryptoSuite,
        fill_random: impl FnOnce(&mut [u8]) -> Result<(), E>,
    ) -> Result<Self, E> {
        let mut material = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN];
        fill_random(&mut material)?;
        let mut key = [0u8; MASTER_KEY_LEN];
        let mut salt = [0u8; MASTER_SALT_LEN];
        key.copy_from_slice(&material[..MASTER_KEY_LEN]);
        salt.copy_from_slice(&material[MASTER_KEY_LEN..]);
        Ok(Self {
            tag,
            suite,
            key,
            salt,
            lifetime: None,
        })
    }

    /// Parses the value of an `a=crypto` attribute (everything after `a=crypto:`).
    ///
    /// # Errors
    ///
    /// A [`CryptoAttributeError`] saying what is wrong or unsupported.
    pub fn parse(value: &str) -> Result<Self, CryptoAttributeError> {
        let value = value.trim();
        let value = value.strip_prefix("a=crypto:").unwrap_or(value);
        let mut fields = value.split_ascii_whitespace();
        let tag = fields
            .next()
            .ok_or(CryptoAttributeError::Malformed("empty"))?;
        if tag.is_empty() || tag.len() > 9 || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CryptoAttributeError::InvalidTag);
        }
        let tag: u32 = tag.parse().map_err(|_| CryptoAttributeError::InvalidTag)?;
        let suite = fields
            .next()
            .ok_or(CryptoAttributeError::Malformed("missing crypto suite"))?;
        let suite = match suite {
            "AES_CM_128_HMAC_SHA1_80" => CryptoSuite::AesCm128HmacSha1_80,
            "AES_CM_128_HMAC_SHA1_32" => CryptoSuite::AesCm128HmacSha1_32,
            other => return Err(CryptoAttributeError::UnsupportedSuite(other.to_owned())),
        };
        let key_params = fields
            .next()
            .ok_or(CryptoAttributeError::Malformed("missing key parameters"))?;
        if key_params.contains(';') {
            return Err(CryptoAttributeError::MultipleKeys);
        }
        let (method, info) = key_params
            .split_once(':')
            .ok_or(CryptoAttributeError::Malformed(
                "key parameter without method",
            ))?;
        if !method.eq_ignore_ascii_case("inline") {
            return Err(CryptoAttributeError::UnsupportedKeyMethod);
        }
        let mut parts = info.split('|');
        let key_salt = parts.next().unwrap_or_default();
        let material = STANDARD
            .decode(key_salt)
            .map_err(|_| CryptoAttributeError::InvalidKey("not base64"))?;
        if material.len() != MASTER_KEY_LEN + MASTER_SALT_LEN {
            return Err(CryptoAttributeError::InvalidKey("not 30 octets"));
        }
        let mut lifetime = None;
        for part in parts {
            if part.contains(':') {
                return Err(CryptoAttributeError::MkiUnsupported);
            }
            if lifetime.is_some() {
                return Err(CryptoAttributeError::Malformed("two lifetimes"));
            }
            let n = parse_lifetime(part)?;
            if n == 0 || n > suite.max_lifetime() {
                return Err(CryptoAttributeError::InvalidLifetime);
            }
            lifetime = Some(n);
        }
        for param in fields {
            let name = param.split('=').next().unwrap_or_default();
            // WSH (window size hint, RFC 4568 §6.3.7) is only a hint; everything else changes
            // how packets are protected and must be understood or the line refused.
            if !name.eq_ignore_ascii_case("WSH") {
                return Err(CryptoAttributeError::UnsupportedSessionParameter(
                    name.to_owned(),
                ));
            }
        }
        let mut key = [0u8; MASTER_KEY_LEN];
        let mut salt = [0u8; MASTER_SALT_LEN];
        key.copy_from_slice(&material[..MASTER_KEY_LEN]);
        salt.copy_from_slice(&material[MASTER_KEY_LEN..]);
        Ok(Self {
            tag,
            suite,
            key,
            salt,
            lifetime,
        })
    }
}

fn parse_lifetime(s: &str) -> Result<u64, CryptoAttributeError> {
    if let Some(exp) = s.strip_prefix("2^") {
        let exp: u32 = exp
            .parse()
            .map_err(|_| CryptoAttributeError::InvalidLifetime)?;
        if exp >= 64 {
            return Err(CryptoAttributeError::InvalidLifetime);
        }
        Ok(1u64 << exp)
    } else if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().map_err(|_| CryptoAttributeError::InvalidLifetime)
    } else {
        Err(CryptoAttributeError::InvalidLifetime)
    }
}

impl FromStr for CryptoAttribute {
    type Err = CryptoAttributeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The attribute value (without `a=crypto:`), e.g.
/// `1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20`.
impl fmt::Display for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut material = [0u8; MASTER_KEY_LEN + MASTER_SALT_LEN];
        material[..MASTER_KEY_LEN].copy_from_slice(&self.key);
        material[MASTER_KEY_LEN..].copy_from_slice(&self.salt);
        write!(
            f,
            "{} {} inline:{}",
            self.tag,
            self.suite,
            STANDARD.encode(material)
        )?;
        if let Some(lifetime) = self.lifetime {
            if lifetime.is_power_of_two() {
                write!(f, "|2^{}", lifetime.trailing_zeros())?;
            } else {
                write!(f, "|{lifetime}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §4 example.
    const RFC_EXAMPLE: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32";

    #[test]
    fn rfc_example_with_mki_is_refused() {
        assert_eq!(
            CryptoAttribute::parse(RFC_EXAMPLE),
            Err(CryptoAttributeError::MkiUnsupported)
        );
    }

    #[test]
    fn parses_and_prints_without_mki() {
        let line = "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20";
        let a = CryptoAttribute::parse(line).expect("valid");
        assert_eq!(a.tag, 1);
        assert_eq!(a.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(a.lifetime, Some(1 << 20));
        assert_eq!(&a.key[..4], &[0x3d, 0x2d, 0x6e, 0x40]);
        assert_eq!(a.to_string(), line);
        let with_prefix = format!("a=crypto:{line}");
        assert_eq!(CryptoAttribute::parse(&with_prefix), Ok(a));
    }

    #[test]
    fn sha1_32_and_decimal_lifetime_and_wsh() {
        let a = CryptoAttribute::parse(
            "42 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|1000 WSH=64",
        )
        .expect("valid");
        assert_eq!(a.suite, CryptoSuite::AesCm128HmacSha1_32);
        assert_eq!(a.lifetime, Some(1000));
        assert!(a.to_string().ends_with("|1000"));
    }

    #[test]
    fn refusals() {
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let cases = [
            (String::new(), CryptoAttributeError::Malformed("empty")),
            (
                format!("x AES_CM_128_HMAC_SHA1_80 {key}"),
                CryptoAttributeError::InvalidTag,
            ),
            (
                format!("1 F8_128_HMAC_SHA1_80 {key}"),
                CryptoAttributeError::UnsupportedSuite("F8_128_HMAC_SHA1_80".into()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80".into(),
                CryptoAttributeError::Malformed("missing key parameters"),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 uri:x".into(),
                CryptoAttributeError::UnsupportedKeyMethod,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:!!!".into(),
                CryptoAttributeError::InvalidKey("not base64"),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:AAAA".into(),
                CryptoAttributeError::InvalidKey("not 30 octets"),
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key}|2^49"),
                CryptoAttributeError::InvalidLifetime,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key}|soon"),
                CryptoAttributeError::InvalidLifetime,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key};{key}"),
                CryptoAttributeError::MultipleKeys,
            ),
            (
                format!("1 AES_CM_128_HMAC_SHA1_80 {key} UNENCRYPTED_SRTP"),
                CryptoAttributeError::UnsupportedSessionParameter("UNENCRYPTED_SRTP".into()),
            ),
        ];
        for (line, err) in cases {
            assert_eq!(CryptoAttribute::parse(&line), Err(err), "{line}");
        }
    }

    #[test]
    fn generate_round_trips_and_hides_key_in_debug() {
        let mut n = 0u8;
        let a = CryptoAttribute::generate(3, CryptoSuite::AesCm128HmacSha1_32, |buf| {
            for b in buf {
                *b = n;
                n += 1;
            }
        });
        assert_eq!(a.key[0], 0);
        assert_eq!(a.salt[13], 29);
        assert_eq!(CryptoAttribute::parse(&a.to_string()), Ok(a.clone()));
        assert!(!format!("{a:?}").contains("inline"));
    }
}
