//! Any raw audio → 24 kHz mono S16LE, the only input the engines take.
//!
//! Wraps GStreamer's own `GstAudioConverter` (format, channel mix and resampler in one pass) through
//! its C API, since the Rust bindings only expose its configuration. The converter keeps its filter
//! history between calls, so consecutive buffers join without clicks.

use gst::glib;
use gst::glib::translate::{IntoGlibPtr, ToGlibPtr};
use gst_audio::ffi;
use std::ptr;

/// Rate the engines expect.
pub const ENGINE_RATE: u32 = 24_000;

/// Stateful converter from one input format to the engine format.
pub struct EngineFormatConverter {
    raw: ptr::NonNull<ffi::GstAudioConverter>,
    in_info: gst_audio::AudioInfo,
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
        let out_info = Self::engine_info();
        let mut config = gst_audio::AudioConverterConfig::new();
        // Kaiser at a high quality keeps aliasing and passband ripple far below the 16-bit floor.
        config.set_resampler_method(gst_audio::AudioResamplerMethod::Kaiser);
        config.set("GstAudioResampler.cutoff", 0.94f64);
        config.set("GstAudioResampler.stop-attenuation", 120.0f64);
        config.set("GstAudioResampler.transition-bandwidth", 0.06f64);
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
        Ok(Self {
            raw,
            in_info: in_info.clone(),
        })
    }

    /// The input format this converter was made for.
    pub fn in_info(&self) -> &gst_audio::AudioInfo {
        &self.in_info
    }

    /// Converts whole input frames; a trailing partial frame is ignored.
    pub fn convert(&mut self, input: &[u8]) -> Vec<i16> {
        let in_frames = input.len() / self.in_info.bpf() as usize;
        if in_frames == 0 {
            return Vec::new();
        }
        // The converter reads the input through a typed pointer; copy unaligned data first.
        let align = self.in_info.format_info().width() as usize / 8;
        if align > 1 && !(input.as_ptr() as usize).is_multiple_of(align) {
            let mut aligned = vec![0u64; input.len().div_ceil(8)];
            // SAFETY: `aligned` holds at least `input.len()` bytes, 8-byte aligned.
            let bytes = unsafe {
                std::slice::from_raw_parts_mut(aligned.as_mut_ptr() as *mut u8, input.len())
            };
            bytes.copy_from_slice(input);
            return self.run(bytes.as_ptr(), in_frames);
        }
        self.run(input.as_ptr(), in_frames)
    }

    /// Pushes the converter's remaining history out (as if silence followed), for EOS.
    pub fn drain(&mut self) -> Vec<i16> {
        // SAFETY: `raw` is a live converter.
        let latency = unsafe { ffi::gst_audio_converter_get_max_latency(self.raw.as_ptr()) };
        if latency == 0 {
            return Vec::new();
        }
        let out = self.run(ptr::null(), latency);
        // SAFETY: as above.
        unsafe { ffi::gst_audio_converter_reset(self.raw.as_ptr()) };
        out
    }

    /// Forgets the filter history (after a flush or a discontinuity).
    pub fn reset(&mut self) {
        // SAFETY: `raw` is a live converter.
        unsafe { ffi::gst_audio_converter_reset(self.raw.as_ptr()) };
    }

    /// `input` null means silence.
    fn run(&mut self, input: *const u8, in_frames: usize) -> Vec<i16> {
        // SAFETY: `raw` is a live converter; `out` has room for exactly the frame count the
        // converter reports for `in_frames`; `input` is null or holds `in_frames` whole frames.
        unsafe {
            let out_frames = ffi::gst_audio_converter_get_out_frames(self.raw.as_ptr(), in_frames);
            let mut out = vec![0i16; out_frames];
            let mut in_ptrs = [input as glib::ffi::gpointer];
            let mut out_ptrs = [out.as_mut_ptr() as glib::ffi::gpointer];
            let ok = ffi::gst_audio_converter_samples(
                self.raw.as_ptr(),
                ffi::GST_AUDIO_CONVERTER_FLAG_NONE,
                if input.is_null() {
                    ptr::null_mut()
                } else {
                    in_ptrs.as_mut_ptr()
                },
                in_frames,
                out_ptrs.as_mut_ptr(),
                out_frames,
            );
            if ok == glib::ffi::GFALSE {
                out.clear();
            }
            out
        }
    }
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
        // One second at 48 kHz is one second at 24 kHz, give or take the filter's edge.
        assert!(
            (out.len() as i64 - 48_000).abs() <= 64,
            "{} samples",
            out.len()
        );
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
