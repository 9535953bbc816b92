//! Where the offline engine's Whisper runtime and models live: a directory outside the
//! repository that `scripts/setup-offline-models.sh` (run by `scripts/setup.sh`) fills.

use std::path::{Path, PathBuf};

/// What to run when the models are missing.
pub const SETUP_COMMAND: &str = "scripts/setup.sh";
/// sha256 of every model file, relative to the models directory; the worker checks each file
/// against it before loading (the weights come from third-party repackagings).
pub const MANIFEST: &str = include_str!("../../../python/models.sha256");

/// The set-up directory: `$REALTIMETRANSLATE_OFFLINE_DIR`, else
/// `$XDG_CACHE_HOME/realtimetranslate`, else `~/.cache/realtimetranslate`.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    root: PathBuf,
}

impl ModelFiles {
    pub fn locate() -> Self {
        let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let root = env("REALTIMETRANSLATE_OFFLINE_DIR")
            .map(PathBuf::from)
            .or_else(|| env("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("realtimetranslate")))
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".cache/realtimetranslate")))
            .unwrap_or_else(|| PathBuf::from("/var/cache/realtimetranslate"));
        ModelFiles { root }
    }

    pub fn at(root: impl Into<PathBuf>) -> Self {
        ModelFiles { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The venv's interpreter.
    pub fn python(&self) -> PathBuf {
        self.root.join("venv/bin/python3")
    }

    pub fn models(&self) -> PathBuf {
        self.root.join("models")
    }

    /// The real read speech the set-up unpacks (LibriVox, from the pocketsphinx sdist).
    pub fn librivox(&self) -> PathBuf {
        self.root.join("librivox")
    }

    /// A clear error when the runtime or a model directory is missing (the hashes are checked
    /// by the worker when it loads a model).
    pub fn check(&self, model: &str) -> Result<(), String> {
        let python = self.python();
        if !python.exists() {
            return Err(format!(
                "the offline engine's Whisper runtime is not set up ({} is missing): run {SETUP_COMMAND}",
                python.display()
            ));
        }
        let dir = self.models().join(model);
        if !dir.join("model.bin").exists() && !dir.read_dir().is_ok_and(|mut d| d.next().is_some())
        {
            return Err(format!(
                "the offline model {model} is not set up ({} is missing): run {SETUP_COMMAND}",
                dir.display()
            ));
        }
        Ok(())
    }
}
