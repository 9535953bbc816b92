//! `scripts/install.sh` puts the plugin where GStreamer finds it with no `GST_PLUGIN_PATH`, and
//! `--uninstall` takes it away: checked with `gst-inspect-1.0` in a temporary home (GStreamer's
//! per-user plugin directory) and a temporary prefix (the system layout), each with a registry of
//! its own, first proving the plugin is found nowhere else.
//!
//! The plugin installed is the one this test run built (the cdylib beside the test binary):
//! building it again here would wait for the build directory lock that `cargo test` holds.

mod common;

use common::{PLUGIN_LIBRARY, built_plugin};
use std::path::Path;
use std::process::{Command, Output};

/// A command that sees only `home` as the user's home, with every variable that would point
/// GStreamer at another plugin or registry removed.
fn isolated(program: &str, home: &Path) -> Command {
    let mut command = Command::new(program);
    for variable in [
        "GST_PLUGIN_PATH",
        "GST_PLUGIN_PATH_1_0",
        "GST_PLUGIN_SYSTEM_PATH",
        "GST_PLUGIN_SYSTEM_PATH_1_0",
        "GST_REGISTRY",
        "GST_REGISTRY_1_0",
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
    ] {
        command.env_remove(variable);
    }
    command.env("HOME", home);
    command
}

fn install_script(home: &Path, args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh");
    let output = isolated("bash", home)
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "install.sh {args:?} failed:\n{text}"
    );
    text
}

fn inspect(command: &mut Command) -> Output {
    command.arg("realtimetranslate").output().unwrap()
}

/// What `gst-inspect-1.0 realtimetranslate` must document once the plugin is found at `file`.
fn assert_documented(output: &Output, file: &Path) {
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "gst-inspect-1.0 failed: {}{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    // "Factory Details:" (the element), then "Plugin Details:" (the plugin), each "Key   value".
    let section = |title: &str| {
        let start = text
            .find(title)
            .unwrap_or_else(|| panic!("no {title:?} in:\n{text}"));
        text[start + title.len()..]
            .split("\n\n")
            .next()
            .unwrap()
            .to_string()
    };
    let field = |section: &str, name: &str| {
        section
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(str::trim))
            .unwrap_or_else(|| panic!("no {name:?} in:\n{section}"))
            .to_string()
    };
    let element = section("Factory Details:");
    let plugin = section("Plugin Details:");
    assert_eq!(field(&plugin, "Filename"), file.display().to_string());
    assert_eq!(field(&element, "Long-name"), "Realtime speech translation");
    assert!(field(&element, "Description").starts_with("Translates live speech"));
    assert_eq!(
        field(&plugin, "Description"),
        "Live speech translation for GStreamer over realtime translation engines"
    );
    assert_eq!(field(&plugin, "License"), "MPL");
    assert_eq!(
        field(&plugin, "Binary package"),
        "gst-plugin-realtimetranslate"
    );
    let origin = field(&plugin, "Origin URL");
    assert!(origin.contains("realtimetranslate source tree"), "{origin}");
    assert!(!origin.contains("example"), "placeholder origin: {origin}");
    for pad in [
        "SINK template: 'sink'",
        "SRC template: 'src'",
        "SRC template: 'subtitle_src'",
        "SRC template: 'source_subtitle_src'",
    ] {
        assert!(text.contains(pad), "no {pad:?} in:\n{text}");
    }
    for property in ["target-language", "backend", "api-key", "latency", "stats"] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{property} "))),
            "property {property} undocumented:\n{text}"
        );
    }
}

#[test]
fn a_user_install_is_found_by_default_and_uninstalls() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let installed = home
        .join(".local/share/gstreamer-1.0/plugins")
        .join(PLUGIN_LIBRARY);

    let before = inspect(&mut isolated("gst-inspect-1.0", &home));
    assert!(
        !before.status.success(),
        "realtimetranslate is already found without this install: the test would prove nothing"
    );

    let plugin = built_plugin();
    install_script(&home, &["--library", plugin.to_str().unwrap()]);
    assert!(installed.is_file());
    assert_documented(
        &inspect(&mut isolated("gst-inspect-1.0", &home)),
        &installed,
    );

    let said = install_script(&home, &["--uninstall"]);
    assert!(said.contains("removed"), "{said}");
    assert!(!installed.exists());
    let after = inspect(&mut isolated("gst-inspect-1.0", &home));
    assert!(!after.status.success(), "still found after --uninstall");
}

/// `--prefix P` lays the plugin out as GStreamer's own plugins are under `/usr`: with P = /usr it
/// would land exactly in the directory the system's GStreamer scans.
#[test]
fn a_prefix_install_uses_the_system_layout() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let prefix = dir.path().join("prefix");

    let system_dir = Command::new("pkg-config")
        .args(["--variable=pluginsdir", "gstreamer-1.0"])
        .output()
        .unwrap();
    let system_dir = String::from_utf8(system_dir.stdout).unwrap();
    let under_usr = Path::new(system_dir.trim())
        .strip_prefix("/usr")
        .expect("GStreamer's plugins are under /usr")
        .to_path_buf();
    let plugin_dir = prefix.join(under_usr);

    let plugin = built_plugin();
    install_script(
        &home,
        &[
            "--prefix",
            prefix.to_str().unwrap(),
            "--library",
            plugin.to_str().unwrap(),
        ],
    );
    let installed = plugin_dir.join(PLUGIN_LIBRARY);
    assert!(installed.is_file(), "not at {}", installed.display());
    let mut command = isolated("gst-inspect-1.0", &home);
    command.env("GST_PLUGIN_SYSTEM_PATH", &plugin_dir);
    assert_documented(&inspect(&mut command), &installed);

    install_script(
        &home,
        &["--uninstall", "--prefix", prefix.to_str().unwrap()],
    );
    assert!(!installed.exists());
}
