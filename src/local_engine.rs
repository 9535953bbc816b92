//! `backend=local`: the offline engine (Whisper or PocketSphinx → Apertium → eSpeak NG, or
//! Whisper's translation → Piper) served in-process. Whisper and Piper run in the engine's child
//! process, so the plugin itself never loads a speech model.
//!
//! The first element that needs it starts one loopback server on the shared runtime; every later
//! session in the process reuses it. The element then talks to it exactly as to the cloud service,
//! so there is one code path. Each recogniser starts when the first session asks for it: with
//! `model=pocketsphinx`, the Whisper worker (a Python process holding 300 MB of models) never
//! starts.

/// URL of the in-process offline server, starting it on first use, with the recogniser `model`
/// (the element's `model` property) ready: a missing model is an error here, not in a session.
#[cfg(feature = "local-engine")]
pub async fn url(model: &str) -> Result<String, String> {
    use realtimetranslate_server::engine::offline::{OfflineEngineFactory, OfflineOptions};
    use realtimetranslate_server::{Server, ServerConfig};
    use std::sync::Arc;
    type Started = Result<(String, Arc<OfflineEngineFactory>), String>;
    static SERVER: tokio::sync::OnceCell<Started> = tokio::sync::OnceCell::const_new();
    let (url, factory) = SERVER
        .get_or_init(|| async {
            // Checking the Debian packages is CPU work: keep it off the I/O workers.
            let factory = tokio::task::spawn_blocking(|| {
                OfflineEngineFactory::with_options(OfflineOptions {
                    start_default: false,
                    ..OfflineOptions::default()
                })
            })
            .await
            .map_err(|err| format!("offline engine start-up failed: {err}"))??;
            let factory = Arc::new(factory);
            let mut config = ServerConfig::new(factory.clone());
            // Runs as long as the process: keep its records of what clients sent bounded.
            config.event_record_limit = 1000;
            let server = Server::bind(([127, 0, 0, 1], 0).into(), config)
                .await
                .map_err(|err| format!("cannot open the local engine's port: {err}"))?;
            let url = server.url();
            tokio::spawn(server.serve());
            Ok((url, factory))
        })
        .await
        .clone()?;
    // Loading a model and warming a recogniser up is CPU work too; done once per recogniser.
    let model = model.to_owned();
    tokio::task::spawn_blocking(move || factory.prepare(&model))
        .await
        .map_err(|err| format!("offline engine start-up failed: {err}"))??;
    Ok(url)
}

#[cfg(not(feature = "local-engine"))]
pub async fn url(_model: &str) -> Result<String, String> {
    Err("this build of realtimetranslate has no local engine (feature `local-engine`)".into())
}
