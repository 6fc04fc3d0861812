//! The operating system's cryptographically secure generator, for drivers and applications.
//!
//! The sans-IO core never reads it: it takes a [`rand_core::Rng`]. The driver hands the
//! endpoint an [`OsRng`] (unless [`DriverConfig::seed`](super::DriverConfig::seed) asks for
//! a reproducible run), and the application draws digest cnonces, SRTP master keys and seeds
//! from it. There is no weaker fallback: for key material a failure of the OS generator is an
//! [`OsRngError`] ([`OsRng::try_fill`]).

use std::convert::Infallible;

/// The operating system's CSPRNG (`getrandom(2)` on Linux, through the `getrandom` crate) as a
/// [`rand_core::Rng`]: pass `Box::new(OsRng)` where a core takes `Box<dyn Rng + Send>`.
///
/// As an [`Rng`](rand_core::Rng) it cannot report a failure, so it panics if the operating
/// system refuses randomness (on Linux only when neither `getrandom(2)` nor `/dev/urandom` is
/// usable, e.g. a seccomp sandbox forbidding both); key material goes through
/// [`try_fill`](Self::try_fill), which returns the error instead.
///
/// ```
/// use rand_core::Rng;
/// use tincan_sip::driver::OsRng;
///
/// let mut key = [0u8; 30];
/// OsRng::try_fill(&mut key)?;
/// let _seed = OsRng.next_u64();
/// # Ok::<(), tincan_sip::driver::OsRngError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRng;

/// The operating system's generator failed; no key material was produced.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random generator failed: {0}")]
pub struct OsRngError(getrandom::Error);

impl OsRng {
    /// Fills `dest` from the operating system's generator, for key material (SRTP master keys
    /// and salts).
    ///
    /// # Errors
    ///
    /// [`OsRngError`] if the operating system gives no randomness; `dest` must then not be used.
    pub fn try_fill(dest: &mut [u8]) -> Result<(), OsRngError> {
        getrandom::fill(dest).map_err(OsRngError)
    }
}

/// The message of the one panic: the operating system has no usable generator.
const NO_OS_GENERATOR: &str = "the operating system's random generator failed: the OS offers no \
     secure randomness (getrandom(2) and /dev/urandom both refused), and SIP tags, branches and \
     cnonces must not be guessable";

impl rand_core::TryRng for OsRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(getrandom::u32().expect(NO_OS_GENERATOR))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(getrandom::u64().expect(NO_OS_GENERATOR))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        getrandom::fill(dst).expect(NO_OS_GENERATOR);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for OsRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::Rng;

    #[test]
    fn draws_differ_and_fill_covers_the_buffer() {
        let mut rng = OsRng;
        // Two 64-bit draws collide with probability 2^-64.
        assert_ne!(rng.next_u64(), rng.next_u64());
        let mut key = [0u8; 64];
        OsRng::try_fill(&mut key).expect("Linux has getrandom(2)");
        assert!(key.iter().any(|&b| b != 0));
    }

    #[test]
    fn boxes_as_the_endpoint_generator() {
        let rng: Box<dyn Rng + Send> = Box::new(OsRng);
        drop(rng);
    }
}
