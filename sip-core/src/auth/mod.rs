//! Authentication: HTTP digest (RFC 2617, RFC 7616, RFC 8760) for SIP (RFC 3261 §22).
