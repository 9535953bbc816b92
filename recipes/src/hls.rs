//! The HLS pieces no GStreamer 1.22 element writes: the multivariant ("master") playlist that ties
//! the video, the audio renditions and the subtitles together, and the WebVTT subtitle segments
//! with their media playlist (`hlssink3` writes one audio/video media playlist per instance).

use crate::cues::TextEvent;
use gstrealtimetranslate::subtitle_file::{TimedCue, to_webvtt};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// `mpegtsmux` writes PTS = running time + one hour (90 kHz ticks), so the WebVTT cue at running
/// time 0 maps to this MPEG-TS time (`X-TIMESTAMP-MAP`).
pub const MPEGTS_TIME_OF_RUNNING_TIME_ZERO: u64 = 90_000 * 3600;

/// An `EXT-X-MEDIA` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendition {
    pub kind: RenditionKind,
    pub group_id: String,
    /// RFC 5646 language tag (`en`, `es`, or `und` when unknown).
    pub language: String,
    pub name: String,
    pub default: bool,
    pub uri: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenditionKind {
    Audio,
    Subtitles,
}

/// The `EXT-X-STREAM-INF` entry: the video playlist and what it is played with.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak bits per second of the video plus the largest audio rendition.
    pub bandwidth: u64,
    /// RFC 6381 codecs, e.g. `avc1.4d401e,mp4a.40.2`.
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub audio_group: Option<String>,
    pub subtitles_group: Option<String>,
}

fn quoted(out: &mut String, key: &str, value: &str) {
    // Attribute strings may not contain quotes or line breaks (RFC 8216 §4.2).
    let value: String = value
        .chars()
        .filter(|c| !matches!(c, '"' | '\n' | '\r'))
        .collect();
    let _ = write!(out, ",{key}=\"{value}\"");
}

/// The multivariant playlist.
pub fn master_playlist(variant: &Variant, renditions: &[Rendition]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for r in renditions {
        let kind = match r.kind {
            RenditionKind::Audio => "AUDIO",
            RenditionKind::Subtitles => "SUBTITLES",
        };
        let mut line = format!("#EXT-X-MEDIA:TYPE={kind}");
        quoted(&mut line, "GROUP-ID", &r.group_id);
        quoted(&mut line, "LANGUAGE", &r.language);
        quoted(&mut line, "NAME", &r.name);
        let yes_no = |b: bool| if b { "YES" } else { "NO" };
        let _ = write!(line, ",DEFAULT={},AUTOSELECT=YES", yes_no(r.default));
        quoted(&mut line, "URI", &r.uri);
        out.push_str(&line);
        out.push('\n');
    }
    let mut line = format!("#EXT-X-STREAM-INF:BANDWIDTH={}", variant.bandwidth);
    quoted(&mut line, "CODECS", &variant.codecs);
    if let Some((w, h)) = variant.resolution {
        let _ = write!(line, ",RESOLUTION={w}x{h}");
    }
    if let Some(group) = &variant.audio_group {
        quoted(&mut line, "AUDIO", group);
    }
    if let Some(group) = &variant.subtitles_group {
        quoted(&mut line, "SUBTITLES", group);
    }
    let _ = writeln!(out, "{line}\n{}", variant.uri);
    out
}

/// RFC 6381 codec string of H.264 from the caps `h264parse` puts out (`profile`, `level`).
pub fn avc_codec(profile: &str, level: &str) -> String {
    let (profile_idc, constraints) = match profile {
        "constrained-baseline" => (66, 0xc0),
        "baseline" => (66, 0x80),
        "main" => (77, 0x40),
        "high" => (100, 0x00),
        "high-10" => (110, 0x00),
        "high-4:2:2" => (122, 0x00),
        "high-4:4:4" => (244, 0x00),
        _ => (100, 0x00),
    };
    // "3.1" → 31; "1b" is level 1b, coded as 11 with the baseline/main constraint flag.
    let level_idc: u32 = match level {
        "1b" => 11,
        level => {
            let mut parts = level.splitn(2, '.');
            let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(4);
            let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            major * 10 + minor
        }
    };
    format!("avc1.{profile_idc:02x}{constraints:02x}{level_idc:02x}")
}

/// The language's own name, for rendition names players show.
pub fn language_name(code: &str) -> &str {
    match code {
        "es" => "Español",
        "pt" => "Português",
        "fr" => "Français",
        "ja" => "日本語",
        "ru" => "Русский",
        "zh" => "中文",
        "de" => "Deutsch",
        "ko" => "한국어",
        "hi" => "हिन्दी",
        "id" => "Bahasa Indonesia",
        "vi" => "Tiếng Việt",
        "it" => "Italiano",
        "en" => "English",
        _ => code,
    }
}

/// One WebVTT segment file.
#[derive(Debug, Clone, PartialEq)]
pub struct VttSegment {
    pub index: usize,
    pub duration_ns: u64,
    pub text: String,
}

pub fn vtt_segment_name(index: usize) -> String {
    format!("segment{index:05}.vtt")
}

/// Cuts cues into fixed-length WebVTT segments as the text timeline advances. A cue that spans a
/// boundary is repeated in every segment it overlaps, with its full timing (RFC 8216 §3.5).
#[derive(Debug)]
pub struct VttSegmenter {
    segment_ns: u64,
    cues: Vec<TimedCue>,
    /// Durations of the segments closed so far.
    closed: Vec<u64>,
}

impl VttSegmenter {
    pub fn new(segment: std::time::Duration) -> Self {
        Self {
            segment_ns: (segment.as_nanos() as u64).max(1),
            cues: Vec::new(),
            closed: Vec::new(),
        }
    }

    pub fn push_cue(&mut self, cue: TimedCue) {
        self.cues.push(cue);
    }

    fn segment(&self, index: usize, end: u64) -> VttSegment {
        let start = index as u64 * self.segment_ns;
        let cues: Vec<TimedCue> = self
            .cues
            .iter()
            .filter(|c| c.start_ns < end && c.end_ns > start)
            .cloned()
            .collect();
        let map = format!(
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{MPEGTS_TIME_OF_RUNNING_TIME_ZERO},LOCAL:00:00:00.000\n"
        );
        VttSegment {
            index,
            duration_ns: end - start,
            text: to_webvtt(&cues).replacen("WEBVTT\n", &map, 1),
        }
    }

    /// The segments that end at or before `position` (no cue can start in them any more).
    pub fn close_until(&mut self, position: u64) -> Vec<VttSegment> {
        let mut out = Vec::new();
        loop {
            let index = self.closed.len();
            let end = (index as u64 + 1) * self.segment_ns;
            if end > position {
                return out;
            }
            out.push(self.segment(index, end));
            self.closed.push(self.segment_ns);
        }
    }

    /// End of stream at `end`: the full segments, then a last shorter one.
    pub fn finish(&mut self, end: u64) -> Vec<VttSegment> {
        let mut out = self.close_until(end);
        let start = self.closed.len() as u64 * self.segment_ns;
        if end > start {
            out.push(self.segment(self.closed.len(), end));
            self.closed.push(end - start);
        }
        out
    }

    /// The media playlist of the segments closed so far; `ended` adds `EXT-X-ENDLIST`.
    pub fn playlist(&self, ended: bool) -> String {
        let target = self.segment_ns.div_ceil(1_000_000_000);
        let mut out = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n\
             #EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:EVENT\n"
        );
        for (index, duration) in self.closed.iter().enumerate() {
            let _ = writeln!(
                out,
                "#EXTINF:{:.3},\n{}",
                *duration as f64 / 1e9,
                vtt_segment_name(index)
            );
        }
        if ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// Writes a subtitle rendition into `dir` (segments and `playlist.m3u8`) as cues arrive, so
/// players following the live playlist get the subtitles with the media.
#[derive(Debug)]
pub struct SubtitleRenditionWriter {
    dir: PathBuf,
    segmenter: VttSegmenter,
    /// Where the text timeline has got (ns of running time).
    position: u64,
    error: Option<String>,
}

impl SubtitleRenditionWriter {
    pub fn new(dir: &Path, segment: std::time::Duration) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let writer = Self {
            dir: dir.to_owned(),
            segmenter: VttSegmenter::new(segment),
            position: 0,
            error: None,
        };
        writer.write_playlist(false)?;
        Ok(writer)
    }

    fn write_playlist(&self, ended: bool) -> std::io::Result<()> {
        // Written aside and renamed, so a player never reads half a playlist.
        let path = self.dir.join("playlist.m3u8");
        let partial = self.dir.join("playlist.m3u8.partial");
        std::fs::write(&partial, self.segmenter.playlist(ended))?;
        std::fs::rename(partial, path)
    }

    fn write(&self, segments: &[VttSegment], ended: bool) -> std::io::Result<()> {
        for segment in segments {
            std::fs::write(
                self.dir.join(vtt_segment_name(segment.index)),
                &segment.text,
            )?;
        }
        if !segments.is_empty() || ended {
            self.write_playlist(ended)?;
        }
        Ok(())
    }

    pub fn on_event(&mut self, event: TextEvent) {
        let segments = match event {
            TextEvent::Cue(cue) => {
                self.segmenter.push_cue(cue);
                return;
            }
            TextEvent::Reached(position) => {
                self.position = self.position.max(position);
                self.segmenter.close_until(self.position)
            }
        };
        if let Err(err) = self.write(&segments, false) {
            self.error.get_or_insert(err.to_string());
        }
    }

    /// End of stream: the last segment and `EXT-X-ENDLIST`. `end` is the media's end (running
    /// time); the subtitles cover at least that far.
    pub fn finish(&mut self, end: u64) -> Result<(), String> {
        let segments = self.segmenter.finish(self.position.max(end));
        self.write(&segments, true).map_err(|e| e.to_string())?;
        match self.error.take() {
            Some(err) => Err(format!("cannot write the subtitles: {err}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cue(start_ms: u64, end_ms: u64, text: &str) -> TimedCue {
        TimedCue {
            start_ns: start_ms * 1_000_000,
            end_ns: end_ms * 1_000_000,
            text: text.into(),
        }
    }

    #[test]
    fn master_playlist_labels_every_rendition() {
        let variant = Variant {
            uri: "video/playlist.m3u8".into(),
            bandwidth: 1_200_000,
            codecs: "avc1.64001e,mp4a.40.2".into(),
            resolution: Some((320, 240)),
            audio_group: Some("audio".into()),
            subtitles_group: Some("subs".into()),
        };
        let audio = |language: &str, name: &str, default| Rendition {
            kind: RenditionKind::Audio,
            group_id: "audio".into(),
            language: language.into(),
            name: name.into(),
            default,
            uri: format!("audio-{language}/playlist.m3u8"),
        };
        let subs = Rendition {
            kind: RenditionKind::Subtitles,
            group_id: "subs".into(),
            language: "es".into(),
            name: "Español \"auto\"".into(),
            default: false,
            uri: "subtitles-es/playlist.m3u8".into(),
        };
        let text = master_playlist(
            &variant,
            &[
                audio("en", "Original", true),
                audio("es", "Español", false),
                subs,
            ],
        );
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",LANGUAGE=\"en\",NAME=\"Original\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio-en/playlist.m3u8\"\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",LANGUAGE=\"es\",NAME=\"Español\",DEFAULT=NO,AUTOSELECT=YES,URI=\"audio-es/playlist.m3u8\"\n\
             #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",LANGUAGE=\"es\",NAME=\"Español auto\",DEFAULT=NO,AUTOSELECT=YES,URI=\"subtitles-es/playlist.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1200000,CODECS=\"avc1.64001e,mp4a.40.2\",RESOLUTION=320x240,AUDIO=\"audio\",SUBTITLES=\"subs\"\n\
             video/playlist.m3u8\n"
        );
    }

    #[test]
    fn avc_codec_strings() {
        assert_eq!(avc_codec("high", "3"), "avc1.64001e");
        assert_eq!(avc_codec("main", "3.1"), "avc1.4d401f");
        assert_eq!(avc_codec("constrained-baseline", "4"), "avc1.42c028");
    }

    #[test]
    fn cues_go_in_every_segment_they_overlap_as_the_timeline_advances() {
        let mut s = VttSegmenter::new(Duration::from_secs(2));
        s.push_cue(cue(1500, 2500, "Frase 1 de 900 ms."));
        assert!(s.close_until(1_999_000_000).is_empty());
        let first = s.close_until(2_000_000_000);
        assert_eq!(first.len(), 1);
        assert_eq!(
            first[0].text,
            format!(
                "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:324000000,LOCAL:00:00:00.000\n\n\
                 00:00:01.500 --> 00:00:02.500\nFrase 1 de 900 ms.\n\n"
            )
        );
        s.push_cue(cue(4100, 5000, "<2>"));
        let rest = s.finish(5_500_000_000);
        assert_eq!(rest.len(), 2);
        assert!(
            rest[0]
                .text
                .contains("00:00:01.500 --> 00:00:02.500\nFrase 1")
        );
        assert!(!rest[0].text.contains("&lt;2&gt;"));
        assert!(
            rest[1]
                .text
                .contains("00:00:04.100 --> 00:00:05.000\n&lt;2&gt;")
        );
        assert_eq!(rest[1].duration_ns, 1_500_000_000);
        assert_eq!(
            s.playlist(true),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
             #EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:2.000,\nsegment00000.vtt\n#EXTINF:2.000,\n\
             segment00001.vtt\n#EXTINF:1.500,\nsegment00002.vtt\n#EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn writer_publishes_segments_while_running_and_ends_the_playlist() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SubtitleRenditionWriter::new(dir.path(), Duration::from_secs(1)).unwrap();
        writer.on_event(TextEvent::Cue(cue(200, 900, "hola")));
        writer.on_event(TextEvent::Reached(1_300_000_000));
        let playlist = std::fs::read_to_string(dir.path().join("playlist.m3u8")).unwrap();
        assert!(playlist.contains("segment00000.vtt") && !playlist.contains("ENDLIST"));
        assert!(
            std::fs::read_to_string(dir.path().join("segment00000.vtt"))
                .unwrap()
                .contains("hola")
        );
        writer.finish(1_600_000_000).unwrap();
        let playlist = std::fs::read_to_string(dir.path().join("playlist.m3u8")).unwrap();
        assert!(playlist.ends_with("#EXTINF:0.600,\nsegment00001.vtt\n#EXT-X-ENDLIST\n"));
    }
}
