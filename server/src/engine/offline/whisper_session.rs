//! One session of the Whisper pipeline: voice activity cuts utterances, the shared worker
//! decodes each once at its end (Whisper's text, and English through its translate task), then
//! English goes out as Piper's speech, or through Apertium and eSpeak NG into another language.

use super::apertium::Apertium;
use super::espeak;
use super::interim::InterimText;
use super::python_worker::{PythonWorker, Task, Transcription};
use super::recognizer::{DECODER_RATE, INPUT_RATE};
use super::resample::{Resampler, resample};
use super::segmenter::{Cut, Segmenter};
use super::sentences::{as_sentence, tidy_translation};
use crate::engine::{Engine, EngineOutput};
use std::sync::Arc;

/// Where English text goes.
pub enum Output {
    /// English speech (Piper). Speech already in English is not repeated (transcript only).
    English,
    /// Through an Apertium pair, spoken by an eSpeak NG voice.
    Apertium {
        /// The target language (speech already in it is not translated).
        language: &'static str,
        translator: Arc<Apertium>,
        voice: &'static str,
    },
}

pub struct WhisperSession {
    pub worker: Arc<PythonWorker>,
    /// Worker model directory (`whisper-base`, `whisper-tiny.en`).
    pub model: &'static str,
    /// The spoken language when fixed by the session, else detected per utterance.
    pub source_language: Option<String>,
    pub output: Output,
    /// The client wants source transcripts (interim decodes are made only then).
    pub transcribe: bool,
    resampler: Resampler,
    segmenter: Segmenter,
    interim: InterimText,
    /// Language of the last utterance, for interim decodes of the next one.
    last_language: Option<String>,
}

impl WhisperSession {
    pub fn new(
        worker: Arc<PythonWorker>,
        model: &'static str,
        english_only: bool,
        source_language: Option<String>,
        output: Output,
        transcribe: bool,
    ) -> Self {
        WhisperSession {
            worker,
            model,
            source_language: if english_only {
                Some("en".into())
            } else {
                source_language
            },
            output,
            transcribe,
            resampler: Resampler::new(INPUT_RATE, DECODER_RATE),
            segmenter: Segmenter::new(),
            interim: InterimText::default(),
            last_language: None,
        }
    }

    fn cut(&mut self, cut: Cut, out: &mut Vec<EngineOutput>) {
        match cut {
            Cut::Interim(audio) if self.transcribe => self.interim_text(&audio, out),
            Cut::Interim(_) => {}
            Cut::Utterance(audio) => self.utterance(&audio, out),
        }
    }

    fn interim_text(&mut self, audio: &[i16], out: &mut Vec<EngineOutput>) {
        let language = self.source_language.clone().or(self.last_language.clone());
        let heard = self.decode(audio, language.as_deref(), &[Task::Transcribe]);
        if let Some(text) = heard.texts.get("transcribe")
            && let Some(fragment) = self.interim.interim(text)
        {
            out.push(EngineOutput::InputTranscript(fragment));
        }
    }

    fn decode(&self, audio: &[i16], language: Option<&str>, tasks: &[Task]) -> Transcription {
        self.worker
            .transcribe(self.model, audio, language, tasks)
            .unwrap_or_else(|e| {
                eprintln!("offline engine: recognition failed: {e}");
                Transcription::default()
            })
    }

    fn utterance(&mut self, audio: &[i16], out: &mut Vec<EngineOutput>) {
        let source = self.source_language.clone();
        let english_source = source.as_deref() == Some("en");
        // English is needed whatever the target; the source text only for transcripts.
        let tasks: &[Task] = match (english_source, self.transcribe) {
            (true, _) => &[Task::Transcribe],
            (false, true) => &[Task::Transcribe, Task::Translate],
            (false, false) => &[Task::Translate],
        };
        let heard = self.decode(audio, source.as_deref(), tasks);
        let Some(language) = heard.language.clone() else {
            self.interim.finish("");
            return;
        };
        self.last_language = Some(language.clone());
        let text = |task: &str| heard.texts.get(task).map(|t| t.trim()).unwrap_or("");
        let english = if language == "en" && !text("transcribe").is_empty() {
            text("transcribe")
        } else {
            text("translate")
        };
        let spoken = match text("transcribe") {
            "" if language == "en" => english,
            t => t,
        };
        if !spoken.is_empty() {
            let rest = self.interim.finish(&as_sentence(spoken));
            if !rest.is_empty() {
                out.push(EngineOutput::InputTranscript(format!("{rest} ")));
            }
        } else {
            self.interim.finish("");
        }
        if english.is_empty() {
            return;
        }
        let (translated, speech) = match &self.output {
            // Like the cloud service: speech already in the target language is not repeated.
            Output::English if language == "en" => return,
            Output::English => {
                let sentence = as_sentence(english);
                let speech = self.worker.speak(&sentence);
                (sentence, speech)
            }
            Output::Apertium {
                language: target, ..
            } if *target == language => return,
            Output::Apertium {
                translator, voice, ..
            } => {
                let translated = match translator.translate(english) {
                    Ok(t) => tidy_translation(&t),
                    Err(e) => {
                        eprintln!("offline engine: translation failed: {e}");
                        return;
                    }
                };
                let speech = espeak::synthesize(voice, &translated);
                (translated, speech)
            }
        };
        if translated.is_empty() {
            return;
        }
        out.push(EngineOutput::OutputTranscript(format!("{translated} ")));
        match speech {
            Ok(pcm) if !pcm.samples.is_empty() => {
                out.push(EngineOutput::OutputAudio(resample(
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

impl Engine for WhisperSession {
    fn push_audio(&mut self, pcm: &[i16]) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        let down = self.resampler.process(pcm);
        for cut in self.segmenter.push(&down) {
            self.cut(cut, &mut out);
        }
        out
    }

    fn finish(&mut self) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        let tail = self.resampler.flush();
        for cut in self.segmenter.push(&tail) {
            self.cut(cut, &mut out);
        }
        if let Some(audio) = self.segmenter.finish() {
            self.utterance(&audio, &mut out);
        }
        out
    }
}
