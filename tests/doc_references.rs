//! The repository documents itself: every `docs/….md` named in code, scripts or documentation,
//! and every relative link in a Markdown file, points at a file of this repository, and nothing
//! points at documents outside it (a clone has only what is committed).

use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's own text files: sources, scripts, documentation (not `target/`).
fn text_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "demo" {
                    walk(&path, out);
                }
            } else if ["rs", "md", "sh", "py", "toml"]
                .iter()
                .any(|ext| name.ends_with(&format!(".{ext}")))
            {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(root(), &mut files);
    assert!(files.len() > 50, "too few files found: {}", files.len());
    files
}

/// `docs/….md` mentions: the path runs from `docs/` to `.md` over path characters.
fn docs_mentions(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("docs/") {
        let tail = &rest[start..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || "/_.-".contains(c)))
            .unwrap_or(tail.len());
        let mention = tail[..len].trim_end_matches('.');
        let preceded_by_path =
            rest[..start].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if mention.ends_with(".md") && !preceded_by_path {
            found.push(mention.to_string());
        }
        rest = &tail[len.max(1)..];
    }
    found
}

/// Targets of Markdown links `](target)` that are relative paths (no scheme, no pure anchor).
fn relative_links(text: &str) -> Vec<String> {
    text.split("](")
        .skip(1)
        .filter_map(|after| after.split(')').next())
        .map(|target| target.split('#').next().unwrap_or_default().to_string())
        .filter(|target| !target.is_empty() && !target.contains("://") && !target.contains(' '))
        .collect()
}

#[test]
fn every_docs_mention_and_relative_link_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in text_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let relative = file.strip_prefix(root()).unwrap().display().to_string();
        for mention in docs_mentions(&text) {
            checked += 1;
            if !root().join(&mention).is_file() {
                broken.push(format!("{relative}: {mention}"));
            }
        }
        if relative.ends_with(".md") {
            for link in relative_links(&text) {
                checked += 1;
                if !file.parent().unwrap().join(&link).exists() {
                    broken.push(format!("{relative}: link {link}"));
                }
            }
        }
    }
    assert!(
        checked > 20,
        "too few references found ({checked}): the scan is broken"
    );
    assert!(
        broken.is_empty(),
        "references to missing files:\n{}",
        broken.join("\n")
    );
}

#[test]
fn nothing_points_at_documents_outside_the_repository() {
    let outside = [
        "shared/PROTOCOL.md",
        "shared/DESIGN.md",
        "../shared",
        "/work/",
    ];
    let mut found = Vec::new();
    for file in text_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let relative = file.strip_prefix(root()).unwrap().display().to_string();
        if relative == "tests/doc_references.rs" {
            continue; // the list above
        }
        for (n, line) in text.lines().enumerate() {
            if outside.iter().any(|o| line.contains(o)) {
                found.push(format!("{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "references outside the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scanners_find_what_they_look_for() {
    assert_eq!(
        docs_mentions("see `docs/protocol/translation.md`. and docs/DESIGN.md, not mydocs/x.md"),
        ["docs/protocol/translation.md", "docs/DESIGN.md"]
    );
    assert_eq!(
        relative_links(
            "[a](docs/PROTOCOL.md) [b](https://x.org/y) [c](#anchor) [d](../README.md#x)"
        ),
        ["docs/PROTOCOL.md", "../README.md"]
    );
}
