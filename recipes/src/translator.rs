//! The translator's options every recipe takes (`--backend`, `--url`, `--language`, `--latency`)
//! and how they become `realtimetranslate` properties.
//!
//! The default is the offline engine (`backend=local`, English → Spanish), so a recipe runs with
//! no account. `--url` alone selects that server (any server speaking the protocol); the key then
//! comes from `OPENAI_API_KEY`, never from the command line, where it would show in process lists.

use crate::cli::Args;
use gst::prelude::*;
use gstrealtimetranslate::secret::ApiKey;

#[derive(Debug, Clone, Default)]
pub struct TranslateOptions {
    /// `local` or `openai`; unset means `openai` when a URL is given, else `local`.
    pub backend: Option<String>,
    pub url: Option<String>,
    /// Target language (`--language`); the element's default (`es`) when unset.
    pub language: Option<String>,
    /// The element's `latency` in ms; its default when unset.
    pub latency_ms: Option<u32>,
    /// Set by programs embedding a recipe; `OPENAI_API_KEY` is used when unset.
    pub api_key: Option<ApiKey>,
}

impl TranslateOptions {
    /// Consumes `flag` (and its value) when it is a translator option; `Ok(false)` otherwise.
    pub fn accept(&mut self, flag: &str, args: &mut Args) -> Result<bool, String> {
        match flag {
            "--backend" => {
                let backend = args.value(flag)?;
                if backend != "local" && backend != "openai" {
                    return Err(format!("--backend {backend}: use local or openai"));
                }
                self.backend = Some(backend);
            }
            "--url" => self.url = Some(args.value(flag)?),
            "--language" => self.language = Some(args.value(flag)?),
            "--latency" => self.latency_ms = Some(args.parsed(flag)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub fn backend(&self) -> &str {
        match (&self.backend, &self.url) {
            (Some(backend), _) => backend,
            (None, Some(_)) => "openai",
            (None, None) => "local",
        }
    }

    /// The target language the element will use.
    pub fn language(&self) -> &str {
        self.language
            .as_deref()
            .unwrap_or(gstrealtimetranslate::realtimetranslate::DEFAULT_TARGET_LANGUAGE)
    }

    /// Sets the options on a `realtimetranslate` element (before it leaves READY).
    pub fn apply(&self, element: &gst::Element) {
        element.set_property_from_str("backend", self.backend());
        if let Some(url) = &self.url {
            element.set_property("url", url);
        }
        element.set_property("target-language", self.language());
        if let Some(latency) = self.latency_ms {
            element.set_property("latency", latency);
        }
        if let Some(key) = &self.api_key {
            element.set_property("api-key", key.expose());
        }
    }

    /// Applies the options to the element called `name` in `bin`.
    pub fn apply_to(&self, bin: &gst::Bin, name: &str) -> Result<(), String> {
        let element = bin
            .by_name(name)
            .ok_or_else(|| format!("no element named {name} in the pipeline"))?;
        self.apply(&element);
        Ok(())
    }

    /// The usage line for these options.
    pub const USAGE: &'static str =
        "[--language es] [--backend local|openai] [--url URL] [--latency MS]";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<TranslateOptions, String> {
        let mut options = TranslateOptions::default();
        let mut args = Args::new(args.iter().copied());
        while let Some(crate::cli::Arg::Flag(flag)) = args.next_arg() {
            if !options.accept(&flag, &mut args)? {
                return Err(crate::cli::unknown(&flag));
            }
        }
        Ok(options)
    }

    #[test]
    fn offline_engine_by_default_and_a_url_selects_a_server() {
        let local = parse(&[]).unwrap();
        assert_eq!(local.backend(), "local");
        assert_eq!(local.language(), "es");
        let remote = parse(&["--url", "ws://127.0.0.1:1/x", "--language", "fr"]).unwrap();
        assert_eq!(remote.backend(), "openai");
        assert_eq!(remote.language(), "fr");
        let forced = parse(&["--url", "ws://h/x", "--backend", "local"]).unwrap();
        assert_eq!(forced.backend(), "local");
    }

    #[test]
    fn bad_backend_and_latency_are_refused() {
        assert!(
            parse(&["--backend", "cloud"])
                .unwrap_err()
                .contains("local or openai")
        );
        assert!(parse(&["--latency", "soon"]).is_err());
        assert_eq!(parse(&["--wat"]).unwrap_err(), "unknown option --wat");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let options = TranslateOptions {
            api_key: ApiKey::new("sk-secret-value"),
            ..Default::default()
        };
        assert!(!format!("{options:?}").contains("secret-value"));
    }
}
