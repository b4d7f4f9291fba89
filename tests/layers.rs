//! The layering of `src/`, checked on the code: every module sits in one
//! layer of [`LAYERS`], no module imports one of a higher layer, and no
//! modules import each other, directly or round a cycle. It reads the
//! `crate::`, `super::` and child-module paths of each file (its unit tests
//! left out), so it needs nothing but the sources.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The layers, bottom up (ARCHITECTURE.md draws them). A module belongs to
/// the longest prefix listed; a new file must fit one of them or be added.
const LAYERS: &[(&str, &[&str])] = &[
    ("wire: pure parsers and writers of bytes", &["wire"]),
    ("verdict: the verdict model and the checks it is about", &["verdict", "check"]),
    ("machines: sans-IO state machines", &["probe", "resolver", "inbound", "tls"]),
    ("runtime: the mio users", &["runtime"]),
    ("front-ends: the modes and what they write", &["front", "serve"]),
    ("root: the module list", &[""]),
];

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` is the root.
fn module_of(path: &Path, src: &Path) -> String {
    let rel = path.strip_prefix(src).expect("a file under src/").with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its unit tests, comments and string
/// literals (which may hold anything that looks like a path).
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        _ => {}
                    }
                }
                out.push_str("\"\"");
            }
            // A char literal such as '"' or '{'; a lifetime has no closing quote.
            '\'' => {
                let ahead: Vec<char> = chars.clone().take(12).collect();
                let close = if ahead.first() == Some(&'\\') {
                    ahead.iter().skip(2).position(|&c| c == '\'').map(|i| i + 2)
                } else if ahead.get(1) == Some(&'\'') {
                    Some(1)
                } else {
                    None
                };
                match close {
                    Some(n) => {
                        for _ in 0..=n {
                            chars.next();
                        }
                        out.push_str("' '");
                    }
                    None => out.push('\''),
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// `a::{b, c::{d, e}}` as the paths `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => {
            for part in tree.split(',') {
                let part = part.split(" as ").next().unwrap_or("").trim();
                if !part.is_empty() {
                    out.push(format!("{prefix}{part}"));
                }
            }
        }
        Some(open) => {
            let head = &tree[..open];
            let inner = &tree[open + 1..tree.rfind('}').expect("a closed use tree")];
            // Split the inner list at top-level commas.
            let (mut depth, mut start) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand(&inner[start..i], &format!("{prefix}{head}"), out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            expand(&inner[start..], &format!("{prefix}{head}"), out);
        }
    }
}

/// The modules `module` refers to, resolved to the known modules.
fn references(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let parent = |m: &str| m.rsplit_once("::").map_or(String::new(), |(p, _)| p.to_string());
    let join = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { format!("{a}::{b}") };
    let mut paths = Vec::new();
    // `use` trees, braces and all.
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(i) = code[from..].find("use ").map(|i| i + from) {
        let preceded = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        let end = code[i..].find(';').map_or(code.len(), |n| i + n);
        if !preceded {
            expand(&code[i + 4..end], "", &mut paths);
        }
        from = i + 4;
    }
    // Paths written in the code.
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start).map(|i| i + from) {
            let preceded = i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
            let end = code[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |n| i + n);
            // `crate::a::{..}` is a use tree, read above.
            if !preceded && !code[end..].starts_with('{') {
                paths.push(code[i..end].trim_end_matches(':').to_string());
            }
            from = end.max(i + 1);
        }
    }
    let mut out = BTreeSet::new();
    for path in paths {
        let mut segments: Vec<&str> = path.split("::").map(str::trim).filter(|s| !s.is_empty()).collect();
        let mut base = match segments.first().copied() {
            Some("crate") => {
                segments.remove(0);
                String::new()
            }
            Some("super") => {
                let mut base = module.to_string();
                while segments.first() == Some(&"super") {
                    segments.remove(0);
                    base = parent(&base);
                }
                base
            }
            Some("self") => {
                segments.remove(0);
                module.to_string()
            }
            // A child module named without `self::` (`pub use http::..`).
            Some(first) if known.contains(&join(module, first)) => module.to_string(),
            _ => continue,
        };
        // The longest known module along the path.
        let mut target = base.clone();
        for segment in segments {
            base = join(&base, segment);
            if known.contains(&base) {
                target = base.clone();
            } else {
                break;
            }
        }
        if target != module {
            out.insert(target);
        }
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (layer, (_, prefixes)) in LAYERS.iter().enumerate() {
        for prefix in *prefixes {
            let matches = module == *prefix
                || (prefix.is_empty() && module.is_empty())
                || (!prefix.is_empty() && module.starts_with(&format!("{prefix}::")));
            if matches && best.is_none_or(|(len, _)| prefix.len() >= len) {
                best = Some((prefix.len(), layer));
            }
        }
    }
    best.map(|(_, layer)| layer)
}

/// Every module's references, read from `src/` (the binary's `main.rs` is
/// a crate of its own, above them all).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.retain(|f| f.file_name().is_some_and(|n| n != "main.rs") || f.parent() != Some(src));
    let known: BTreeSet<String> = files.iter().map(|f| module_of(f, src)).collect();
    files
        .iter()
        .map(|f| {
            let module = module_of(f, src);
            let code = code_of(&fs::read_to_string(f).expect("a readable source file"));
            let refs = references(&module, &code, &known);
            (module, refs)
        })
        .collect()
}

/// A cycle in the graph, as the modules round it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_string(), 1);
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                0 => {
                    if let Some(cycle) = visit(next, graph, state, stack) {
                        return Some(cycle);
                    }
                }
                1 => {
                    let at = stack.iter().position(|m| m == next).expect("on the stack");
                    let mut cycle = stack[at..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(cycle) = visit(node, graph, &mut state, &mut Vec::new()) {
                return Some(cycle);
            }
        }
    }
    None
}

/// What is wrong with the layering of the sources under `src`.
fn problems(src: &Path) -> Vec<String> {
    let graph = graph(src);
    let mut problems = Vec::new();
    let shown = |m: &str| if m.is_empty() { "crate".to_string() } else { m.to_string() };
    for (module, refs) in &graph {
        let Some(layer) = layer_of(module) else {
            problems.push(format!("{} is in no layer: add it to LAYERS in tests/layers.rs", shown(module)));
            continue;
        };
        for target in refs {
            match layer_of(target) {
                Some(to) if to > layer => problems.push(format!(
                    "{} ({}) imports {} ({}), a higher layer",
                    shown(module),
                    LAYERS[layer].0,
                    shown(target),
                    LAYERS[to].0
                )),
                _ => {}
            }
        }
    }
    if let Some(cycle) = find_cycle(&graph) {
        let cycle: Vec<String> = cycle.iter().map(|m| shown(m)).collect();
        problems.push(format!("import cycle: {}", cycle.join(" -> ")));
    }
    problems
}

#[test]
fn layers_import_only_downwards_and_never_round_a_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    if std::env::var_os("LAYERS_SHOW").is_some() {
        for (module, refs) in graph(&src) {
            println!("{module} -> {refs:?}");
        }
    }
    let problems = problems(&src);
    assert!(problems.is_empty(), "layering of src/ (see ARCHITECTURE.md):\n  {}", problems.join("\n  "));
}

#[test]
fn the_reader_sees_every_kind_of_reference() {
    let known: BTreeSet<String> = ["a", "a::b", "a::c", "d", "d::e"].iter().map(|s| s.to_string()).collect();
    let code = code_of(
        "use crate::a::{b::X, c};\npub use e::Y;\nfn f() { crate::d::g(); let s = \"crate::a::b\"; }\n// crate::a::c\n#[cfg(test)]\nmod tests { use crate::a; }",
    );
    let refs: Vec<String> = references("d", &code, &known).into_iter().collect();
    assert_eq!(refs, ["a::b", "a::c", "d::e"], "{code}");
    let refs: Vec<String> =
        references("d::f", &code_of("use super::e;\nuse super::super::a;"), &known).into_iter().collect();
    assert_eq!(refs, ["a", "d::e"]);
}
