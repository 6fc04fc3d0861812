//! Harness for Tincan's interop tests: starts real third-party SIP software on loopback,
//! picks free ports and stops what it started by PID.
