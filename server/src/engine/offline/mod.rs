//! Offline engine: PocketSphinx → Apertium → eSpeak NG. (placeholder, being written)

use super::{Engine, EngineFactory};

/// Makes offline engines; holds what sessions share (models, translator processes).
pub struct OfflineEngineFactory;

impl OfflineEngineFactory {
    /// Loads what the engine needs; fails with a clear message when a package is missing.
    pub fn new() -> Result<Self, String> {
        Err("offline engine not built yet".into())
    }
}

impl EngineFactory for OfflineEngineFactory {
    fn name(&self) -> &'static str {
        "offline"
    }
    fn supported_languages(&self) -> Vec<&'static str> {
        vec!["es"]
    }
    fn create(&self, _target_language: &str, _transcribe: bool) -> Result<Box<dyn Engine>, String> {
        Err("offline engine not built yet".into())
    }
}
