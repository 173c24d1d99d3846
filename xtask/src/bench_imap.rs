//! `cargo xtask bench imap`: the IMAP initial-sync benchmark runs mbsync (isync) beside
//! Mailroom on the same Dovecot mailbox; this installs isync when it is missing.

use std::process::Command;

use anyhow::{Context as _, Result, bail};

fn have_mbsync() -> bool {
    Command::new("mbsync")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs isync (apt-get) unless `mbsync` already runs; does nothing the second time.
pub(crate) fn ensure_isync() -> Result<()> {
    if have_mbsync() {
        return Ok(());
    }
    eprintln!("xtask: installing isync (apt-get) for the mbsync reference");
    let update = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()
        .context("cannot run apt-get update")?;
    if !update.success() {
        bail!("apt-get update failed ({update})");
    }
    let install = Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends", "isync"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .context("cannot run apt-get install isync")?;
    if !have_mbsync() {
        bail!(
            "apt-get install isync failed: {}",
            String::from_utf8_lossy(&install.stderr).trim()
        );
    }
    Ok(())
}
