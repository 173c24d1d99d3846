//! `cargo xtask conformance`: Microsoft's own client libraries (msal,
//! azure-identity, msgraph-sdk, from PyPI at the versions pinned in
//! `crates/mailroom-sim/conformance/requirements.txt`) drive `mailroom-sim` over
//! HTTPS, with pytest.
//!
//! The virtual environment lives in the target directory and is made again only
//! when the requirements or the Python version change.

use std::collections::BTreeMap;
use std::env;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use crate::{cargo, step};

const SUITE: &str = "crates/mailroom-sim/conformance";

/// What the simulator is started with; the suite's `conftest.py` relies on it.
const SIM_ARGS: &[&str] = &[
    "--tls",
    "--no-auto-approve",
    "--mailboxes",
    "2",
    "--messages",
    "60",
    "--confidential-client",
    "conformance-confidential=conformance-secret",
    "--tenant-domain",
    "contoso.onmicrosoft.com",
];

/// Runs the suite. `build` builds the simulator first; `ci` passes false because
/// the nextest step has just built it.
pub(crate) fn run(root: &Path, build: bool) -> Result<()> {
    let target = target_dir(root);
    let sim = target
        .join("debug")
        .join(format!("mailroom-sim{}", env::consts::EXE_SUFFIX));
    if build || !sim.exists() {
        step(
            "build mailroom-sim",
            cargo(&["build", "-p", "mailroom-sim", "--bin", "mailroom-sim"]),
        )?;
    }
    let venv = ensure_venv(
        &root.join(SUITE).join("requirements.txt"),
        &target.join("conformance-venv"),
        "conformance",
    )?;
    let mut child = Simulator::start(&sim)?;
    let urls = child.urls.clone();
    let get = |key: &str| {
        urls.get(key)
            .cloned()
            .with_context(|| format!("mailroom-sim did not announce its {key}"))
    };
    let ca = get("ca")?;
    let mut pytest = Command::new(python(&venv));
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", SUITE])
        .env("MAILROOM_SIM_AUTHORITY", get("authority")?)
        .env("MAILROOM_SIM_GRAPH", get("graph")?)
        .env("MAILROOM_SIM_CONTROL", get("control")?)
        .env("REQUESTS_CA_BUNDLE", &ca)
        .env("SSL_CERT_FILE", &ca)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    // Any failure fails the step, pytest's 5 ("no tests ran") included.
    let result = step("conformance (pytest)", pytest);
    child.stop();
    result
}

fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// The interpreter of a virtual environment.
pub(crate) fn python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Creates the virtual environment `venv` of `requirements` (`what` names it in
/// messages), or keeps it when its stamp (the requirements and the interpreter's
/// version) still matches.
pub(crate) fn ensure_venv(requirements: &Path, venv: &Path, what: &str) -> Result<PathBuf> {
    let pins = std::fs::read_to_string(requirements)
        .with_context(|| format!("cannot read {}", requirements.display()))?;
    let version = Command::new("python3")
        .arg("--version")
        .output()
        .context("cannot run python3 (Python 3.9 or later is needed)")?;
    let stamp_text = format!(
        "{}\n{pins}",
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let stamp = venv.join("mailroom-requirements.txt");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == stamp_text) && python(venv).exists() {
        eprintln!("xtask: {what} venv up to date ({})", venv.display());
        return Ok(venv.to_owned());
    }
    if venv.exists() {
        std::fs::remove_dir_all(venv)
            .with_context(|| format!("cannot remove the old venv {}", venv.display()))?;
    }
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(venv);
    step("python3 -m venv", create)?;
    let mut install = Command::new(python(venv));
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "-r",
        ])
        .arg(requirements);
    step(&format!("pip install ({what} requirements)"), install)?;
    std::fs::write(&stamp, stamp_text)
        .with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(venv.to_owned())
}

/// The simulator as a child process, stopped when dropped.
struct Simulator {
    child: Child,
    urls: BTreeMap<String, String>,
}

impl Simulator {
    fn start(bin: &Path) -> Result<Simulator> {
        let mut child = Command::new(bin)
            .args(SIM_ARGS)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let stdout = child.stdout.take().context("mailroom-sim has no stdout")?;
        let mut sim = Simulator {
            child,
            urls: BTreeMap::new(),
        };
        for line in BufReader::new(stdout).lines() {
            let line = line.context("cannot read what mailroom-sim announced")?;
            if line == "ready" {
                let at = sim.urls.get("authority").map_or("?", String::as_str);
                eprintln!("xtask: mailroom-sim ready at {at}");
                return Ok(sim);
            }
            if let Some((key, value)) = line.split_once(": ") {
                sim.urls.insert(key.to_owned(), value.to_owned());
            }
        }
        bail!("mailroom-sim exited before it was ready")
    }

    /// SIGTERM first, so the simulator removes its CA file; SIGKILL if it
    /// has not stopped within five seconds.
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let terminated = cfg!(unix)
            && Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
        if terminated {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
    }
}
