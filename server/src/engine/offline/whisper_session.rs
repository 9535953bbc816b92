//! One session of the Whisper pipeline: voice activity cuts utterances, the shared worker
//! decodes each once at its end (Whisper's text, and English through its translate task), then
//! English goes out as Piper's speech, or through Apertium and eSpeak NG into another language.

use super::apertium::Apertium;
use super::espeak::{self, Pcm};
use super::interim::InterimText;
use super::python_worker::{PythonWorker, Task, Transcription};
use super::recognizer::{DECODER_RATE, INPUT_RATE};
use super::resample::{Resampler, resample};
use super::segmenter::{Cut, Segmenter};
use super::sentences::{as_sentence, tidy_translation};
use crate::engine::{Engine, EngineOutput};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// Where one utterance's answer time went (for the benchmark's breakdown).
#[derive(Debug, Clone, Default)]
pub struct UtteranceTimes {
    /// The worker request, round trip.
    pub recognition: Duration,
    /// The worker's own stages (see [`Transcription::timings_ms`]).
    pub worker_ms: HashMap<String, f64>,
    /// The encoder window, in seconds.
    pub window_s: Option<f64>,
    /// Apertium (or nothing, into English).
    pub translation: Duration,
    /// eSpeak NG or Piper.
    pub speech: Duration,
    /// Decoded during the pause, ahead of the utterance's end.
    pub ahead: bool,
}

/// One utterance understood: what to send once it is known to be whole.
struct Answer {
    /// `None` when no speech was found.
    language: Option<String>,
    /// Text in the spoken language (for the source transcript).
    spoken: String,
    /// Translated text and its speech, when there is something to say.
    translated: Option<(String, Result<Pcm, String>)>,
    /// Long enough for its detected language to be trusted for the next utterance's interim
    /// text ([`LANGUAGE_EVIDENCE`]).
    language_evidence: bool,
    times: UtteranceTimes,
}

/// Audio (at the decoder's rate) whose detected language is trusted for the interim text of the
/// utterances after it: 2 s. eSpeak NG's "Bonjour." was taken for English, and the interim
/// decodes of the French sentence after it then wrote English words ("I will give you").
const LANGUAGE_EVIDENCE: usize = 2 * DECODER_RATE as usize;

pub struct WhisperSession {
    pub worker: Arc<PythonWorker>,
    /// Worker model directory (`whisper-base`, `whisper-tiny.en`).
    pub model: &'static str,
    /// The spoken language when fixed by the session, else detected per utterance.
    pub source_language: Option<String>,
    pub output: Output,
    /// The client wants source transcripts.
    pub transcribe: bool,
    /// Interim decodes are made (source transcripts asked for, and not tiny.en: with little
    /// context, two of its decodes agreed on wrong words, "How do you marry the" for "Had he
    /// married a", so it sends its text per utterance, which also spares the small machines
    /// it is for).
    interim_text: bool,
    resampler: Resampler,
    segmenter: Segmenter,
    interim: InterimText,
    /// Language of the last utterance, for interim decodes of the next one.
    last_language: Option<String>,
    /// The answer of the last [`Cut::Tentative`], until the utterance is confirmed or goes on.
    ahead: Option<Answer>,
    /// Answers decoded ahead that speech going on made void.
    voided: usize,
    times: Vec<UtteranceTimes>,
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
            interim_text: transcribe && model != "whisper-tiny.en",
            resampler: Resampler::new(INPUT_RATE, DECODER_RATE),
            segmenter: Segmenter::new(),
            interim: InterimText::default(),
            last_language: None,
            ahead: None,
            voided: 0,
            times: Vec::new(),
        }
    }

    /// Where the time went, per utterance answered so far.
    pub fn times(&self) -> &[UtteranceTimes] {
        &self.times
    }

    /// How many answers decoded ahead (in a pause) were dropped because speech went on: the
    /// worker time spent on guesses.
    pub fn voided_ahead(&self) -> usize {
        self.voided
    }

    /// Drops an answer decoded ahead: the utterance did not end there.
    fn void_ahead(&mut self) {
        if self.ahead.take().is_some() {
            self.voided += 1;
        }
    }

    fn cut(&mut self, cut: Cut, out: &mut Vec<EngineOutput>) {
        match cut {
            // Interim text only when asked for, and only on an idle worker: another session's
            // utterance must not wait for it.
            Cut::Interim(audio) => {
                self.void_ahead();
                if self.interim_text && !self.worker.is_busy() {
                    self.interim_text(&audio, out);
                }
            }
            Cut::Tentative(audio) => {
                self.void_ahead();
                if !self.worker.is_busy() {
                    let mut answer = self.understand(&audio);
                    answer.times.ahead = true;
                    self.ahead = Some(answer);
                }
            }
            Cut::Confirmed(audio) => {
                let answer = match self.ahead.take() {
                    Some(answer) => answer,
                    None => self.understand(&audio),
                };
                self.deliver(answer, out);
            }
            Cut::Utterance(audio) => {
                self.void_ahead();
                let answer = self.understand(&audio);
                self.deliver(answer, out);
            }
        }
    }

    fn interim_text(&mut self, audio: &[i16], out: &mut Vec<EngineOutput>) {
        // On a second or two of audio, Whisper's language detection is unreliable: interim text
        // needs the language fixed by the session or heard in an earlier utterance of at least
        // [`LANGUAGE_EVIDENCE`] (eSpeak NG's "Bonjour." was taken for English, and the French
        // sentence after it was written as "I will give you s'il vous plaît", which the final
        // decode cannot take back). And English only: the interim decode's short window was
        // measured on English alone (eSpeak NG's French came out half in English in a 20 s one).
        let Some(language) = self.source_language.clone().or(self.last_language.clone()) else {
            return;
        };
        if language != "en" {
            return;
        }
        let language = Some(language);
        let heard = self
            .worker
            .transcribe_interim(self.model, audio, language.as_deref())
            .unwrap_or_else(|e| {
                eprintln!("offline engine: interim recognition failed: {e}");
                Transcription::default()
            });
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

    /// Recognition, translation and speech of one utterance; nothing sent yet.
    fn understand(&self, audio: &[i16]) -> Answer {
        let source = self.source_language.clone();
        let english_source = source.as_deref() == Some("en");
        // English is needed whatever the target; the source text only for transcripts.
        let tasks: &[Task] = match (english_source, self.transcribe) {
            (true, _) => &[Task::Transcribe],
            (false, true) => &[Task::Transcribe, Task::Translate],
            (false, false) => &[Task::Translate],
        };
        let started = Instant::now();
        let heard = self.decode(audio, source.as_deref(), tasks);
        let mut times = UtteranceTimes {
            recognition: started.elapsed(),
            worker_ms: heard.timings_ms.clone(),
            window_s: heard.window_s,
            ..UtteranceTimes::default()
        };
        let language_evidence = audio.len() >= LANGUAGE_EVIDENCE;
        let Some(language) = heard.language.clone() else {
            return Answer {
                language: None,
                spoken: String::new(),
                translated: None,
                language_evidence,
                times,
            };
        };
        let text = |task: &str| heard.texts.get(task).map(|t| t.trim()).unwrap_or("");
        let english = if language == "en" && !text("transcribe").is_empty() {
            text("transcribe")
        } else {
            text("translate")
        };
        let spoken = match text("transcribe") {
            "" if language == "en" => english,
            t => t,
        }
        .to_string();
        let translated = if english.is_empty() {
            None
        } else {
            self.translate(english, &language, &mut times)
        };
        Answer {
            language: Some(language),
            spoken,
            translated,
            language_evidence,
            times,
        }
    }

    /// English into the session's output: text and speech, or `None` when nothing is said.
    fn translate(
        &self,
        english: &str,
        language: &str,
        times: &mut UtteranceTimes,
    ) -> Option<(String, Result<Pcm, String>)> {
        let started = Instant::now();
        let translated = match &self.output {
            // Like the cloud service: speech already in the target language is not repeated.
            Output::English if language == "en" => return None,
            Output::English => as_sentence(english),
            Output::Apertium {
                language: target, ..
            } if *target == language => return None,
            Output::Apertium { translator, .. } => match translator.translate(english) {
                Ok(t) => tidy_translation(&t),
                Err(e) => {
                    eprintln!("offline engine: translation failed: {e}");
                    return None;
                }
            },
        };
        times.translation = started.elapsed();
        if translated.is_empty() {
            return None;
        }
        let started = Instant::now();
        let speech = match &self.output {
            Output::English => self.worker.speak(&translated),
            Output::Apertium { voice, .. } => espeak::synthesize(voice, &translated),
        };
        times.speech = started.elapsed();
        Some((translated, speech))
    }

    /// Sends an utterance's answer: the rest of its source text, its translation and speech.
    fn deliver(&mut self, answer: Answer, out: &mut Vec<EngineOutput>) {
        self.times.push(answer.times);
        if answer.language.is_some() && answer.language_evidence {
            self.last_language = answer.language;
        }
        if answer.spoken.is_empty() {
            self.interim.finish("");
        } else {
            let rest = self.interim.finish(&as_sentence(&answer.spoken));
            if !rest.is_empty() {
                out.push(EngineOutput::InputTranscript(format!("{rest} ")));
            }
        }
        let Some((translated, speech)) = answer.translated else {
            return;
        };
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
            self.cut(Cut::Utterance(audio), &mut out);
        }
        out
    }
}
