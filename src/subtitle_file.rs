//! Subtitle files (SRT, WebVTT) from the cues `subtitle_src` produces, for recipes and tools that
//! write files for VOD.

use std::fmt::Write;

/// One timed cue, times in nanoseconds from the start of the output.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedCue {
    pub start_ns: u64,
    pub end_ns: u64,
    pub text: String,
}

fn timestamp(ns: u64, decimal: char) -> String {
    let ms = ns / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}{decimal}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// SubRip: numbered cues, `HH:MM:SS,mmm`.
pub fn to_srt(cues: &[TimedCue]) -> String {
    let mut out = String::new();
    for (i, cue) in cues.iter().enumerate() {
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            timestamp(cue.start_ns, ','),
            timestamp(cue.end_ns, ','),
            cue.text.trim()
        );
    }
    out
}

/// WebVTT: `WEBVTT` header, `HH:MM:SS.mmm`, cue text escaped.
pub fn to_webvtt(cues: &[TimedCue]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for cue in cues {
        let text = cue
            .text
            .trim()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;");
        let _ = write!(
            out,
            "{} --> {}\n{}\n\n",
            timestamp(cue.start_ns, '.'),
            timestamp(cue.end_ns, '.'),
            text.replace("-->", "--&gt;")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cues() -> Vec<TimedCue> {
        vec![
            TimedCue {
                start_ns: 2_840_000_000,
                end_ns: 4_540_000_000,
                text: "El tiempo hoy\nes soleado.".into(),
            },
            TimedCue {
                start_ns: 3_723_004_000_000,
                end_ns: 3_725_000_000_000,
                text: "<b> & más".into(),
            },
        ]
    }

    #[test]
    fn srt_numbers_cues_with_comma_milliseconds() {
        assert_eq!(
            to_srt(&cues()),
            "1\n00:00:02,840 --> 00:00:04,540\nEl tiempo hoy\nes soleado.\n\n\
             2\n01:02:03,004 --> 01:02:05,000\n<b> & más\n\n"
        );
    }

    #[test]
    fn webvtt_has_a_header_and_escapes_markup() {
        let vtt = to_webvtt(&cues());
        assert!(vtt.starts_with(
            "WEBVTT\n\n00:00:02.840 --> 00:00:04.540\nEl tiempo hoy\nes soleado.\n\n"
        ));
        assert!(vtt.contains("01:02:03.004 --> 01:02:05.000\n&lt;b&gt; &amp; más\n"));
    }
}
