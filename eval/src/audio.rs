//! PCM16 mono in memory: WAV reading and writing, clips, and where speech starts.

use std::path::Path;

/// Mono 16-bit samples at `rate`, the first one at `origin_s` on the programme's timeline.
#[derive(Debug, Clone, Default)]
pub struct Pcm {
    pub rate: u32,
    pub origin_s: f64,
    pub samples: Vec<i16>,
}

impl Pcm {
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.rate.max(1) as f64
    }

    fn index(&self, at_s: f64) -> usize {
        (((at_s - self.origin_s) * self.rate as f64).round().max(0.0) as usize)
            .min(self.samples.len())
    }

    /// The samples between two programme times (clamped to what exists).
    pub fn clip(&self, from_s: f64, to_s: f64) -> Pcm {
        let (a, b) = (self.index(from_s), self.index(to_s));
        Pcm {
            rate: self.rate,
            origin_s: self.origin_s + a as f64 / self.rate as f64,
            samples: self.samples[a..b.max(a)].to_vec(),
        }
    }

    /// Programme times at which speech starts: 20 ms frames louder than −40 dBFS after at least
    /// `pause_s` of quieter frames (or at the start).
    pub fn speech_onsets(&self, pause_s: f64) -> Vec<f64> {
        let frame = (self.rate as usize / 50).max(1);
        let threshold = 32768.0 * 0.01; // −40 dBFS RMS
        let quiet_needed = (pause_s * 50.0).ceil() as usize;
        let mut quiet = quiet_needed;
        let mut onsets = Vec::new();
        for (i, chunk) in self.samples.chunks(frame).enumerate() {
            let energy: f64 = chunk.iter().map(|&s| (s as f64).powi(2)).sum::<f64>();
            let rms = (energy / chunk.len() as f64).sqrt();
            if rms >= threshold {
                if quiet >= quiet_needed {
                    onsets.push(self.origin_s + (i * frame) as f64 / self.rate as f64);
                }
                quiet = 0;
            } else {
                quiet += 1;
            }
        }
        onsets
    }

    /// First and last audible 20 ms frame (start of the first, end of the last), in programme time.
    pub fn audible_extent(&self) -> Option<(f64, f64)> {
        let frame = (self.rate as usize / 50).max(1);
        let loud: Vec<usize> = self
            .samples
            .chunks(frame)
            .enumerate()
            .filter(|(_, c)| {
                let e: f64 = c.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / c.len() as f64;
                e.sqrt() >= 32768.0 * 0.01
            })
            .map(|(i, _)| i)
            .collect();
        let (first, last) = (*loud.first()?, *loud.last()?);
        let at = |i: usize| self.origin_s + (i * frame) as f64 / self.rate as f64;
        Some((
            at(first),
            at(last + 1).min(self.origin_s + self.duration_s()),
        ))
    }

    /// A canonical 44-byte-header WAV file.
    pub fn to_wav(&self) -> Vec<u8> {
        let data_len = (self.samples.len() * 2) as u32;
        let mut out = Vec::with_capacity(44 + data_len as usize);
        out.extend_from_slice(b"RIFF");
        out.extend_from_slice(&(36 + data_len).to_le_bytes());
        out.extend_from_slice(b"WAVEfmt ");
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // PCM
        out.extend_from_slice(&1u16.to_le_bytes()); // mono
        out.extend_from_slice(&self.rate.to_le_bytes());
        out.extend_from_slice(&(self.rate * 2).to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_len.to_le_bytes());
        for s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    /// Reads a PCM16 mono WAV file (what flite writes).
    pub fn read_wav(path: &Path) -> Result<Pcm, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
            return Err(format!("{}: not a WAV file", path.display()));
        }
        let (mut pos, mut rate, mut format_ok) = (12, 0, false);
        while pos + 8 <= bytes.len() {
            let id = &bytes[pos..pos + 4];
            let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
            let body = &bytes[pos + 8..(pos + 8 + len).min(bytes.len())];
            if id == b"fmt " && body.len() >= 16 {
                let format = u16::from_le_bytes([body[0], body[1]]);
                let channels = u16::from_le_bytes([body[2], body[3]]);
                let bits = u16::from_le_bytes([body[14], body[15]]);
                rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
                format_ok = format == 1 && channels == 1 && bits == 16;
            } else if id == b"data" {
                if !format_ok {
                    return Err(format!("{}: not 16-bit mono PCM", path.display()));
                }
                let samples = body
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                return Ok(Pcm {
                    rate,
                    origin_s: 0.0,
                    samples,
                });
            }
            pos += 8 + len + (len & 1);
        }
        Err(format!("{}: no audio data", path.display()))
    }
}

/// Linear-interpolated percentile (as numpy's default) of unsorted values; `p` in 0–100.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone_at(rate: u32, starts: &[(f64, f64)], total_s: f64) -> Pcm {
        let n = (total_s * rate as f64) as usize;
        let samples = (0..n)
            .map(|i| {
                let t = i as f64 / rate as f64;
                if starts.iter().any(|&(a, b)| t >= a && t < b) {
                    (8000.0 * (t * 440.0 * std::f64::consts::TAU).sin()) as i16
                } else {
                    0
                }
            })
            .collect();
        Pcm {
            rate,
            origin_s: 0.0,
            samples,
        }
    }

    #[test]
    fn onsets_are_found_after_pauses_only() {
        let pcm = tone_at(24000, &[(0.5, 1.5), (1.6, 2.0), (3.0, 3.5)], 4.0);
        let onsets = pcm.speech_onsets(0.3);
        assert_eq!(onsets.len(), 2, "{onsets:?}");
        assert!((onsets[0] - 0.5).abs() < 0.021 && (onsets[1] - 3.0).abs() < 0.021);
        let (a, b) = pcm.audible_extent().unwrap();
        assert!(
            (a - 0.5).abs() < 0.021 && (b - 3.5).abs() < 0.021,
            "{a} {b}"
        );
    }

    #[test]
    fn wav_round_trip_and_clip() {
        let pcm = tone_at(16000, &[(0.0, 1.0)], 1.0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wav");
        std::fs::write(&path, pcm.to_wav()).unwrap();
        let back = Pcm::read_wav(&path).unwrap();
        assert_eq!(back.samples, pcm.samples);
        let clip = back.clip(0.25, 0.5);
        assert_eq!(clip.samples.len(), 4000);
        assert_eq!(clip.samples[..], pcm.samples[4000..8000]);
    }

    #[test]
    fn percentiles_interpolate_as_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 50.0), Some(2.5));
        assert!((percentile(&v, 90.0).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(percentile(&v, 100.0), Some(4.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
