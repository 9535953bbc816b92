//! The converter (src/convert.rs) against everything the element's sink pad accepts: every format
//! of its template × 1–8 channels × buffer sizes from 1 frame × rates from 8 to 96 kHz, with
//! buffers both aligned and not for their sample type, drains before any input and in the middle,
//! and format changes mid-stream the way the element makes them (drain, then a new converter).
//!
//! Each case checks that nothing crashes, that after `drain()` the output is exactly the input's
//! duration at 24 kHz rounded up to a whole sample (`ceil(frames × 24000 / rate)`: never short,
//! less than one sample over), and that a sine comes out as that sine (SNR), so that no input is
//! lost, repeated or reordered. `scripts/memcheck.sh` runs this file under valgrind.

use gst_audio::AudioFormat;
use gstrealtimetranslate::convert::{ENGINE_RATE, EngineFormatConverter};

const SIZES: [usize; 8] = [1, 2, 7, 33, 64, 127, 480, 4801];
const RATES: [u32; 4] = [8_000, 44_100, 48_000, 96_000];
const TONE_HZ: f64 = 440.0;
const AMPLITUDE: f64 = 0.5;

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gstrealtimetranslate::plugin_register_static().unwrap();
    });
}

/// The formats of the element's sink pad template, so that a format added there is tested here.
fn sink_formats() -> Vec<AudioFormat> {
    let factory = gst::ElementFactory::find("realtimetranslate").unwrap();
    let template = factory
        .static_pad_templates()
        .into_iter()
        .find(|t| t.name_template() == "sink")
        .unwrap();
    let caps = template.caps();
    let formats = caps
        .structure(0)
        .unwrap()
        .get::<gst::List>("format")
        .unwrap();
    formats
        .iter()
        .map(|f| AudioFormat::from_string(f.get::<&str>().unwrap()))
        .collect()
}

fn info(format: AudioFormat, rate: u32, channels: u32) -> gst_audio::AudioInfo {
    gst_audio::AudioInfo::builder(format, rate, channels)
        .build()
        .unwrap()
}

/// One sample `v` (−1…1) in `format`, written independently of GStreamer.
fn encode(format: AudioFormat, v: f64, out: &mut Vec<u8>) {
    use AudioFormat::*;
    let int = |bits: u32| (v * ((1i64 << (bits - 1)) - 1) as f64).round() as i64;
    match format {
        S8 => out.push(int(8) as i8 as u8),
        U8 => out.push((int(8) + 128) as u8),
        S16le => out.extend((int(16) as i16).to_le_bytes()),
        S16be => out.extend((int(16) as i16).to_be_bytes()),
        U16le => out.extend(((int(16) + 32_768) as u16).to_le_bytes()),
        S24le => out.extend(&(int(24) as i32).to_le_bytes()[..3]),
        S24be => out.extend(&(int(24) as i32).to_be_bytes()[1..]),
        S2432le => out.extend((int(24) as i32).to_le_bytes()),
        S32le => out.extend((int(32) as i32).to_le_bytes()),
        S32be => out.extend((int(32) as i32).to_be_bytes()),
        F32le => out.extend((v as f32).to_le_bytes()),
        F32be => out.extend((v as f32).to_be_bytes()),
        F64le => out.extend(v.to_le_bytes()),
        F64be => out.extend(v.to_be_bytes()),
        other => panic!("no test encoding for {other:?}: add one"),
    }
}

/// Frames `start..start + frames` of a sine, the same in every channel.
fn tone(info: &gst_audio::AudioInfo, start: usize, frames: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(frames * info.bpf() as usize);
    for i in start..start + frames {
        let t = i as f64 / f64::from(info.rate());
        let v = AMPLITUDE * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin();
        for _ in 0..info.channels() {
            encode(info.format(), v, &mut bytes);
        }
    }
    bytes
}

/// What the converter must have put out, drained, for `frames` input frames at `rate`.
fn expected_len(frames: usize, rate: u32) -> usize {
    (frames as u64 * u64::from(ENGINE_RATE)).div_ceil(u64::from(rate)) as usize
}

/// Signal-to-noise ratio of `got` against the least-squares fitted sine of `freq` Hz at 24 kHz.
fn sine_snr_db(got: &[i16], freq: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * freq / f64::from(ENGINE_RATE);
    let (mut ss, mut cc, mut sc, mut ys, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (n, &y) in got.iter().enumerate() {
        let (s, c) = (w * n as f64).sin_cos();
        let y = f64::from(y);
        ss += s * s;
        cc += c * c;
        sc += s * c;
        ys += y * s;
        yc += y * c;
    }
    let det = ss * cc - sc * sc;
    let (a, b) = ((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
    let (mut signal, mut noise) = (0.0, 0.0);
    for (n, &y) in got.iter().enumerate() {
        let (s, c) = (w * n as f64).sin_cos();
        let ideal = a * s + b * c;
        signal += ideal * ideal;
        noise += (f64::from(y) - ideal).powi(2);
    }
    10.0 * (signal / noise).log10()
}

/// Lowest SNR a 0.5 full-scale sine keeps: 8-bit input has ≈ 44 dB of its own quantization
/// noise; the other formats are held to 80 dB (the 16-bit output alone allows ≈ 92 dB at this
/// level; measured: 89 dB or more, 78 dB for S16 input when the converter resampled in 16 bits).
fn min_snr_db(format: AudioFormat) -> f64 {
    if gst_audio::AudioFormatInfo::from_format(format).depth() <= 8 {
        38.0
    } else {
        80.0
    }
}

/// Checks one converted segment: exact length, and the sine away from its edges (where the
/// filter starts on silence and ends on the drain's silence).
fn check_segment(what: &str, format: AudioFormat, out: &[i16], in_frames: usize, rate: u32) {
    assert_eq!(
        out.len(),
        expected_len(in_frames, rate),
        "{what}: {in_frames} frames at {rate} Hz"
    );
    let edge = ENGINE_RATE as usize / 100;
    if out.len() > 4 * edge {
        let middle = &out[edge..out.len() - edge];
        let snr = sine_snr_db(middle, TONE_HZ);
        assert!(snr >= min_snr_db(format), "{what}: SNR {snr:.1} dB");
        let peak = middle.iter().map(|s| s.unsigned_abs()).max().unwrap();
        // A downmix of identical channels keeps their level.
        assert!(
            (15_500..=17_000).contains(&peak),
            "{what}: peak {peak} (expected about 0.5 full scale)"
        );
    }
}

/// Feeds `frames` frames of the tone (continuing from frame `start`) in buffers of `size`, each
/// copied to a byte offset that cycles 0..8 so that most buffers are misaligned for their type.
fn feed(
    conv: &mut EngineFormatConverter,
    info: &gst_audio::AudioInfo,
    start: usize,
    frames: usize,
    size: usize,
    out: &mut Vec<i16>,
) {
    let bpf = info.bpf() as usize;
    let mut backing = vec![0u64; (size * bpf).div_ceil(8) + 1];
    let mut n = 0;
    let mut index = 0;
    while n < frames {
        let take = size.min(frames - n);
        let bytes = tone(info, start + n, take);
        let offset = index % 8;
        // SAFETY: `backing` has `size * bpf + 8` bytes; any byte pattern is a u8.
        let raw = unsafe {
            std::slice::from_raw_parts_mut(backing.as_mut_ptr() as *mut u8, backing.len() * 8)
        };
        raw[offset..offset + bytes.len()].copy_from_slice(&bytes);
        out.extend(conv.convert(&raw[offset..offset + bytes.len()]));
        n += take;
        index += 1;
    }
}

/// Input frames for one case: 40 ms, and at least three buffers, in whole buffers.
fn case_frames(rate: u32, size: usize) -> usize {
    (rate as usize / 25).max(3 * size).div_ceil(size) * size
}

#[test]
fn every_sink_format_channel_count_buffer_size_and_rate_converts_to_the_exact_length() {
    init();
    let formats = sink_formats();
    for format in [
        AudioFormat::S8,
        AudioFormat::U8,
        AudioFormat::S16le,
        AudioFormat::S24le,
        AudioFormat::S2432le,
        AudioFormat::S32le,
        AudioFormat::F32le,
        AudioFormat::F64le,
    ] {
        assert!(formats.contains(&format), "{format:?} not in {formats:?}");
    }
    let mut cases = 0;
    for &format in &formats {
        for channels in 1..=8 {
            for rate in RATES {
                let info = info(format, rate, channels);
                for size in SIZES {
                    let what = format!("{format:?} {channels} ch {rate} Hz, {size}-frame buffers");
                    let mut conv = EngineFormatConverter::new(&info).unwrap();
                    // A drain before any input (EOS or new caps first) gives nothing.
                    assert!(conv.drain().is_empty(), "{what}: drain before input");
                    let frames = case_frames(rate, size);
                    let mut out = Vec::new();
                    feed(&mut conv, &info, 0, frames, size, &mut out);
                    out.extend(conv.drain());
                    check_segment(&what, format, &out, frames, rate);
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, formats.len() * 8 * RATES.len() * SIZES.len());
}

#[test]
fn format_changes_mid_stream_drain_then_convert_with_a_new_converter() {
    init();
    use AudioFormat::*;
    // (format, rate, channels, buffer size): each segment drains the previous converter and
    // makes a new one, as the element does on new caps; the second F32 segment changes only the
    // rate, the last one needs no resampler at all.
    let segments = [
        (F32le, 44_100, 2, 7),
        (S16le, 8_000, 1, 1),
        (F64le, 96_000, 6, 33),
        (F32le, 48_000, 2, 64),
        (U8, 22_050, 3, 127),
        (S24le, 192_000, 8, 480),
        (F32be, 24_000, 1, 2),
    ];
    let frames = |rate, size| case_frames(rate, size) * 2;
    let mut current: Option<(EngineFormatConverter, Vec<i16>, usize)> = None;
    for (i, &(format, rate, channels, size)) in segments.iter().enumerate() {
        // New caps: the old converter's tail completes the previous segment.
        if let Some((mut old, mut out, previous)) = current.take() {
            out.extend(old.drain());
            let (format, rate, _, size) = segments[previous];
            let what = format!("segment {previous} ({format:?} {rate} Hz)");
            check_segment(&what, format, &out, frames(rate, size), rate);
        }
        let info = info(format, rate, channels);
        let mut conv = EngineFormatConverter::new(&info).unwrap();
        let mut out = Vec::new();
        feed(&mut conv, &info, 0, frames(rate, size), size, &mut out);
        current = Some((conv, out, i));
    }
    let (mut conv, mut out, last) = current.unwrap();
    out.extend(conv.drain());
    let (format, rate, _, size) = segments[last];
    check_segment("last segment", format, &out, frames(rate, size), rate);
}

#[test]
fn drain_in_the_middle_and_reset_keep_the_length_exact() {
    init();
    for format in [AudioFormat::F32le, AudioFormat::F64le, AudioFormat::S16le] {
        let info = info(format, 44_100, 2);
        let mut conv = EngineFormatConverter::new(&info).unwrap();
        // A gap: drain, then the same converter goes on from a fresh history.
        let mut out = Vec::new();
        feed(&mut conv, &info, 0, 3_001, 7, &mut out);
        out.extend(conv.drain());
        check_segment("before the gap", format, &out, 3_001, 44_100);
        let mut out = Vec::new();
        feed(&mut conv, &info, 0, 2_205, 1, &mut out);
        out.extend(conv.drain());
        check_segment("after the gap", format, &out, 2_205, 44_100);
        // A flush: what was held back is forgotten with the history.
        conv.convert(&tone(&info, 0, 5));
        conv.reset();
        let mut out = Vec::new();
        feed(&mut conv, &info, 0, 4_410, 33, &mut out);
        out.extend(conv.drain());
        check_segment("after a reset", format, &out, 4_410, 44_100);
    }
}
