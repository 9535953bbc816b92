//! Streaming English recognition: 24 kHz input → 16 kHz → PocketSphinx in 100 ms pieces, one final
//! hypothesis per utterance, utterances delimited by the decoder's voice-activity detector.

use super::pool::PooledDecoder;
use super::resample::Resampler;

/// Decoder input rate.
pub const DECODER_RATE: u32 = 16_000;
/// Input rate of the engine interface.
pub const INPUT_RATE: u32 = 24_000;
/// 100 ms at 16 kHz: the decoder's VAD state is checked after each piece.
const PIECE: usize = 1_600;
/// Longest utterance: force an end so that buffers and latency stay bounded.
const MAX_UTTERANCE: usize = 20 * DECODER_RATE as usize;
/// Restart a speechless utterance now and then so that nothing accumulates in it.
const MAX_IDLE_UTTERANCE: usize = 30 * DECODER_RATE as usize;
/// Silence appended at `finish` so that the last words are not clipped (the decoder mangles an
/// utterance's end without ~0.3 s of silence after it).
const FLUSH_SILENCE: usize = DECODER_RATE as usize / 2;

/// One session's recogniser.
pub struct Recognizer {
    decoder: PooledDecoder,
    resampler: Resampler,
    /// 16 kHz samples waiting to make up a full piece.
    pending: Vec<i16>,
    /// The VAD has heard speech in the current utterance.
    in_speech: bool,
    /// 16 kHz samples fed into the current utterance, and since its speech began.
    utt_samples: usize,
    speech_samples: usize,
}

impl Recognizer {
    pub fn new(decoder: PooledDecoder) -> Self {
        Recognizer {
            decoder,
            resampler: Resampler::new(INPUT_RATE, DECODER_RATE),
            pending: Vec::with_capacity(2 * PIECE),
            in_speech: false,
            utt_samples: 0,
            speech_samples: 0,
        }
    }

    /// Feeds 24 kHz audio; returns the final hypotheses of utterances that ended (usually 0 or 1).
    pub fn push(&mut self, pcm: &[i16]) -> Vec<String> {
        let mut finals = Vec::new();
        let down = self.resampler.process(pcm);
        self.feed16(&down, &mut finals);
        finals
    }

    /// Ends the input: decodes what is pending and returns the last hypotheses.
    pub fn finish(&mut self) -> Vec<String> {
        let mut finals = Vec::new();
        let mut tail = self.resampler.flush();
        if self.in_speech {
            tail.extend(std::iter::repeat_n(0, FLUSH_SILENCE));
        }
        self.feed16(&tail, &mut finals);
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.process(&rest, &mut finals);
        }
        self.end_utterance(&mut finals);
        finals
    }

    fn feed16(&mut self, pcm: &[i16], finals: &mut Vec<String>) {
        self.pending.extend_from_slice(pcm);
        let mut start = 0;
        while self.pending.len() - start >= PIECE {
            let piece: Vec<i16> = self.pending[start..start + PIECE].to_vec();
            self.process(&piece, finals);
            start += PIECE;
        }
        self.pending.drain(..start);
    }

    fn process(&mut self, piece: &[i16], finals: &mut Vec<String>) {
        if let Err(e) = self.decoder.process(piece) {
            eprintln!("offline engine: {e}; restarting the utterance");
            self.decoder.end();
            self.reset();
            return;
        }
        self.utt_samples += piece.len();
        let speech = self.decoder.in_speech();
        if speech {
            self.in_speech = true;
        }
        if self.in_speech {
            self.speech_samples += piece.len();
        }
        let ended = self.in_speech && !speech;
        if ended || self.speech_samples >= MAX_UTTERANCE {
            self.end_utterance(finals);
        } else if !self.in_speech && self.utt_samples >= MAX_IDLE_UTTERANCE {
            self.decoder.end();
            self.reset();
        }
    }

    fn end_utterance(&mut self, finals: &mut Vec<String>) {
        let hyp = self.decoder.end();
        self.reset();
        let hyp = hyp.split_whitespace().collect::<Vec<_>>().join(" ");
        if !hyp.is_empty() {
            finals.push(hyp);
        }
    }

    fn reset(&mut self) {
        self.in_speech = false;
        self.utt_samples = 0;
        self.speech_samples = 0;
    }
}
