//! Offline engine, nothing downloaded at run time: Whisper (default; base or tiny.en, in a
//! long-lived child process) or PocketSphinx recognises, Apertium translates English into
//! Spanish, Catalan, Galician or Esperanto and eSpeak NG speaks it; speech in any language
//! Whisper knows becomes English through its translate task, spoken by a Piper voice.
//!
//! The session's `model` picks the recogniser (`whisper-base`, `whisper-tiny.en`,
//! `pocketsphinx`; anything else means the factory's default) and `source_language` fixes the
//! spoken language (else Whisper detects it). Models, translator pipelines and the worker
//! process are shared by all sessions and started on first use (the default recogniser at once,
//! unless [`OfflineOptions::start_default`] is off: then a PocketSphinx-only user never starts
//! the Whisper worker and its 300 MB of models).

pub mod apertium;
pub mod espeak;
pub mod interim;
pub mod languages;
pub mod model_files;
pub mod pocketsphinx;
pub mod pool;
pub mod python_worker;
pub mod recognizer;
pub mod resample;
pub mod segmenter;
pub mod sentences;
pub mod warmup;
pub mod whisper_session;

use super::{Engine, EngineFactory, EngineOutput, SessionOptions};
use apertium::Apertium;
use languages::{RecognizerChoice, TARGET_LANGUAGES, apertium_target, unsupported_target};
use model_files::ModelFiles;
use pool::DecoderPool;
use python_worker::PythonWorker;
use recognizer::{INPUT_RATE, Recognizer};
use sentences::{as_sentence, tidy_translation};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use whisper_session::{Output, WhisperSession};

/// Debian's US English model (package `pocketsphinx-en-us`).
const MODEL_DIR: &str = "/usr/share/pocketsphinx/model/en-us";
/// Post-speech hang-over in 10 ms frames: an utterance ends after 0.4 s of silence.
const VAD_POSTSPEECH: &str = "40";
/// Threads of the Whisper worker: the machine's cores, at most 4 (the decode of one utterance
/// uses them all; sessions take turns).
fn worker_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(4)
}

/// How an offline engine factory is set up.
#[derive(Debug, Clone)]
pub struct OfflineOptions {
    /// The recogniser of sessions that name none.
    pub default_recognizer: RecognizerChoice,
    /// Where the Whisper runtime and models are.
    pub files: ModelFiles,
    /// Start the default recogniser with the factory (a missing model is an error at once);
    /// off, everything starts with the first session that needs it (see
    /// [`OfflineEngineFactory::prepare`]).
    pub start_default: bool,
}

impl Default for OfflineOptions {
    fn default() -> Self {
        OfflineOptions {
            default_recognizer: RecognizerChoice::WhisperBase,
            files: ModelFiles::locate(),
            start_default: true,
        }
    }
}

/// Makes offline engines; holds what sessions share (recognisers, translator processes).
pub struct OfflineEngineFactory {
    options: OfflineOptions,
    pocketsphinx: OnceLock<Result<DecoderPool, String>>,
    worker: OnceLock<Result<Arc<PythonWorker>, String>>,
    translators: Mutex<HashMap<&'static str, Arc<Apertium>>>,
}

impl OfflineEngineFactory {
    /// The default set-up (Whisper base); fails with a clear message when a package or a model
    /// is missing (naming the set-up command).
    pub fn new() -> Result<Self, String> {
        Self::with_options(OfflineOptions::default())
    }

    /// Loads the default recogniser and checks eSpeak NG and Apertium eng-spa.
    pub fn with_options(options: OfflineOptions) -> Result<Self, String> {
        let probe = espeak::synthesize("es", "hola")
            .map_err(|e| format!("eSpeak NG does not work: {e}"))?;
        if probe.samples.is_empty() {
            return Err(
                "espeak-ng produced no audio (install the Debian package espeak-ng)".into(),
            );
        }
        let factory = OfflineEngineFactory {
            options,
            pocketsphinx: OnceLock::new(),
            worker: OnceLock::new(),
            translators: Mutex::new(HashMap::new()),
        };
        factory
            .translator("eng-spa")?
            .translate("hello")
            .map_err(|e| format!("apertium eng-spa does not work: {e}"))?;
        if factory.options.start_default {
            factory.prepare("")?;
        }
        Ok(factory)
    }

    /// Starts what sessions with this `model` need (its recogniser: the Whisper worker or the
    /// PocketSphinx decoders), so that a missing or altered model is an error now rather than
    /// in a session. An unknown `model` means the default recogniser.
    pub fn prepare(&self, model: &str) -> Result<(), String> {
        match RecognizerChoice::from_model(model, self.options.default_recognizer) {
            RecognizerChoice::PocketSphinx => self.pocketsphinx_pool().map(|_| ()),
            _ => self.whisper_worker().map(|_| ()),
        }
    }

    /// Decoders ready for new sessions (for tests and logs).
    pub fn idle_decoders(&self) -> usize {
        self.pocketsphinx
            .get()
            .and_then(|p| p.as_ref().ok())
            .map_or(0, DecoderPool::idle_count)
    }

    /// The Whisper worker process id (for memory figures), once started.
    pub fn worker_pid(&self) -> Option<u32> {
        self.worker.get()?.as_ref().ok()?.pid()
    }

    fn pocketsphinx_pool(&self) -> Result<&DecoderPool, String> {
        self.pocketsphinx
            .get_or_init(build_pocketsphinx)
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The shared Whisper and Piper worker, started on first use.
    pub fn whisper_worker(&self) -> Result<Arc<PythonWorker>, String> {
        self.worker
            .get_or_init(|| {
                let default = self
                    .options
                    .default_recognizer
                    .whisper_model()
                    .unwrap_or("whisper-base");
                PythonWorker::start(
                    self.options.files.clone(),
                    vec![default, "piper"],
                    worker_threads(),
                )
                .map(Arc::new)
            })
            .clone()
    }

    fn translator(&self, pair: &'static str) -> Result<Arc<Apertium>, String> {
        let mut translators = self.translators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = translators.get(pair) {
            return Ok(t.clone());
        }
        let t = Arc::new(Apertium::new(pair)?);
        translators.insert(pair, t.clone());
        Ok(t)
    }
}

fn build_pocketsphinx() -> Result<DecoderPool, String> {
    let model = Path::new(MODEL_DIR);
    for file in ["en-us/mdef", "en-us.lm.bin", "cmudict-en-us.dict"] {
        if !model.join(file).exists() {
            return Err(format!(
                "missing {} (install the Debian package pocketsphinx-en-us)",
                model.join(file).display()
            ));
        }
    }
    let path = |p: &str| model.join(p).to_string_lossy().into_owned();
    let args = vec![
        ("-hmm".to_string(), path("en-us")),
        ("-lm".to_string(), path("en-us.lm.bin")),
        ("-dict".to_string(), path("cmudict-en-us.dict")),
        ("-vad_postspeech".to_string(), VAD_POSTSPEECH.to_string()),
    ];
    DecoderPool::new(args, warmup::warmup_audio()?, 1)
}

impl EngineFactory for OfflineEngineFactory {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn supported_languages(&self) -> Vec<&'static str> {
        TARGET_LANGUAGES.to_vec()
    }

    fn create(&self, target_language: &str, transcribe: bool) -> Result<Box<dyn Engine>, String> {
        self.create_for(target_language, transcribe, &SessionOptions::default())
    }

    fn create_for(
        &self,
        target_language: &str,
        transcribe: bool,
        options: &SessionOptions,
    ) -> Result<Box<dyn Engine>, String> {
        let choice = self.checked_choice(target_language, options)?;
        if choice.whisper_model().is_some() {
            return Ok(Box::new(self.whisper_session(
                target_language,
                transcribe,
                options,
            )?));
        }
        let target = apertium_target(target_language);
        let translator = target.map(|t| self.translator(t.pair)).transpose()?;
        let recognizer = Recognizer::new(self.pocketsphinx_pool()?.take()?);
        Ok(Box::new(OfflineEngine {
            recognizer,
            translator,
            voice: target.map_or("es", |t| t.voice),
            transcribe,
        }))
    }
}

impl OfflineEngineFactory {
    /// The recogniser a session asks for, once its target and source languages are known valid.
    fn checked_choice(
        &self,
        target_language: &str,
        options: &SessionOptions,
    ) -> Result<RecognizerChoice, String> {
        if !TARGET_LANGUAGES.contains(&target_language) {
            return Err(unsupported_target(target_language));
        }
        let choice = RecognizerChoice::from_model(&options.model, self.options.default_recognizer);
        if let Some(source) = options.source_language.as_deref() {
            if !languages::valid_source_language(source) {
                return Err(format!(
                    "invalid source language {source:?}: give a code such as en, fr or de"
                ));
            }
            if choice.english_only() && source != "en" {
                return Err(format!(
                    "the recogniser {} hears English only (source language {source:?}); use whisper-base",
                    options.model
                ));
            }
        }
        Ok(choice)
    }

    /// A Whisper session (what [`EngineFactory::create_for`] makes for a Whisper recogniser),
    /// as its own type: the benchmark reads its per-utterance times.
    pub fn whisper_session(
        &self,
        target_language: &str,
        transcribe: bool,
        options: &SessionOptions,
    ) -> Result<WhisperSession, String> {
        let choice = self.checked_choice(target_language, options)?;
        let Some(model) = choice.whisper_model() else {
            return Err(format!("{} is not a Whisper recogniser", options.model));
        };
        let output = match apertium_target(target_language) {
            None => Output::English,
            Some(t) => Output::Apertium {
                language: TARGET_LANGUAGES
                    .into_iter()
                    .find(|l| *l == target_language)
                    .unwrap_or("es"),
                translator: self.translator(t.pair)?,
                voice: t.voice,
            },
        };
        Ok(WhisperSession::new(
            self.whisper_worker()?,
            model,
            choice.english_only(),
            options.source_language.clone(),
            output,
            transcribe,
        ))
    }
}

/// One PocketSphinx session: recogniser of its own, shared translator.
struct OfflineEngine {
    recognizer: Recognizer,
    /// `None` when the target is English (no translation, no speech).
    translator: Option<Arc<Apertium>>,
    /// eSpeak NG voice of the target language.
    voice: &'static str,
    /// Only informative: the server filters input transcripts by the session's setting.
    #[allow(dead_code)]
    transcribe: bool,
}

impl OfflineEngine {
    fn utterance(&self, english: String, out: &mut Vec<EngineOutput>) {
        let english = capitalise_pronoun(&english);
        out.push(EngineOutput::InputTranscript(format!(
            "{} ",
            as_sentence(&english)
        )));
        let Some(translator) = &self.translator else {
            return;
        };
        let spanish = match translator.translate(&english) {
            Ok(s) => tidy_translation(&s),
            Err(e) => {
                eprintln!("offline engine: translation failed: {e}");
                return;
            }
        };
        if spanish.is_empty() {
            return;
        }
        out.push(EngineOutput::OutputTranscript(format!("{spanish} ")));
        match espeak::synthesize(self.voice, &spanish) {
            Ok(pcm) if !pcm.samples.is_empty() => {
                out.push(EngineOutput::OutputAudio(resample::resample(
                    &pcm.samples,
                    pcm.rate,
                    INPUT_RATE,
                )));
            }
            Ok(_) => {}
            Err(e) => eprintln!("offline engine: speech synthesis failed: {e}"),
        }
    }
}

/// PocketSphinx writes everything in lower case; Apertium only knows the pronoun as "I" (lower-case
/// "i would like" comes out as "i Gustaría" instead of "Me gustaría").
pub fn capitalise_pronoun(text: &str) -> String {
    text.split_whitespace()
        .map(|w| match w {
            "i" | "i'm" | "i'd" | "i'll" | "i've" => format!("I{}", &w[1..]),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Engine for OfflineEngine {
    fn push_audio(&mut self, pcm: &[i16]) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        for hyp in self.recognizer.push(pcm) {
            self.utterance(hyp, &mut out);
        }
        out
    }

    fn finish(&mut self) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        for hyp in self.recognizer.finish() {
            self.utterance(hyp, &mut out);
        }
        out
    }
}
