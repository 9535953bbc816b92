//! `backend=local`: the offline engine (Whisper or PocketSphinx → Apertium → eSpeak NG, or
//! Whisper's translation → Piper) served in-process. Whisper and Piper run in the engine's child
//! process, so the plugin itself never loads a speech model.
//!
//! The first element that needs it starts one loopback server on the shared runtime; every later
//! session in the process reuses it. The element then talks to it exactly as to the cloud service,
//! so there is one code path.

/// URL of the in-process offline server, starting it on first use with `model` (the recogniser
/// the first session asks for) loaded: a session on PocketSphinx does not wait for Whisper's
/// worker to load, which takes seconds of CPU. A recogniser asked for later loads on its first
/// session.
#[cfg(feature = "local-engine")]
pub async fn url(model: &str) -> Result<String, String> {
    use realtimetranslate_server::engine::offline::languages::RecognizerChoice;
    use realtimetranslate_server::engine::offline::{OfflineEngineFactory, OfflineOptions};
    use realtimetranslate_server::{Server, ServerConfig};
    use std::sync::Arc;
    static URL: tokio::sync::OnceCell<Result<String, String>> = tokio::sync::OnceCell::const_new();
    let mut options = OfflineOptions::default();
    options.default_recognizer = RecognizerChoice::from_model(model, options.default_recognizer);
    URL.get_or_init(|| async {
        // Loading models and warming the recogniser up is CPU work: keep it off the I/O workers.
        let factory =
            tokio::task::spawn_blocking(move || OfflineEngineFactory::with_options(options))
                .await
                .map_err(|err| format!("offline engine start-up failed: {err}"))??;
        let mut config = ServerConfig::new(Arc::new(factory));
        // Runs as long as the process: keep its records of what clients sent bounded.
        config.event_record_limit = 1000;
        let server = Server::bind(([127, 0, 0, 1], 0).into(), config)
            .await
            .map_err(|err| format!("cannot open the local engine's port: {err}"))?;
        let url = server.url();
        tokio::spawn(server.serve());
        Ok(url)
    })
    .await
    .clone()
}

#[cfg(not(feature = "local-engine"))]
pub async fn url(_model: &str) -> Result<String, String> {
    Err("this build of realtimetranslate has no local engine (feature `local-engine`)".into())
}
