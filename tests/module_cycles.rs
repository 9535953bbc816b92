//! Modules depend on each other in one direction only: a cycle between files (issue #15 item 3)
//! makes a layer impossible to test or replace alone. Each crate below is read from its sources
//! and every loop of `use`s between its files is reported with the uses that close it.

mod module_graph;

use std::path::{Path, PathBuf};

use module_graph::ModuleGraph;

fn workspace_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn assert_acyclic(crate_root: &str) {
    let graph = ModuleGraph::load(&workspace_file(crate_root));
    assert!(
        graph.edges().len() > 10,
        "{crate_root}: too few uses found ({}), the reader is broken",
        graph.edges().len()
    );
    let cycles = graph.cycles();
    let report: String = cycles.iter().map(ToString::to_string).collect();
    assert!(cycles.is_empty(), "{crate_root}: import cycles\n{report}");
}

#[test]
fn the_servers_modules_depend_in_one_direction() {
    assert_acyclic("server/src/lib.rs");
}

/// The element: shared types in their own modules (`session_types`, `connection::types`,
/// `realtimetranslate::enums`), so layers depend in one direction.
#[test]
fn the_elements_modules_depend_in_one_direction() {
    assert_acyclic("src/lib.rs");
}

/// Writes a small crate: `(path, contents)` pairs under a temporary directory.
fn fixture(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    let root = dir.path().join("lib.rs");
    (dir, root)
}

#[test]
fn a_parent_using_a_child_that_uses_the_parents_type_is_a_cycle() {
    let (_dir, root) = fixture(&[
        ("lib.rs", "mod net;"),
        (
            "net/mod.rs",
            "mod wire;\npub struct Shared;\nfn f() { wire::run(); }",
        ),
        ("net/wire.rs", "use super::Shared;\npub fn run() {}"),
    ]);
    let cycles = ModuleGraph::load(&root).cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0].modules, ["net", "net::wire"]);
    let at: Vec<&str> = cycles[0].edges.iter().map(|e| e.at.as_str()).collect();
    assert_eq!(at, ["net/mod.rs", "net/wire.rs"]);
}

#[test]
fn a_cycle_through_a_reexport_and_a_path_in_code_is_found() {
    let (_dir, root) = fixture(&[
        (
            "lib.rs",
            "mod server;\nmod session;\npub use server::Server;",
        ),
        (
            "server.rs",
            "pub struct Server;\nfn f() { crate::session::start(); }",
        ),
        ("session.rs", "use crate::{Server as S};\npub fn start() {}"),
    ]);
    let cycles = ModuleGraph::load(&root).cycles();
    assert_eq!(cycles.len(), 1, "{cycles:?}");
    assert_eq!(cycles[0].modules, ["server", "session"]);
}

#[test]
fn shared_types_in_their_own_module_leave_no_cycle() {
    let (_dir, root) = fixture(&[
        ("lib.rs", "mod net;\npub use net::Shared;"),
        (
            "net/mod.rs",
            "mod shared;\nmod wire;\npub use shared::Shared;\nfn f() { wire::run(); }",
        ),
        ("net/shared.rs", "pub struct Shared;"),
        (
            "net/wire.rs",
            "use super::shared::Shared;\nuse crate::Shared as S2;\npub fn run() {}\n\
             #[cfg(test)]\nmod tests { use super::*; fn g() { self::helper(); } fn helper() {} }",
        ),
    ]);
    let graph = ModuleGraph::load(&root);
    let cycles = graph.cycles();
    assert!(cycles.is_empty(), "{cycles:?}");
    let edges: Vec<(&str, &str)> = graph
        .edges()
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str()))
        .collect();
    assert_eq!(
        edges,
        [
            ("crate", "net::shared"),
            ("net", "net::shared"),
            ("net", "net::wire"),
            ("net::wire", "net::shared"),
        ]
    );
}
