//! The API key: kept out of every `Debug`, log line, message and error by construction.

use std::fmt;

/// An API key. It can be sent in a header and nothing else: no `Display`, a redacted `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// `None` for an empty key, so "set to empty" means "not set".
    pub fn new(key: impl Into<String>) -> Option<Self> {
        let key = key.into().trim().to_owned();
        (!key.is_empty()).then_some(Self(key))
    }

    /// The key from `OPENAI_API_KEY`, if set and not empty.
    pub fn from_env() -> Option<Self> {
        std::env::var("OPENAI_API_KEY").ok().and_then(Self::new)
    }

    /// The `Authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// For URL query parameters of engines that want the key there; callers must redact URLs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new("sk-very-secret").unwrap();
        assert!(!format!("{key:?}").contains("very-secret"));
        assert!(!format!("{:?}", Some(key.clone())).contains("very-secret"));
        assert_eq!(key.bearer(), "Bearer sk-very-secret");
    }

    #[test]
    fn empty_key_is_no_key() {
        assert!(ApiKey::new("  ").is_none());
    }
}
