//! The layers of `shared/src` point one way (see its `lib.rs`): the domain
//! imports neither HTTP, DynamoDB, the store, the service nor an API; the
//! store imports no service or API; the service no API; the change events
//! sit beside the APIs (they may read the store and render with the SCIM
//! renderers, but use neither the service nor auth), and nothing below
//! imports them; and no file imports a file that imports it back, also
//! through a name a parent module re-exports or a list of siblings
//! (`use super::{a, b}`). This reads the crate's `use` paths as text: it
//! checks how the code is arranged, nothing it does.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path (`["scim", "views"]`) -> the paths it names (`crate::…`,
/// `super::…`, `self::…`), each as a module path.
type Imports = BTreeMap<Vec<String>, BTreeSet<Vec<String>>>;

/// What each layer may not import: crate modules, and outside crates.
const RULES: &[(&str, &[&str])] = &[
    (
        "domain",
        &[
            "crate::store",
            "crate::service",
            "crate::auth",
            "crate::scim",
            "crate::admin_api",
            "crate::http",
            "crate::config",
            "crate::events",
            "aws_sdk_dynamodb",
            "lambda_http",
        ],
    ),
    (
        "store",
        &[
            "crate::service",
            "crate::auth",
            "crate::scim",
            "crate::admin_api",
            "crate::http",
            "crate::events",
        ],
    ),
    (
        "service",
        &[
            "crate::scim",
            "crate::admin_api",
            "crate::http",
            "crate::events",
        ],
    ),
    ("scim", &["crate::events"]),
    ("admin_api", &["crate::events"]),
    (
        "events",
        &["crate::service", "crate::auth", "crate::admin_api"],
    ),
];

fn main_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/src")
}

/// Every `.rs` file under `dir` as (module path, text without its tests and comments).
fn read_crate(dir: &Path) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read shared/src") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(dir).expect("under the crate");
                let mut module: Vec<String> = rel
                    .with_extension("")
                    .iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect();
                if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                    module.pop();
                }
                let text = std::fs::read_to_string(&path).expect("read a source file");
                out.push((module, code_only(&text)));
            }
        }
    }
    out.sort();
    out
}

/// The text without its `#[cfg(test)]` module (tests may reach anywhere)
/// and without comment lines (a doc link is no import).
fn code_only(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What each module re-exports from a file below it (`pub use users::{Users,
/// Page};` in `store/mod.rs`): (module, name) -> the file that defines it.
/// A path through a re-export names that file, so a cycle does not hide
/// behind a parent module: `store/table.rs` naming `super::StoreError` names
/// `store/errors.rs`. A re-export itself is no import: the parent is a
/// facade over its children.
fn reexports(files: &[(Vec<String>, String)]) -> BTreeMap<(Vec<String>, String), Vec<String>> {
    let is_file = |m: &Vec<String>| files.iter().any(|(f, _)| f == m);
    let mut out = BTreeMap::new();
    for (module, text) in files {
        for (i, _) in text.match_indices("pub use ") {
            let rest = text[i + "pub use ".len()..].trim_start_matches("self::");
            let Some(end) = rest.find(';') else { continue };
            let Some((child, names)) = rest[..end].split_once("::") else {
                continue;
            };
            let file: Vec<String> = module.iter().cloned().chain([child.to_string()]).collect();
            if !is_file(&file) {
                continue;
            }
            for name in top_level_names(names) {
                let name = name
                    .rsplit(" as ")
                    .next()
                    .unwrap_or(&name)
                    .trim()
                    .to_string();
                out.insert((module.clone(), name), file.clone());
            }
        }
    }
    out
}

/// The first segment of each name a `use` lists: `{a, b::{c, d}, e as f}`
/// is `a`, `b`, `e as f`; a single `a::b` is `a`.
fn top_level_names(list: &str) -> Vec<String> {
    let list = list.trim();
    let Some(inner) = list.strip_prefix('{').and_then(|l| l.strip_suffix('}')) else {
        return vec![list.split("::").next().unwrap_or_default().to_string()];
    };
    let (mut names, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => names.push(std::mem::take(&mut current)),
            _ if depth == 0 => current.push(c),
            _ => {}
        }
    }
    names.push(current);
    names
        .iter()
        .map(|n| n.split("::").next().unwrap_or_default().trim().to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// The module paths a file names, resolved against its own module.
fn imports(files: &[(Vec<String>, String)]) -> Imports {
    let through = reexports(files);
    let mut out = Imports::new();
    for (module, text) in files {
        let mut named = BTreeSet::new();
        for root in ["crate", "super", "self"] {
            for (i, _) in text.match_indices(&format!("{root}::")) {
                let before = text[..i].chars().last();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue; // inside another path (`a::super::`) or word
                }
                let chain: String = text[i + root.len() + 2..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut parts: Vec<String> = chain
                    .split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                // A file's module path is where `self` points (`scim/mod.rs`
                // is `scim`, `scim/views.rs` is `scim::views`).
                let mut base = match root {
                    "crate" => Vec::new(),
                    _ => module.clone(),
                };
                if root == "super" {
                    base.pop();
                }
                while parts.first().map(String::as_str) == Some("super") {
                    parts.remove(0);
                    base.pop();
                }
                // `use super::{a, b::c}`: each name listed is a path of its own.
                let listed = if chain.ends_with("::") || chain.is_empty() {
                    let after = &text[i + root.len() + 2 + chain.len()..];
                    match after.starts_with('{').then(|| after.find('}')).flatten() {
                        Some(_) => {
                            let mut depth = 0;
                            let end = after
                                .char_indices()
                                .find(|(_, c)| {
                                    match c {
                                        '{' => depth += 1,
                                        '}' => depth -= 1,
                                        _ => {}
                                    }
                                    depth == 0
                                })
                                .map_or(after.len(), |(j, _)| j + 1);
                            top_level_names(&after[..end])
                        }
                        None => Vec::new(),
                    }
                } else {
                    Vec::new()
                };
                let paths: Vec<Vec<String>> = if listed.is_empty() {
                    vec![parts]
                } else {
                    listed
                        .into_iter()
                        .map(|name| parts.iter().cloned().chain([name]).collect())
                        .collect()
                };
                for parts in paths {
                    let full: Vec<String> = base.iter().cloned().chain(parts).collect();
                    // The longest prefix that is a file of its own, or the
                    // file a name it re-exports comes from.
                    let Some(n) = (1..=full.len())
                        .rev()
                        .find(|n| files.iter().any(|(m, _)| m[..] == full[..*n]))
                    else {
                        continue;
                    };
                    let mut target = full[..n].to_vec();
                    if let Some(child) = full
                        .get(n)
                        .and_then(|name| through.get(&(target.clone(), name.clone())))
                    {
                        target = child.clone();
                    }
                    if &target != module {
                        named.insert(target);
                    }
                }
            }
        }
        out.insert(module.clone(), named);
    }
    out
}

/// Files that reach each other through imports, as groups of two or more.
fn cycles(imports: &Imports) -> Vec<Vec<String>> {
    let reach = |from: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&Vec<String>> = imports[from].iter().collect();
        while let Some(m) = stack.pop() {
            if seen.insert(m.clone()) {
                stack.extend(imports.get(m).into_iter().flatten());
            }
        }
        seen
    };
    let reached: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> =
        imports.keys().map(|m| (m, reach(m))).collect();
    let mut groups: BTreeSet<Vec<String>> = BTreeSet::new();
    for (m, r) in &reached {
        let group: Vec<String> = reached
            .iter()
            .filter(|(other, other_r)| r.contains(**other) && other_r.contains(*m))
            .map(|(other, _)| other.join("/"))
            .collect();
        if group.len() > 1 {
            groups.insert(group);
        }
    }
    groups.into_iter().collect()
}

/// Lines of `layer`'s files that name what the layer may not import.
fn violations(files: &[(Vec<String>, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (layer, forbidden) in RULES {
        for (module, text) in files
            .iter()
            .filter(|(m, _)| m.first().map(String::as_str) == Some(layer))
        {
            for line in text.lines() {
                for f in forbidden.iter() {
                    let hit = line.match_indices(f).any(|(i, _)| {
                        let before = line[..i].chars().last();
                        let after = line[i + f.len()..].chars().next();
                        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                    });
                    if hit {
                        out.push(format!("{}: {f}: {}", module.join("/"), line.trim()));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_layers_of_shared_point_one_way() {
    let files = read_crate(&main_source());
    assert!(files.len() > 30, "read {} files", files.len());
    let wrong = violations(&files);
    assert!(
        wrong.is_empty(),
        "layer rules broken:\n{}",
        wrong.join("\n")
    );
    let found = cycles(&imports(&files));
    assert!(found.is_empty(), "import cycles: {found:?}");
}

#[test]
fn a_broken_copy_is_caught() {
    let file = |m: &str, text: &str| {
        (
            m.split('/').map(str::to_string).collect::<Vec<_>>(),
            code_only(text),
        )
    };
    let files = vec![
        file("domain/user", "use crate::store::table;\nfn f() {}"),
        file("store/table", "use crate::domain::user::User;"),
        file("scim/a", "use super::b::X;"),
        file("scim/b", "fn g() { super::a::y(); }"),
        file(
            "service/users",
            "// use crate::scim::views; (a comment)\nuse crate::store::table;",
        ),
        file("scim/discovery", "use crate::events::set;"),
        // a cycle behind a parent's re-export: `super::StoreError` is errs.rs
        file(
            "store",
            "pub use errs::{classify, StoreError};\npub use layout::Item;",
        ),
        file("store/errs", "use super::layout::UniqueField;"),
        file("store/layout", "fn f() -> super::StoreError { todo!() }"),
        // a cycle through a list of siblings
        file("scim/c", "use super::{d, X};"),
        file("scim/d", "use super::c::Y;"),
        file(
            "events/set",
            "use crate::scim::BASE_PATH;\nuse crate::service::users;",
        ),
    ];
    let wrong = violations(&files);
    assert_eq!(
        wrong,
        [
            "domain/user: crate::store: use crate::store::table;",
            "scim/discovery: crate::events: use crate::events::set;",
            "events/set: crate::service: use crate::service::users;",
        ],
        "{wrong:?}"
    );
    let found = cycles(&imports(&files));
    assert_eq!(
        found,
        [
            vec!["domain/user".to_string(), "store/table".to_string()],
            vec!["scim/a".to_string(), "scim/b".to_string()],
            vec!["scim/c".to_string(), "scim/d".to_string()],
            vec!["store/errs".to_string(), "store/layout".to_string()],
        ]
    );
}
