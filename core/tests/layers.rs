//! The core's layers, kept: every module of `src/` belongs to one layer (the
//! table below, which `lib.rs`'s opening comment draws), a file imports only
//! from its own layer or those below it, and no modules import each other in
//! a circle. The check reads the source as text: `crate::` paths, `use
//! crate::{..}` groups, and names re-exported at the crate's root (mapped to
//! their module through `lib.rs`); comments and test modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module's layer; `lib` is the crate root's own items.
const LAYERS: &[(&str, u8)] = &[
    // 1. wire: bytes, frames, text, the handshakes, compression, proxies.
    ("lib", 1),
    ("deadline", 1),
    ("queue", 1),
    ("io_kind", 1),
    ("random", 1),
    ("utf8", 1),
    ("pool", 1),
    ("error", 1),
    ("frame", 1),
    ("close", 1),
    ("close_code", 1),
    ("url", 1),
    ("tls", 1),
    ("text", 1),
    ("message", 1),
    ("deflate", 1),
    ("handshake", 1),
    ("proxy", 1),
    ("happy_eyeballs", 1),
    ("json_pointer", 1),
    // 2. connection: one RFC 6455 link.
    ("config", 2),
    ("event", 2),
    ("connection", 2),
    // 3. the session's parts, and the names every layer above uses.
    ("backoff", 3),
    ("backlog", 3),
    ("heartbeat", 3),
    ("request_id", 3),
    ("requests", 3),
    ("sequence", 3),
    ("subscriptions", 3),
    ("outbound", 3),
    ("latency", 3),
    ("reasons", 3),
    ("hooks", 3),
    ("jsonrpc", 3),
    ("outputs", 3),
    ("record", 3),
    // 4. the session.
    ("session", 4),
    // 5. on top.
    ("replay", 5),
    ("presets", 5),
    ("testkit", 5),
    ("supervise", 5),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, but test files.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src") {
        let path = entry.expect("a directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if path.is_dir() {
            if name != "tests" {
                sources(&path, out);
            }
        } else if name.ends_with(".rs") && name != "tests.rs" && !name.ends_with("_tests.rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`lib` for `lib.rs`).
fn module_of(path: &Path) -> String {
    let relative = path.strip_prefix(src()).expect("under src");
    let first = relative.components().next().expect("a component").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file without comments and without its test module.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            // Test modules come last in every file here; a declared one (`mod tests;`) is a file of its own.
            break;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Names re-exported at the crate's root, and the module each comes from.
fn root_names(lib: &str) -> BTreeMap<String, String> {
    let mut names = BTreeMap::new();
    let code = code(lib);
    for statement in code.split(';') {
        let statement = statement.trim();
        let Some(rest) = statement.strip_prefix("pub use ") else { continue };
        let Some((module, items)) = rest.split_once("::") else { continue };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim();
            if !item.is_empty() {
                let name = item.rsplit(" as ").next().unwrap_or(item).rsplit("::").next().unwrap_or(item);
                names.insert(name.to_owned(), module.trim().to_owned());
            }
        }
    }
    names
}

/// The top-level modules (or root names, mapped) a file's code names through `crate::`.
fn imports(code: &str, roots: &BTreeMap<String, String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let paths: Vec<String> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end].split(',').map(|p| p.trim().to_owned()).collect()
        } else {
            vec![rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()]
        };
        for path in paths {
            let first: String = path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if first.is_empty() {
                continue;
            }
            let module = match roots.get(&first) {
                Some(module) if first.starts_with(char::is_uppercase) => module.clone(),
                _ if first.starts_with(char::is_uppercase) => "lib".to_owned(),
                _ => first,
            };
            found.insert(module);
        }
    }
    found
}

#[test]
fn every_import_runs_down_or_across_and_none_in_a_circle() {
    let layers: BTreeMap<&str, u8> = LAYERS.iter().copied().collect();
    let roots = root_names(&std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs"));
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut upward = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        let Some(&layer) = layers.get(module.as_str()) else {
            panic!("{} belongs to no layer: add `{module}` to the table (and to lib.rs's drawing)", file.display())
        };
        let text = std::fs::read_to_string(file).expect("a readable file");
        for target in imports(&code(&text), &roots) {
            if target == module {
                continue;
            }
            let Some(&target_layer) = layers.get(target.as_str()) else { continue };
            if target_layer > layer {
                upward.push(format!("{} (layer {layer}) -> {target} (layer {target_layer})", file.display()));
            }
            graph.entry(module.clone()).or_default().insert(target);
        }
    }
    assert!(upward.is_empty(), "imports that run up a layer:\n{}", upward.join("\n"));
    // Circles between modules of one layer.
    for start in graph.keys() {
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in graph.get(&at).into_iter().flatten() {
                if next == start {
                    panic!("an import circle: {} -> {start}", path.join(" -> "));
                }
                if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
}

#[test]
fn the_table_names_every_module_of_lib_rs() {
    let lib = code(&std::fs::read_to_string(src().join("lib.rs")).expect("lib.rs"));
    let layers: BTreeSet<&str> = LAYERS.iter().map(|(m, _)| *m).collect();
    for line in lib.lines() {
        let line = line.trim();
        let declared = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod "));
        if let Some(name) = declared {
            let name = name.trim_end_matches(';');
            assert!(layers.contains(name), "module `{name}` of lib.rs is in no layer");
        }
    }
}
