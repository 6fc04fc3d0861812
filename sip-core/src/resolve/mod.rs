//! RFC 3263 server location: NAPTR -> SRV -> A/AAAA ordering, caching and target health.
