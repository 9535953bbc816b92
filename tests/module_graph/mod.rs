//! Which source file of a crate uses which: every `use` and every `crate::…`, `super::…`,
//! `self::…` path in code, resolved through `pub use` re-exports to the file that defines the
//! module, so that cycles between files can be found and named.
//!
//! Declaring a module (`mod x;`) is not a use of it: a parent that only declares and re-exports its
//! children, and children that use each other, is acyclic. A parent that uses a child while the
//! child uses an item of the parent is a cycle, the kind that "shared types in their own module"
//! removes. Paths inside macro invocations and doc comments are not seen.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

/// A module's path from the crate root (`["realtime", "wire"]`); the root is empty.
type ModPath = Vec<String>;

/// A file's first use of another file's module (one per pair of files).
#[derive(Clone, Debug)]
pub struct Edge {
    pub from: String,
    pub to: String,
    /// The file that holds the use (module files are named, lines are not: spans need a
    /// proc-macro2 feature that would rebuild every proc macro of the workspace).
    pub at: String,
    /// The path as written.
    pub path: String,
}

/// Files that use each other, directly or through others, and the uses that close the loop.
#[derive(Debug)]
pub struct Cycle {
    pub modules: Vec<String>,
    pub edges: Vec<Edge>,
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cycle between {}:", self.modules.join(", "))?;
        for e in &self.edges {
            writeln!(f, "  {} -> {}   ({}: {})", e.from, e.to, e.at, e.path)?;
        }
        Ok(())
    }
}

struct Module {
    /// The file that holds it (inline modules share their file's).
    file: PathBuf,
    children: BTreeSet<String>,
    /// Names a `pub use` makes visible here, with the absolute path they stand for.
    reexports: HashMap<String, ModPath>,
}

/// A path to resolve: where it was written and its segments as written.
struct Reference {
    module: ModPath,
    segments: Vec<String>,
}

/// The module tree and the file-to-file uses of one crate.
pub struct ModuleGraph {
    root_dir: PathBuf,
    modules: BTreeMap<ModPath, Module>,
    edges: Vec<Edge>,
}

impl ModuleGraph {
    /// Reads the crate whose root file (`lib.rs` or `main.rs`) is `root`, following `mod x;`.
    pub fn load(root: &Path) -> ModuleGraph {
        let mut graph = ModuleGraph {
            root_dir: root.parent().expect("a file has a directory").to_path_buf(),
            modules: BTreeMap::new(),
            edges: Vec::new(),
        };
        let mut references = Vec::new();
        graph.load_file(root, Vec::new(), true, &mut references);
        graph.absolute_reexports();
        for (file, r) in references {
            let Some(absolute) = graph.absolute(&r.module, &r.segments) else {
                continue; // another crate, or a local item
            };
            let target = graph.resolve(&absolute, 0);
            let to = graph.modules[&target].file.clone();
            let from_name = graph.name_of(&file);
            let to_name = graph.name_of(&to);
            let known = graph
                .edges
                .iter()
                .any(|e| e.from == from_name && e.to == to_name);
            if to != file && !known {
                graph.edges.push(Edge {
                    from: from_name,
                    to: to_name,
                    at: graph.relative(&file),
                    path: r.segments.join("::"),
                });
            }
        }
        graph
    }

    /// Which file uses which, in the order first seen.
    pub fn edges(&self) -> &[Edge] {
        &self.edges
    }

    /// The groups of files that use each other in a loop (strongly connected components with more
    /// than one file), each with the uses inside it.
    pub fn cycles(&self) -> Vec<Cycle> {
        let mut adjacency: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for e in &self.edges {
            adjacency.entry(&e.from).or_default().insert(&e.to);
            adjacency.entry(&e.to).or_default();
        }
        strongly_connected(&adjacency)
            .into_iter()
            .filter(|group| group.len() > 1)
            .map(|group| {
                let members: BTreeSet<&str> = group.iter().copied().collect();
                let edges = self
                    .edges
                    .iter()
                    .filter(|e| {
                        members.contains(e.from.as_str()) && members.contains(e.to.as_str())
                    })
                    .cloned()
                    .collect();
                Cycle {
                    modules: members.iter().map(|m| m.to_string()).collect(),
                    edges,
                }
            })
            .collect()
    }

    fn load_file(
        &mut self,
        file: &Path,
        module: ModPath,
        owns_directory: bool,
        references: &mut Vec<(PathBuf, Reference)>,
    ) {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let parsed = syn::parse_file(&text)
            .unwrap_or_else(|e| panic!("cannot parse {}: {e}", file.display()));
        let mut collector = Collector {
            stack: vec![module.clone()],
            modules: Vec::new(),
            reexports: Vec::new(),
            out_of_line: Vec::new(),
            references: Vec::new(),
        };
        collector.modules.push(module.clone());
        collector.visit_file(&parsed);
        for m in &collector.modules {
            self.modules.insert(
                m.clone(),
                Module {
                    file: file.to_path_buf(),
                    children: BTreeSet::new(),
                    reexports: HashMap::new(),
                },
            );
        }
        for m in collector.modules.iter().chain(&collector.out_of_line) {
            if let Some((name, parent)) = m.split_last()
                && let Some(p) = self.modules.get_mut(parent)
            {
                p.children.insert(name.clone());
            }
        }
        for (m, name, path) in collector.reexports {
            self.modules
                .get_mut(&m)
                .expect("collected above")
                .reexports
                .insert(name, path);
        }
        references.extend(
            collector
                .references
                .into_iter()
                .map(|r| (file.to_path_buf(), r)),
        );
        // `mod x;` in lib.rs / main.rs / mod.rs: x.rs or x/mod.rs beside it; in a.rs: a/x.rs.
        let directory = if owns_directory {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        for child in collector.out_of_line {
            let name = child.last().unwrap();
            let flat = directory.join(format!("{name}.rs"));
            let nested = directory.join(name).join("mod.rs");
            if flat.exists() {
                self.load_file(&flat, child, false, references);
            } else if nested.exists() {
                self.load_file(&nested, child, true, references);
            } else {
                panic!("module {} of {}: no file", name, file.display());
            }
        }
    }

    /// Makes each `pub use` target a path from the crate root; drops those into other crates.
    fn absolute_reexports(&mut self) {
        let absolute: Vec<(ModPath, HashMap<String, ModPath>)> = self
            .modules
            .iter()
            .map(|(path, m)| {
                let reexports = m
                    .reexports
                    .iter()
                    .filter_map(|(name, target)| Some((name.clone(), self.absolute(path, target)?)))
                    .collect();
                (path.clone(), reexports)
            })
            .collect();
        for (path, reexports) in absolute {
            self.modules.get_mut(&path).expect("listed above").reexports = reexports;
        }
    }

    /// The path from the crate root that `segments`, written in `module`, names; `None` for other
    /// crates and local items.
    fn absolute(&self, module: &[String], segments: &[String]) -> Option<ModPath> {
        let first = segments.first()?;
        match first.as_str() {
            "crate" => Some(segments[1..].to_vec()),
            "self" => Some([module, &segments[1..]].concat()),
            "super" => {
                let mut base = module.to_vec();
                let mut rest = segments;
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                Some([&base[..], rest].concat())
            }
            name if self.modules.get(module)?.children.contains(name) => {
                Some([module, segments].concat())
            }
            _ => None,
        }
    }

    /// The deepest module `path` reaches, following re-exports.
    fn resolve(&self, path: &[String], depth: usize) -> ModPath {
        let mut current: ModPath = Vec::new();
        for (i, segment) in path.iter().enumerate() {
            let module = &self.modules[&current];
            if module.children.contains(segment) {
                current.push(segment.clone());
            } else if let Some(target) = module.reexports.get(segment).filter(|_| depth < 16) {
                let rest = &path[i + 1..];
                return self.resolve(&[&target[..], rest].concat(), depth + 1);
            } else {
                break;
            }
        }
        current
    }

    fn name_of(&self, file: &Path) -> String {
        self.modules
            .iter()
            .find(|(_, m)| m.file == file)
            .map(|(path, _)| {
                if path.is_empty() {
                    "crate".to_string()
                } else {
                    path.join("::")
                }
            })
            .unwrap_or_else(|| self.relative(file))
    }

    fn relative(&self, file: &Path) -> String {
        file.strip_prefix(&self.root_dir)
            .unwrap_or(file)
            .display()
            .to_string()
    }
}

/// Walks one file, keeping track of inline modules.
struct Collector {
    stack: Vec<ModPath>,
    /// The file's module and its inline modules.
    modules: Vec<ModPath>,
    /// (module, exported name, path as written: made absolute below).
    reexports: Vec<(ModPath, String, ModPath)>,
    /// `mod x;` declarations, to load from their own files.
    out_of_line: Vec<ModPath>,
    references: Vec<Reference>,
}

impl Collector {
    fn current(&self) -> &ModPath {
        self.stack.last().expect("never empty")
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree, public: bool) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree, public);
                prefix.pop();
            }
            syn::UseTree::Name(n) => {
                let name = n.ident.to_string();
                self.use_leaf(prefix, &name, &name, public);
            }
            syn::UseTree::Rename(r) => {
                self.use_leaf(prefix, &r.ident.to_string(), &r.rename.to_string(), public);
            }
            syn::UseTree::Glob(_) => self.reference(prefix.clone()),
            syn::UseTree::Group(g) => {
                for item in &g.items {
                    self.use_tree(prefix, item, public);
                }
            }
        }
    }

    fn use_leaf(&mut self, prefix: &[String], name: &str, alias: &str, public: bool) {
        let mut segments = prefix.to_vec();
        if name != "self" {
            segments.push(name.to_string());
        }
        if public {
            let module = self.current().clone();
            let alias = if name == "self" {
                prefix.last().cloned()
            } else {
                Some(alias.into())
            };
            if let Some(alias) = alias {
                // Made absolute later, once every module is known: stored relative here.
                self.reexports.push((module, alias, segments.clone()));
            }
        }
        self.reference(segments);
    }

    fn reference(&mut self, segments: Vec<String>) {
        self.references.push(Reference {
            module: self.current().clone(),
            segments,
        });
    }
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        let path = [&self.current()[..], &[item.ident.to_string()]].concat();
        match &item.content {
            None => self.out_of_line.push(path),
            Some((_, items)) => {
                self.modules.push(path.clone());
                self.stack.push(path);
                for i in items {
                    self.visit_item(i);
                }
                self.stack.pop();
            }
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let public = !matches!(item.vis, syn::Visibility::Inherited);
        self.use_tree(&mut Vec::new(), &item.tree, public);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 && path.leading_colon.is_none() {
            self.reference(segments);
        }
        syn::visit::visit_path(self, path);
    }
}

/// Tarjan's algorithm: the strongly connected components of a directed graph.
fn strongly_connected<'a>(adjacency: &BTreeMap<&'a str, BTreeSet<&'a str>>) -> Vec<Vec<&'a str>> {
    struct State<'a> {
        index: HashMap<&'a str, usize>,
        low: HashMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(v: &'a str, adjacency: &BTreeMap<&'a str, BTreeSet<&'a str>>, s: &mut State<'a>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for &w in &adjacency[v] {
            if !s.index.contains_key(w) {
                visit(w, adjacency, s);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().expect("v is on the stack");
                s.on_stack.remove(w);
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.components.push(component);
        }
    }
    let mut state = State {
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for &v in adjacency.keys() {
        if !state.index.contains_key(v) {
            visit(v, adjacency, &mut state);
        }
    }
    state.components
}
