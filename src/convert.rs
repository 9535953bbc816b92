//! Any raw audio → 24 kHz mono S16LE, the only input the engines take.
//!
//! Wraps GStreamer's own `GstAudioConverter` (format, channel mix and resampler in one pass) through
//! its C API, since the Rust bindings only expose its configuration. The converter keeps its filter
//! history between calls, so consecutive buffers join without clicks. It works and puts out 32-bit
//! float samples, rounded to 16 bits here (see [`EngineFormatConverter`]).

use gst::glib;
use gst::glib::translate::{IntoGlibPtr, ToGlibPtr};
use gst_audio::ffi;
use std::ptr;

/// Rate the engines expect.
pub const ENGINE_RATE: u32 = 24_000;

/// Input frames staged at a time in the scratch buffer (more if the resampler needs more before
/// its first output frame).
const STAGE_FRAMES: usize = 4096;

/// Stateful converter from one input format to the engine format.
///
/// `GstAudioConverter` must never be asked for zero output frames: when its resampler cannot
/// complete an output frame yet (the first few dozen input frames after creation or a reset, or a
/// small buffer between two output frames), its generic path hands a NULL block to the steps after
/// the resampler, and the float→integer step (`do_convert_out`, taken by F32 and F64 input)
/// dereferences it (GStreamer 1.22, still so upstream). So input that would not complete an output
/// frame is held back in a scratch buffer and given with the next input. The same buffer takes
/// input that is not aligned for its sample type, and the silence that drains the filter; it grows
/// to its working size once and is reused.
///
/// The converter puts out F32, not the engine's S16: asked for S16 from S16 input, it would
/// resample in S16, whose SSE2 kernel reads 16 taps at a time over filters rounded to 8 taps, so up
/// to 16 bytes past the end of its sample buffer (multiplied by zero taps, but an out-of-bounds
/// read: valgrind reports it, and it could fault where the buffer ends a mapping). F32 rather than
/// S32: with the same filter, converting 48 kHz stereo F32 to F32 costs a third of converting it
/// to S32 (measured: ≈ 0.07 against 0.2 % of a core per stream, the element's largest per-stream
/// cost at hundreds of streams), and a 24-bit mantissa is far below the 16-bit output's floor.
/// The rounding to 16 bits is done in [`to_s16`], as the converter's own quantizer does it
/// without dither.
pub struct EngineFormatConverter {
    raw: ptr::NonNull<ffi::GstAudioConverter>,
    in_info: gst_audio::AudioInfo,
    /// Bytes per input frame.
    bpf: usize,
    /// Alignment the converter's typed reads of an input sample need.
    align: usize,
    /// Input frames staged at a time when input goes through `scratch`.
    stage_frames: usize,
    /// Staged input; `u64` so that it is aligned for every sample type.
    scratch: Vec<u64>,
    /// Whole input frames at the start of `scratch` not given to the converter yet.
    pending: usize,
    /// Input frames taken and output frames produced since the last reset or drain.
    frames_in: u64,
    frames_out: u64,
    /// The converter's F32 output, before rounding; reused.
    out_float: Vec<f32>,
}

// SAFETY: a GstAudioConverter has no thread affinity; we only use it through `&mut self`.
unsafe impl Send for EngineFormatConverter {}

impl EngineFormatConverter {
    /// The engine format: 24 kHz mono S16LE, interleaved.
    pub fn engine_info() -> gst_audio::AudioInfo {
        gst_audio::AudioInfo::builder(gst_audio::AudioFormat::S16le, ENGINE_RATE, 1)
            .build()
            .expect("valid engine format")
    }

    /// A converter from `in_info` (interleaved) to the engine format.
    pub fn new(in_info: &gst_audio::AudioInfo) -> Result<Self, glib::BoolError> {
        if in_info.layout() != gst_audio::AudioLayout::Interleaved {
            return Err(glib::bool_error!("only interleaved audio is supported"));
        }
        let out_info = gst_audio::AudioInfo::builder(gst_audio::AUDIO_FORMAT_F32, ENGINE_RATE, 1)
            .build()
            .expect("valid output format");
        let mut config = gst_audio::AudioConverterConfig::new();
        // Kaiser at GStreamer's default quality, as `audioresample` does it: 85 dB of stop-band
        // attenuation, passband to 11 kHz for 48 kHz input (speech lies below 8 kHz). A 120 dB
        // filter doubled the taps (264 against 128 from 48 kHz), the element's largest
        // per-stream cost at hundreds of streams, for aliasing already below the 16-bit output's
        // own noise at speech levels (a 440 Hz sine keeps ≥ 80 dB SNR: `tests/convert_matrix.rs`).
        config.set_resampler_method(gst_audio::AudioResamplerMethod::Kaiser);
        config.set_dither_method(gst_audio::AudioDitherMethod::None);
        // Without channel positions the converter cannot pick a downmix: average the channels.
        let channels = in_info.channels() as usize;
        if channels > 1 && in_info.is_unpositioned() {
            config.set_mix_matrix(&[vec![1.0 / channels as f32; channels]]);
        }
        let config: gst::Structure = config.into();
        // SAFETY: the infos are valid for the call and copied by the converter; the config's
        // ownership passes to it (transfer full).
        let raw = unsafe {
            ffi::gst_audio_converter_new(
                ffi::GST_AUDIO_CONVERTER_FLAG_NONE,
                in_info.to_glib_none().0 as *mut _,
                out_info.to_glib_none().0 as *mut _,
                config.into_glib_ptr(),
            )
        };
        let raw = ptr::NonNull::new(raw)
            .ok_or_else(|| glib::bool_error!("cannot convert {:?} to 24 kHz mono", in_info))?;
        // SAFETY: `raw` is a live converter.
        let latency = unsafe { ffi::gst_audio_converter_get_max_latency(raw.as_ptr()) };
        // Packed 24-bit samples are read byte by byte; the others as their own type.
        let width = in_info.format_info().width() as usize / 8;
        Ok(Self {
            raw,
            in_info: in_info.clone(),
            bpf: in_info.bpf() as usize,
            align: if width.is_power_of_two() { width } else { 1 },
            // From a reset, the first output frame needs about `latency` input frames.
            stage_frames: STAGE_FRAMES.max(4 * latency + 64),
            scratch: Vec::new(),
            pending: 0,
            frames_in: 0,
            frames_out: 0,
            out_float: Vec::new(),
        })
    }

    /// The input format this converter was made for.
    pub fn in_info(&self) -> &gst_audio::AudioInfo {
        &self.in_info
    }

    /// Converts whole input frames; a trailing partial frame is ignored. Input that does not
    /// complete an output frame yet comes out with a later call (or [`Self::drain`]).
    pub fn convert(&mut self, input: &[u8]) -> Vec<i16> {
        let frames = input.len() / self.bpf;
        let mut out = Vec::new();
        if frames == 0 {
            return out;
        }
        let mut input = &input[..frames * self.bpf];
        self.frames_in += frames as u64;
        if self.pending == 0 && (input.as_ptr() as usize).is_multiple_of(self.align) {
            let out_frames = self.out_frames(frames);
            if out_frames > 0 {
                // SAFETY: `input` holds `frames` whole frames, aligned for the sample type.
                unsafe { self.run(input.as_ptr(), frames, out_frames, &mut out) };
                return out;
            }
        }
        // Through the scratch buffer, a bounded number of frames at a time.
        while !input.is_empty() {
            let room = self.stage_frames.saturating_sub(self.pending).max(1);
            let (head, rest) = input.split_at(room.min(input.len() / self.bpf) * self.bpf);
            input = rest;
            let start = self.pending * self.bpf;
            self.scratch_bytes(self.pending + head.len() / self.bpf)[start..].copy_from_slice(head);
            self.pending += head.len() / self.bpf;
            self.flush_pending(&mut out, usize::MAX);
        }
        out
    }

    /// Pushes the converter's remaining history out (as if silence followed), for EOS, a gap or
    /// a format change, and resets it. From the last reset, the output then holds exactly the
    /// input's duration at 24 kHz, rounded up to a whole sample.
    pub fn drain(&mut self) -> Vec<i16> {
        let mut out = Vec::new();
        let rate = u128::from(self.in_info.rate());
        let owed = (u128::from(self.frames_in) * u128::from(ENGINE_RATE)).div_ceil(rate);
        let owed = (owed as u64).saturating_sub(self.frames_out) as usize;
        // SAFETY: `raw` is a live converter.
        let latency = unsafe { ffi::gst_audio_converter_get_max_latency(self.raw.as_ptr()) };
        // Its latency's worth of silence flushes the filter up to the last input frame's instant;
        // the rest of that frame's span is at most a few output frames more (a bound whatever
        // happened before).
        let owed = owed.min(
            self.out_frames(self.pending + latency)
                + ENGINE_RATE.div_ceil(self.in_info.rate()) as usize
                + 1,
        );
        if owed > 0 {
            // Enough silence after the input for the filter to finish its last output frame.
            let step = (self.in_info.rate().div_ceil(ENGINE_RATE) + 1) as usize;
            let mut silence = latency;
            while self.out_frames(self.pending + silence) < owed {
                silence += step;
            }
            let start = self.pending * self.bpf;
            let frames = self.pending + silence;
            let format = self.in_info.format_info();
            format.fill_silence(&mut self.scratch_bytes(frames)[start..]);
            self.pending = frames;
            self.flush_pending(&mut out, owed);
        }
        self.reset();
        out
    }

    /// Forgets the filter history (after a flush or a discontinuity), and input held back.
    pub fn reset(&mut self) {
        // SAFETY: `raw` is a live converter.
        unsafe { ffi::gst_audio_converter_reset(self.raw.as_ptr()) };
        self.pending = 0;
        self.frames_in = 0;
        self.frames_out = 0;
    }

    /// Output frames the converter makes from `in_frames` more input frames.
    fn out_frames(&self, in_frames: usize) -> usize {
        // SAFETY: `raw` is a live converter.
        unsafe { ffi::gst_audio_converter_get_out_frames(self.raw.as_ptr(), in_frames) }
    }

    /// The first `frames` frames of the scratch buffer, which grows to hold them.
    fn scratch_bytes(&mut self, frames: usize) -> &mut [u8] {
        let len = frames * self.bpf;
        let words = len.div_ceil(8);
        if self.scratch.len() < words {
            self.scratch.resize(words, 0);
        }
        // SAFETY: `scratch` holds at least `len` initialized bytes; any byte pattern is a `u8`.
        unsafe { std::slice::from_raw_parts_mut(self.scratch.as_mut_ptr() as *mut u8, len) }
    }

    /// Gives the held-back frames to the converter once they complete an output frame; appends
    /// at most `limit` output frames to `out` (the rest is the tail of drain silence).
    fn flush_pending(&mut self, out: &mut Vec<i16>, limit: usize) {
        let out_frames = self.out_frames(self.pending);
        if out_frames == 0 {
            return;
        }
        let start = out.len();
        // SAFETY: `scratch` holds `pending` whole frames, 8-byte aligned.
        unsafe {
            self.run(
                self.scratch.as_ptr() as *const u8,
                self.pending,
                out_frames,
                out,
            )
        };
        self.pending = 0;
        out.truncate(start + limit.min(out_frames));
    }

    /// Converts `in_frames` frames at `input` into exactly `out_frames` (> 0, what the converter
    /// reports for `in_frames`) frames appended to `out`.
    ///
    /// # Safety
    /// `input` points to `in_frames` whole frames, aligned for the sample type, that stay valid
    /// and unchanged during the call.
    unsafe fn run(
        &mut self,
        input: *const u8,
        in_frames: usize,
        out_frames: usize,
        out: &mut Vec<i16>,
    ) {
        debug_assert!(in_frames > 0 && out_frames > 0);
        debug_assert_eq!(out_frames, self.out_frames(in_frames));
        self.out_float.resize(out_frames, 0.0);
        let mut in_ptrs = [input as glib::ffi::gpointer];
        let mut out_ptrs = [self.out_float.as_mut_ptr() as glib::ffi::gpointer];
        // SAFETY: `raw` is a live converter; `out_float` has room for `out_frames` frames, the count
        // the converter reports for `in_frames`, and that count is not zero (see the type's
        // comment); the converter only reads the input (not flagged writable).
        let ok = unsafe {
            ffi::gst_audio_converter_samples(
                self.raw.as_ptr(),
                ffi::GST_AUDIO_CONVERTER_FLAG_NONE,
                in_ptrs.as_mut_ptr(),
                in_frames,
                out_ptrs.as_mut_ptr(),
                out_frames,
            )
        };
        if ok != glib::ffi::GFALSE {
            out.extend(
                self.out_float[..out_frames]
                    .iter()
                    .map(|&sample| to_s16(sample)),
            );
            self.frames_out += out_frames as u64;
        }
    }
}

/// Rounds a full-scale-1.0 float to the nearest 16-bit sample (halves up), saturating: what
/// GstAudioQuantize does without dither.
fn to_s16(sample: f32) -> i16 {
    // `as` saturates (and maps NaN to 0).
    (f64::from(sample) * 32768.0 + 0.5).floor() as i16
}

impl Drop for EngineFormatConverter {
    fn drop(&mut self) {
        // SAFETY: we own the converter and drop it once.
        unsafe { ffi::gst_audio_converter_free(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(format: gst_audio::AudioFormat, rate: u32, channels: u32) -> gst_audio::AudioInfo {
        gst_audio::AudioInfo::builder(format, rate, channels)
            .build()
            .unwrap()
    }

    /// Signal-to-noise ratio of `got` against a least-squares fitted sine of `freq` Hz.
    fn sine_snr_db(got: &[i16], freq: f64, rate: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / rate;
        let (mut ss, mut cc, mut sc, mut ys, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (n, &y) in got.iter().enumerate() {
            let (s, c) = (w * n as f64).sin_cos();
            let y = y as f64;
            ss += s * s;
            cc += c * c;
            sc += s * c;
            ys += y * s;
            yc += y * c;
        }
        let det = ss * cc - sc * sc;
        let a = (ys * cc - yc * sc) / det;
        let b = (yc * ss - ys * sc) / det;
        let (mut signal, mut noise) = (0.0, 0.0);
        for (n, &y) in got.iter().enumerate() {
            let (s, c) = (w * n as f64).sin_cos();
            let ideal = a * s + b * c;
            signal += ideal * ideal;
            noise += (y as f64 - ideal).powi(2);
        }
        10.0 * (signal / noise).log10()
    }

    #[test]
    fn stereo_f32_48k_sine_converts_with_60db_snr_across_buffers() {
        gst::init().unwrap();
        let mut conv =
            EngineFormatConverter::new(&info(gst_audio::AudioFormat::F32le, 48_000, 2)).unwrap();
        let mut out = Vec::new();
        let total = 48_000 * 2;
        // Odd buffer sizes so that buffer boundaries fall everywhere in the filter.
        let mut n = 0usize;
        for size in [441usize, 1024, 37, 4800, 960].into_iter().cycle() {
            if n >= total {
                break;
            }
            let frames: Vec<u8> = (n..(n + size).min(total))
                .flat_map(|i| {
                    let v = (0.5
                        * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 48_000.0).sin())
                        as f32;
                    [v.to_le_bytes(), v.to_le_bytes()].concat()
                })
                .collect();
            out.extend(conv.convert(&frames));
            n += size;
        }
        out.extend(conv.drain());
        // Two seconds at 48 kHz are two seconds at 24 kHz, to the sample.
        assert_eq!(out.len(), 48_000);
        let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!(
            (16_000..=16_600).contains(&peak),
            "peak {peak} (expected 0.5 full scale)"
        );
        // Judge the steady state, away from the filter's start-up.
        let snr = sine_snr_db(&out[2_000..46_000], 1000.0, 24_000.0);
        assert!(snr >= 60.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn a_tone_above_the_engine_nyquist_does_not_alias_into_speech() {
        // 15 kHz at 48 kHz would fold to 9 kHz at 24 kHz: the filter's stop band must take it
        // to the 16-bit output's noise floor. A 0.5 full-scale tone is 16384; 80 dB below is
        // 1.6 counts.
        gst::init().unwrap();
        let mut conv =
            EngineFormatConverter::new(&info(gst_audio::AudioFormat::F32le, 48_000, 1)).unwrap();
        let input: Vec<u8> = (0..48_000)
            .flat_map(|i| {
                let t = i as f64 / 48_000.0;
                ((0.5 * (2.0 * std::f64::consts::PI * 15_000.0 * t).sin()) as f32).to_le_bytes()
            })
            .collect();
        let mut out = conv.convert(&input);
        out.extend(conv.drain());
        let steady = &out[2_000..22_000];
        let rms = (steady.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / steady.len() as f64)
            .sqrt();
        let attenuation_db = 20.0 * (16_384.0 / std::f64::consts::SQRT_2 / rms.max(1e-9)).log10();
        assert!(
            attenuation_db >= 80.0,
            "15 kHz attenuated by {attenuation_db:.1} dB only"
        );
    }

    #[test]
    fn float_rounds_to_the_nearest_s16_halves_up_and_saturates() {
        let step = 1.0 / 32768.0;
        assert_eq!(to_s16(0.0), 0);
        assert_eq!(to_s16(0.49 * step), 0);
        assert_eq!(to_s16(0.5 * step), 1);
        assert_eq!(to_s16(-0.5 * step), 0);
        assert_eq!(to_s16(-0.51 * step), -1);
        assert_eq!(to_s16(1.0), i16::MAX);
        assert_eq!(to_s16(-1.0), i16::MIN);
        assert_eq!(to_s16(-4.0), i16::MIN);
        assert_eq!(to_s16(1234.0 * step), 1234);
        assert_eq!(to_s16(f32::NAN), 0);
    }

    #[test]
    fn float_buffers_shorter_than_the_filter_latency_convert_without_loss() {
        // Each of these buffers alone completes no output frame at first: the converter must
        // not be called for zero output frames (it dereferences NULL for float input then).
        gst::init().unwrap();
        use gst_audio::AudioFormat::*;
        for format in [F32le, F64le, S16le] {
            for frames in [1usize, 7, 33, 64] {
                let in_info = info(format, 48_000, 2);
                let mut conv = EngineFormatConverter::new(&in_info).unwrap();
                let silence = vec![0u8; frames * in_info.bpf() as usize];
                let mut out = Vec::new();
                for _ in 0..4_800usize.div_ceil(frames) {
                    out.extend(conv.convert(&silence));
                }
                out.extend(conv.drain());
                let expected = (4_800usize.div_ceil(frames) * frames).div_ceil(2);
                assert_eq!(out.len(), expected, "{format:?}, {frames}-frame buffers");
            }
        }
    }

    #[test]
    fn every_common_format_rate_and_channel_count_converts() {
        gst::init().unwrap();
        use gst_audio::AudioFormat::*;
        for format in [S16le, S32le, F32le, F64le, U8, S24le, S16be] {
            for rate in [8_000u32, 16_000, 22_050, 44_100, 48_000, 96_000, 192_000] {
                for channels in [1u32, 2, 6, 8] {
                    let in_info = info(format, rate, channels);
                    let mut conv = EngineFormatConverter::new(&in_info).unwrap();
                    let bytes = vec![0u8; in_info.bpf() as usize * rate as usize / 10];
                    let out = conv.convert(&bytes);
                    let expected = ENGINE_RATE as usize / 10;
                    assert!(
                        out.len() <= expected && out.len() + 400 >= expected,
                        "{format:?} {rate} {channels}: {}",
                        out.len()
                    );
                }
            }
        }
    }
}
