//! The tokio driver of the phone core.
