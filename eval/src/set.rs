//! What to evaluate: one recording with its references, or a set of them from a directory or a
//! manifest.

use std::path::{Path, PathBuf};

/// A recording, its time-aligned reference translation and, optionally, its source transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Triple {
    pub name: String,
    pub input: PathBuf,
    pub reference: PathBuf,
    pub source_reference: Option<PathBuf>,
}

const AUDIO: &[&str] = &["wav", "flac", "ogg", "opus", "mp3", "m4a"];
const TEXT: &[&str] = &["srt", "vtt"];

/// A single recording; named after its file.
pub fn single(input: &Path, reference: &Path, source_reference: Option<&Path>) -> Triple {
    Triple {
        name: input
            .file_stem()
            .map_or("input".into(), |s| s.to_string_lossy().into_owned()),
        input: input.to_owned(),
        reference: reference.to_owned(),
        source_reference: source_reference.map(Path::to_owned),
    }
}

/// Every `NAME.LANGUAGE.srt` (or `.vtt`) in `dir`, with the recording `NAME.wav` (or flac, ogg,
/// opus, mp3, m4a) from `audio_dir` (default: `dir`) and `NAME.SOURCE_LANGUAGE.srt` as source
/// reference when present; in name order.
pub fn from_dir(
    dir: &Path,
    audio_dir: Option<&Path>,
    language: &str,
    source_language: &str,
) -> Result<Vec<Triple>, String> {
    let audio_dir = audio_dir.unwrap_or(dir);
    let mut triples = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for file in names {
        let Some(name) = TEXT
            .iter()
            .find_map(|ext| file.strip_suffix(&format!(".{language}.{ext}")))
        else {
            continue;
        };
        let input = AUDIO
            .iter()
            .map(|ext| audio_dir.join(format!("{name}.{ext}")))
            .find(|p| p.exists())
            .ok_or(format!(
                "no recording for {file} in {}",
                audio_dir.display()
            ))?;
        let source_reference = TEXT
            .iter()
            .map(|ext| dir.join(format!("{name}.{source_language}.{ext}")))
            .find(|p| p.exists());
        triples.push(Triple {
            name: name.to_owned(),
            input,
            reference: dir.join(&file),
            source_reference,
        });
    }
    if triples.is_empty() {
        return Err(format!(
            "no *.{language}.srt or .vtt reference in {}",
            dir.display()
        ));
    }
    Ok(triples)
}

/// A manifest: one recording a line, `INPUT<TAB>REFERENCE[<TAB>SOURCE_REFERENCE]`, paths relative
/// to the manifest's directory; blank lines and lines starting with `#` are skipped.
pub fn from_manifest(path: &Path) -> Result<Vec<Triple>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut triples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if !(2..=3).contains(&fields.len()) {
            return Err(format!(
                "{}:{}: expected INPUT<TAB>REFERENCE[<TAB>SOURCE_REFERENCE]",
                path.display(),
                n + 1
            ));
        }
        let source = fields.get(2).map(|f| base.join(f));
        triples.push(single(
            &base.join(fields[0]),
            &base.join(fields[1]),
            source.as_deref(),
        ));
    }
    Ok(triples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_pairs_references_with_recordings() {
        let dir = tempfile::tempdir().unwrap();
        let audio = tempfile::tempdir().unwrap();
        for f in ["b.es.srt", "a.es.vtt", "a.en.srt", "notes.txt"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        std::fs::write(audio.path().join("a.wav"), "").unwrap();
        std::fs::write(audio.path().join("b.flac"), "").unwrap();
        let set = from_dir(dir.path(), Some(audio.path()), "es", "en").unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set[0].name, "a");
        assert_eq!(set[0].input, audio.path().join("a.wav"));
        assert_eq!(set[0].source_reference, Some(dir.path().join("a.en.srt")));
        assert_eq!(set[1].input, audio.path().join("b.flac"));
        assert_eq!(set[1].source_reference, None);
        std::fs::remove_file(audio.path().join("b.flac")).unwrap();
        assert!(
            from_dir(dir.path(), Some(audio.path()), "es", "en")
                .unwrap_err()
                .contains("b.es.srt")
        );
    }

    #[test]
    fn a_manifest_is_relative_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("set.tsv");
        std::fs::write(
            &manifest,
            "# talks\ntalk.wav\ttalk.es.srt\ttalk.en.vtt\n\nb.wav\tb.es.srt\n",
        )
        .unwrap();
        let set = from_manifest(&manifest).unwrap();
        assert_eq!(
            set[0],
            single(
                &dir.path().join("talk.wav"),
                &dir.path().join("talk.es.srt"),
                Some(&dir.path().join("talk.en.vtt"))
            )
        );
        assert_eq!(set[1].source_reference, None);
        std::fs::write(&manifest, "only-one-field\n").unwrap();
        assert!(from_manifest(&manifest).is_err());
    }
}
