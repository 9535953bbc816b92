//! Time-aligned text: SRT and WebVTT files read into cues.

use std::path::Path;

/// One timed piece of text, in seconds on the programme's timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cue {
    pub start_s: f64,
    pub end_s: f64,
    pub text: String,
}

impl Cue {
    pub fn new(start_s: f64, end_s: f64, text: &str) -> Cue {
        Cue {
            start_s,
            end_s,
            text: text.into(),
        }
    }
}

/// Reads an SRT or WebVTT file (told apart by its `WEBVTT` header).
pub fn read(path: &Path) -> Result<Vec<Cue>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Cues of SRT or WebVTT text: blocks separated by blank lines, each with a `start --> end` line;
/// lines after it are the text (joined with a space; tags such as `<i>` removed). Blocks without
/// a timing line (WebVTT `NOTE`, `STYLE`, the header) are skipped.
pub fn parse(text: &str) -> Result<Vec<Cue>, String> {
    let text = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    let mut cues = Vec::new();
    for block in text.split("\n\n") {
        let mut lines = block.lines().skip_while(|l| !l.contains("-->"));
        let Some(timing) = lines.next() else { continue };
        let (start, rest) = timing.split_once("-->").expect("has an arrow");
        let end = rest.split_whitespace().next().unwrap_or("");
        let start_s = timestamp(start.trim()).ok_or(format!("bad time {start:?}"))?;
        let end_s = timestamp(end).ok_or(format!("bad time {end:?}"))?;
        let words: Vec<String> = lines
            .map(strip_tags)
            .map(|l| unescape(l.trim()))
            .filter(|l| !l.is_empty())
            .collect();
        cues.push(Cue {
            start_s,
            end_s,
            text: words.join(" "),
        });
    }
    Ok(cues)
}

/// `HH:MM:SS,mmm` (SRT), `HH:MM:SS.mmm` or `MM:SS.mmm` (WebVTT).
fn timestamp(s: &str) -> Option<f64> {
    let s = s.replace(',', ".");
    let parts: Vec<&str> = s.split(':').collect();
    let (h, m, sec) = match parts.as_slice() {
        [h, m, sec] => (
            h.parse::<f64>().ok()?,
            m.parse::<f64>().ok()?,
            sec.parse::<f64>().ok()?,
        ),
        [m, sec] => (0.0, m.parse::<f64>().ok()?, sec.parse::<f64>().ok()?),
        _ => return None,
    };
    Some(h * 3600.0 + m * 60.0 + sec)
}

/// WebVTT's character references (SRT text passes through unchanged).
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

fn strip_tags(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_tag = false;
    for c in line.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_srt() {
        let cues = parse("1\r\n00:00:01,500 --> 00:00:03,250\r\nHola\r\nmundo.\r\n\r\n2\r\n00:01:00,000 --> 00:01:02,000\r\n<i>Adiós &amp; co</i>\r\n").unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(
            cues[0],
            Cue {
                start_s: 1.5,
                end_s: 3.25,
                text: "Hola mundo.".into()
            }
        );
        assert_eq!(cues[1].text, "Adiós & co");
        assert_eq!(cues[1].start_s, 60.0);
    }

    #[test]
    fn reads_webvtt_with_notes_and_settings() {
        let cues = parse("WEBVTT\n\nNOTE made by hand\n\nintro\n00:05.000 --> 00:06.500 align:start\nBuenos días.\n\n01:00:00.000 --> 01:00:01.000\nFin\n").unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(
            cues[0],
            Cue {
                start_s: 5.0,
                end_s: 6.5,
                text: "Buenos días.".into()
            }
        );
        assert_eq!(cues[1].start_s, 3600.0);
    }

    #[test]
    fn refuses_a_bad_time() {
        assert!(parse("1\n00:00:xx,000 --> 00:00:01,000\nHola\n").is_err());
    }
}
