//! Where the `mailroom` binary is: next to this test executable, in the same target
//! profile directory (`target/<profile>/deps/e2e-…` → `target/<profile>/mailroom`).
//!
//! `cargo nextest run --workspace` builds it (mailroom-cli has integration tests). When
//! it is missing, or older than the sources it is built from, it is built once here
//! with `$CARGO build -p mailroom-cli --bin mailroom` in the same target directory, and
//! that is said on stderr: a stale binary would test yesterday's code.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The path of an up-to-date `mailroom` binary (built on first use if needed).
pub fn mailroom() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(locate_or_build)
}

/// The workspace root. `cargo test` and nextest give the manifest directory at run
/// time; the path compiled in is only a fallback, because clones sharing a target
/// directory may run a test binary built in another clone.
fn workspace_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// `target/<profile>/` of this test executable.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let deps = exe.parent().expect("the executable sits in a directory");
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().expect("deps/ has a parent")
    } else {
        deps
    };
    dir.to_path_buf()
}

/// Newest modification time of the files the binary is built from.
fn newest_source(dir: &Path, newest: &mut SystemTime) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            // Tests, benches, fixtures and the simulator are not in the binary.
            if !matches!(
                name.to_str(),
                Some("tests" | "benches" | "fixtures" | "fuzz" | "mailroom-sim")
            ) {
                newest_source(&path, newest);
            }
        } else if path
            .extension()
            .is_some_and(|e| e == "rs" || e == "toml" || e == "sql")
            && let Ok(modified) = entry.metadata().and_then(|m| m.modified())
        {
            *newest = (*newest).max(modified);
        }
    }
}

fn locate_or_build() -> PathBuf {
    let bin = profile_dir().join("mailroom");
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let mut newest = SystemTime::UNIX_EPOCH;
    newest_source(&workspace_root().join("crates"), &mut newest);
    let reason = match built {
        None => "it is missing",
        Some(t) if t < newest => "it is older than the sources",
        Some(_) => return bin,
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let profile = profile_dir();
    let target_dir = profile.parent().expect("target/<profile> has a parent");
    let profile_name = profile
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a profile directory name");
    eprintln!(
        "e2e: building {} because {reason}: {cargo} build -p mailroom-cli --bin mailroom (profile {profile_name})",
        bin.display()
    );
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "mailroom-cli", "--bin", "mailroom"])
        .env("CARGO_TARGET_DIR", target_dir);
    match profile_name {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo} to build the mailroom binary: {e}"));
    assert!(
        status.success(),
        "building the mailroom binary failed ({status}); build it with `cargo build -p mailroom-cli --bin mailroom`"
    );
    assert!(
        bin.exists(),
        "{} still missing after the build",
        bin.display()
    );
    bin
}
