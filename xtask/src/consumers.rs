//! `cargo xtask consumers`: each library crate used the way a downstream project uses it.
//!
//! For every library crate, a throwaway Cargo project outside the workspace depends on
//! that crate ALONE (by path, plus tokio), holds each of the crate's doc examples and
//! each program of its `examples/` as examples of its own, and is type-checked. An
//! example that needs a crate the user did not ask for (`mailroom_core::…` in the docs
//! of `mailroom-graph`, `serde` in those of `mailroom-vault`) fails here, where the
//! workspace's doctests cannot fail: there every crate is in reach.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

/// Every library crate, with the features its documentation tells a user to enable.
const LIBRARIES: &[(&str, &[&str])] = &[
    ("mailroom-core", &["mock"]),
    ("mailroom-vault", &[]),
    ("mailroom-oauth", &[]),
    ("mailroom-graph", &[]),
    ("mailroom-imap", &["testing"]),
    ("mailroom-store", &[]),
    ("mailroom-sync", &[]),
    ("mailroom-server", &[]),
    ("mailroom-sim", &[]),
];

/// What the consumer's `Cargo.toml` adds besides the crate: tokio as users add it.
const TOKIO: &str = r#"tokio = { version = "1", features = ["full"] }"#;

/// Checks every library crate, or only those named in `only`.
pub fn run(root: &Path, only: &[String]) -> Result<()> {
    let base = crate::target_dir(root).join("consumers");
    let mut failed = Vec::new();
    let selected = LIBRARIES
        .iter()
        .filter(|(name, _)| only.is_empty() || only.iter().any(|o| o == name));
    for (name, features) in selected {
        let dir = base.join(name);
        let count = write_consumer(root, &dir, name, features)
            .with_context(|| format!("cannot set up the consumer of {name}"))?;
        // `--profile test` also checks the examples' `#[cfg(test)]` code (the unit
        // tests a user writes against `MockConnector`).
        let mut ok = true;
        for profile in ["dev", "test"] {
            let status = crate::cargo(&["check", "--examples", "--quiet", "--profile", profile])
                .current_dir(&dir)
                .status()
                .context("cannot run cargo check")?;
            ok &= status.success();
        }
        eprintln!(
            "xtask: a project with {name} alone builds {} doc example(s) and {} example(s): {}",
            count.doc,
            count.programs,
            if ok { "ok" } else { "FAILED" }
        );
        if !ok {
            failed.push(format!("{name} (project in {})", dir.display()));
        }
    }
    if !failed.is_empty() {
        bail!(
            "examples that do not build with their crate alone: {}",
            failed.join(", ")
        );
    }
    Ok(())
}

struct Count {
    doc: usize,
    programs: usize,
}

fn write_consumer(root: &Path, dir: &Path, name: &str, features: &[&str]) -> Result<Count> {
    let crate_dir = root.join("crates").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::create_dir_all(dir.join("examples"))?;
    let features = features
        .iter()
        .map(|f| format!("{f:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"consumer-of-{name}\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\n{name} = {{ path = {:?}, features = [{features}] }}\n{TOKIO}\n\n\
             # Not a member of the Mailroom workspace: a project of its own.\n[workspace]\n",
            crate_dir.display().to_string()
        ),
    )?;
    // The workspace's lock file: the same versions as the workspace, no new downloads.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    std::fs::write(dir.join("src/main.rs"), "fn main() {}\n")?;

    let mut doc = 0;
    for file in rust_files(&crate_dir.join("src"))? {
        let text = std::fs::read_to_string(&file)?;
        let mut sources = vec![(file.clone(), doc_lines(&text))];
        if text.contains("include_str!(\"../README.md\")") {
            let readme = crate_dir.join("README.md");
            let lines = std::fs::read_to_string(&readme)?
                .lines()
                .enumerate()
                .map(|(i, l)| (i + 1, l.to_owned()))
                .collect();
            sources.push((readme, lines));
        }
        for (source, lines) in sources {
            for (line, code) in code_blocks(&lines) {
                let rel = source.strip_prefix(root).unwrap_or(&source);
                let stem: String = rel
                    .to_string_lossy()
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .collect();
                let program = format!("// From {}:{line}\n{}", rel.display(), as_program(&code));
                std::fs::write(
                    dir.join("examples").join(format!("doc_{stem}_{line}.rs")),
                    program,
                )?;
                doc += 1;
            }
        }
    }
    let mut programs = 0;
    let examples = crate_dir.join("examples");
    if examples.is_dir() {
        for file in rust_files(&examples)? {
            let file_name = file.file_name().expect("a file");
            std::fs::copy(&file, dir.join("examples").join(file_name))?;
            programs += 1;
        }
    }
    Ok(Count { doc, programs })
}

/// The `.rs` files under `dir`, sorted.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot read {dir:?}"))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The documentation lines of a Rust file (`//!` and `///`, one leading space removed),
/// with their line numbers; other lines become empty lines that end a code block.
fn doc_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let trimmed = line.trim_start();
            let doc = trimmed
                .strip_prefix("//!")
                .or_else(|| trimmed.strip_prefix("///"))
                .map(|rest| rest.strip_prefix(' ').unwrap_or(rest).to_owned());
            (i + 1, doc.unwrap_or_default())
        })
        .collect()
}

/// The Rust code blocks of documentation, as rustdoc tests them: fences without a
/// language or with `rust`, `no_run`, `should_panic`, `editionNNNN`; hidden `# ` lines
/// kept without their marker. Returns the line of each opening fence and the code.
fn code_blocks(lines: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut open: Option<(usize, bool, String)> = None;
    for (number, line) in lines {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match open.take() {
                Some((start, true, code)) => out.push((start, code)),
                Some((_, false, _)) => {}
                None => open = Some((*number, is_rust(info), String::new())),
            }
            continue;
        }
        if let Some((_, true, code)) = &mut open {
            let shown = if trimmed == "#" {
                ""
            } else if let Some(rest) = trimmed.strip_prefix("# ") {
                rest
            } else if let Some(rest) = trimmed.strip_prefix("##") {
                // `##` escapes a line that starts with `#`.
                &line[line.len() - rest.len() - 1..]
            } else {
                line
            };
            code.push_str(shown);
            code.push('\n');
        }
    }
    out
}

fn is_rust(info: &str) -> bool {
    info.split([',', ' ', '\t'])
        .filter(|t| !t.is_empty())
        .all(|t| matches!(t, "rust" | "no_run" | "should_panic") || t.starts_with("edition"))
}

/// Wraps a doc example the way rustdoc does: in `fn main` unless it has one, returning
/// a `Result` when it ends with `Ok::<…>(())`.
fn as_program(code: &str) -> String {
    let (attributes, body): (Vec<&str>, Vec<&str>) = code
        .lines()
        .partition(|l| l.trim_start().starts_with("#!["));
    let body = body.join("\n");
    let mut out = String::from("#![allow(unused)]\n");
    for attribute in attributes {
        let _ = writeln!(out, "{attribute}");
    }
    if body.contains("fn main") {
        out.push_str(&body);
    } else if body.trim_end().ends_with("(())") {
        let _ = write!(
            out,
            "fn main() {{\n    fn _doctest() -> Result<(), impl core::fmt::Debug> {{\n{body}\n    }}\n    _doctest().unwrap()\n}}\n"
        );
    } else {
        let _ = write!(out, "fn main() {{\n{body}\n}}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(doc: &str) -> Vec<String> {
        let lines: Vec<(usize, String)> = doc
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.to_owned()))
            .collect();
        code_blocks(&lines).into_iter().map(|(_, c)| c).collect()
    }

    #[test]
    fn rust_blocks_with_hidden_lines() {
        let doc = "text\n```\nlet a = 1;\n# let b = 2;\n#\n## not hidden\n```\n```text\nno\n```\n```no_run\nx();\n```\n```ignore\ny();\n```\n";
        assert_eq!(
            blocks(doc),
            ["let a = 1;\nlet b = 2;\n\n# not hidden\n", "x();\n"]
        );
    }

    #[test]
    fn programs_are_wrapped_like_rustdoc_does() {
        assert_eq!(
            as_program("let a = 1;\n"),
            "#![allow(unused)]\nfn main() {\nlet a = 1;\n}\n"
        );
        assert!(as_program("f()?;\nOk::<(), E>(())\n").contains("fn _doctest() -> Result<"));
        assert_eq!(
            as_program("fn main() {}\n"),
            "#![allow(unused)]\nfn main() {}"
        );
    }

    #[test]
    fn doc_comments_lose_their_marker_and_one_space() {
        let lines = doc_lines("//! one\n    ///  two\nfn x() {}\n");
        assert_eq!(
            lines,
            [(1, "one".into()), (2, " two".into()), (3, String::new())]
        );
    }
}
