//! Injected randomness. The core never draws from the operating system: it takes a
//! [`rand_core::Rng`], so tests seed it and replay the same trace.
//!
//! Two generators, one for each job (docs/decisions.md, "Entropy in one place"):
//!
//! - [`XorShiftRng`] (`rand_xorshift`), seeded with [`rand_core::SeedableRng::seed_from_u64`]:
//!   the one deterministic generator of both cores (this crate and `tincan-media` use the same
//!   type), for tests, simulations and values that only need to differ (glare back-off, SRV
//!   weights). Never for secrets: its state can be recovered from its output.
//! - `driver::OsRng` (with the `tokio` feature): the operating system's CSPRNG, what the
//!   drivers and the application inject in production, and the only source of key material
//!   (digest cnonces, SRTP master keys).
//!
//! ```
//! use rand_core::{Rng, SeedableRng};
//! use tincan_sip::rng::XorShiftRng;
//!
//! let mut a = XorShiftRng::seed_from_u64(7);
//! let mut b = XorShiftRng::seed_from_u64(7);
//! assert_eq!(a.next_u64(), b.next_u64());
//! ```

/// The deterministic generator shared by the cores: Marsaglia's xorshift128 from
/// `rand_xorshift`. Seed it with [`rand_core::SeedableRng::seed_from_u64`].
pub use rand_xorshift::XorShiftRng;
