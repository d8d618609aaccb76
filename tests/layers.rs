//! The layers of `shared/src` point one way (see its `lib.rs`): the domain
//! imports neither HTTP, DynamoDB, the store, the service nor an API; the
//! store imports no service or API; the service no API; the change events
//! sit beside the APIs (they may read the store and render with the SCIM
//! renderers, but use neither the service nor auth), and nothing below
//! imports them; and no file imports a file that imports it back. This reads the crate's `use` paths as text:
//! it checks how the code is arranged, nothing it does.
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

/// The module paths a file names, resolved against its own module.
fn imports(files: &[(Vec<String>, String)]) -> Imports {
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
                // `use super::{a, b}`: the names are items of the parent
                // module's own file, which re-exports; no file is named.
                if parts.is_empty() {
                    continue;
                }
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
                let full: Vec<String> = base.into_iter().chain(parts).collect();
                // The longest prefix that is a file of its own.
                if let Some(target) = (1..=full.len())
                    .rev()
                    .map(|n| full[..n].to_vec())
                    .find(|p| files.iter().any(|(m, _)| m == p))
                {
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
        ]
    );
}
