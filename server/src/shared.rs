//! What every connection of a server shares, in its own module so that the listener
//! ([`crate::Server`]) and the connection handlers it starts (handshake checks, translation
//! sessions, `/v1/realtime` sessions) all depend on it and not on each other.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use crate::config::ServerConfig;
use crate::record::Records;

/// What every connection of a server shares.
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub records: Records,
    /// Numbers `sess_<n>`.
    pub sessions: AtomicU64,
    /// Handshakes seen per fault set carrying `fault_rate_limit_first` (key: canonical query).
    rate_limited: Mutex<HashMap<String, u32>>,
}

impl Shared {
    pub(crate) fn new(config: ServerConfig) -> Shared {
        Shared {
            records: Records::with_event_limit(config.event_record_limit),
            config,
            sessions: AtomicU64::new(0),
            rate_limited: Mutex::default(),
        }
    }

    /// Counts one more handshake with this fault set; returns its number (1 for the first).
    pub(crate) fn count_rate_limited_handshake(&self, key: &str) -> u32 {
        let mut counts = self.rate_limited.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }
}
