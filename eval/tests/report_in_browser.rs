//! `index.html` in a real browser: Debian's headless Chromium loads the page from disk (no
//! network, nothing external), and the rendered DOM must hold the summary, the three plots with
//! marks in them, one row per segment worst first, and two working-looking players per row; a
//! screenshot is taken and checked to be a real image.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn chromium(profile: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium is installed (scripts/setup.sh)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_page_renders_plots_rows_and_players() {
    let dir = tempfile::tempdir().unwrap();
    let line = flite_set(&dir.path().join("flite"), 3);
    let fields: Vec<&str> = line.split('\t').collect();
    let out = dir.path().join("out");
    eval(&[
        "--input",
        fields[0],
        "--reference",
        fields[1],
        "--source-reference",
        fields[2],
        "--fast",
        "--out",
        out.to_str().unwrap(),
    ]);
    let page = out.join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for external in ["src=\"http", "href=", "<link", "<script", "@import", "url("] {
        assert!(
            !html.contains(external),
            "the page must load nothing: found {external}"
        );
    }
    let url = format!("file://{}", page.display());
    let profile = dir.path().join("profile");

    let dom = String::from_utf8(chromium(&profile, &["--dump-dom", &url])).unwrap();
    assert!(dom.contains("<table id=\"summary\">"), "{dom:.500}");
    for id in [
        "delay-histogram",
        "delay-over-programme",
        "score-per-segment",
    ] {
        let start = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no plot {id}"));
        let plot = &dom[start..start + dom[start..].find("</svg>").unwrap()];
        assert!(
            plot.contains("<rect") || plot.contains("<circle"),
            "plot {id} has no marks"
        );
    }
    // 3 segments: 3 rows, each with a source and a translated clip embedded as WAV.
    let body = &dom[dom.find("<table id=\"segments\">").unwrap()..];
    let rows = count(body, "<tr class=\"segment");
    assert_eq!(rows, 3, "{body:.2000}");
    assert_eq!(count(body, "<audio"), 2 * rows);
    assert_eq!(
        count(body, "src=\"data:audio/wav;base64,UklGR"),
        2 * rows,
        "players hold WAV clips"
    );
    // Worst first: the chrF column never goes down.
    let chrf: Vec<f64> = body
        .split("<tr class=\"segment")
        .skip(1)
        .map(|row| {
            let cell = row.split("<td class=\"num\">").nth(1).unwrap();
            cell[..cell.find('<').unwrap()].parse().unwrap()
        })
        .collect();
    assert!(chrf.windows(2).all(|w| w[0] <= w[1]), "{chrf:?}");

    let shot = dir.path().join("page.png");
    chromium(
        &profile,
        &[
            "--window-size=1280,1600",
            &format!("--screenshot={}", shot.display()),
            &url,
        ],
    );
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1280, 1600));
    assert!(
        png.len() > 20_000,
        "a page with text and plots, not a blank image: {} bytes",
        png.len()
    );
    println!(
        "rendered {rows} rows, chrF {chrf:?}; screenshot {} bytes",
        png.len()
    );
}
