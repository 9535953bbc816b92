//! Translation engines behind the local server.
//!
//! An engine is plain synchronous code: the server feeds it 24 kHz mono PCM16 as it arrives and
//! relays what it returns as protocol events. It runs on a thread of its own per session, so it may
//! block on CPU work (decoding) or on its child processes.

pub mod echo;
pub mod offline;
pub mod utterance;

/// What an engine produces; the server turns each into one or more protocol events.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineOutput {
    /// Recognised source-language text, append-only fragment.
    InputTranscript(String),
    /// Translated text, append-only fragment.
    OutputTranscript(String),
    /// Translated speech, 24 kHz mono PCM16; any length (the server frames it in 200 ms deltas).
    OutputAudio(Vec<i16>),
}

/// One session's translator.
pub trait Engine: Send {
    /// Feeds more input audio (24 kHz mono PCM16, contiguous with what came before).
    fn push_audio(&mut self, pcm: &[i16]) -> Vec<EngineOutput>;
    /// The input has ended (`session.close`): flushes whatever is pending.
    fn finish(&mut self) -> Vec<EngineOutput>;
}

/// What a session asked for besides its target, from the connection URL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionOptions {
    /// The `model` query parameter (the offline engine reads its recogniser from it).
    pub model: String,
    /// The `source_language` query parameter: the spoken language, when the client fixes it.
    pub source_language: Option<String>,
}

/// Makes engines for sessions; shared by every connection of a server.
pub trait EngineFactory: Send + Sync {
    /// Short name (`echo`, `utterance`, `offline`), used in logs and on the command line.
    fn name(&self) -> &'static str;
    /// Target languages this engine accepts (ISO 639-1).
    fn supported_languages(&self) -> Vec<&'static str>;
    /// A new engine translating into `target_language`; `transcribe` asks for input transcripts.
    /// The error text goes to the client in a protocol `error` event.
    fn create(&self, target_language: &str, transcribe: bool) -> Result<Box<dyn Engine>, String>;
    /// Like [`EngineFactory::create`], with the session's URL options; engines that take none
    /// ignore them.
    fn create_for(
        &self,
        target_language: &str,
        transcribe: bool,
        options: &SessionOptions,
    ) -> Result<Box<dyn Engine>, String> {
        let _ = options;
        self.create(target_language, transcribe)
    }
    /// Its engines answer within microseconds and never block (no model, no child process), so
    /// they run on the session's own task rather than a thread of their own (see `worker.rs`).
    fn answers_at_once(&self) -> bool {
        false
    }
}
