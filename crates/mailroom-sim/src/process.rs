//! The `mailroom-sim` binary as a child process, for benchmarks and tests that must
//! not share their process (memory, threads) with the simulator.
//!
//! [`SimProcess::spawn`] starts the binary, reads the URLs it announces on stdout
//! (`authority: …`, `graph: …`, `control: …`, `mailbox: …`, then `ready`) and kills
//! it when dropped. Drive it through its control API (`/_sim/…`, see the crate's
//! README) with any HTTP client.
//!
//! ```no_run
//! use mailroom_sim::process::SimProcess;
//!
//! let bin = SimProcess::binary()?; // $MAILROOM_SIM_BIN, or built next to this program
//! let sim = SimProcess::spawn(&bin, ["--messages", "1000", "--all-in", "inbox"])?;
//! println!("{} {} {:?}", sim.authority_url(), sim.graph_url(), sim.mailboxes());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::ffi::OsStr;
use std::io::{self, BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

/// A running `mailroom-sim` process; killed when dropped.
#[derive(Debug)]
pub struct SimProcess {
    child: Child,
    // Kept open so that the simulator never writes to a closed pipe.
    _stdout: BufReader<ChildStdout>,
    authority: String,
    graph: String,
    introspection: String,
    verification: String,
    control: String,
    ca: Option<PathBuf>,
    mailboxes: Vec<String>,
}

impl SimProcess {
    /// Starts `program` (the `mailroom-sim` binary) with `args` and waits until it
    /// says `ready`. Its stderr goes to this process's stderr.
    pub fn spawn<I, S>(program: impl AsRef<OsStr>, args: I) -> io::Result<SimProcess>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let program = program.as_ref();
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {program:?}: {e}")))?;
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut announced = Announced::default();
        let mut line = String::new();
        loop {
            line.clear();
            if stdout.read_line(&mut line)? == 0 {
                let status = child.wait()?;
                return Err(io::Error::other(format!(
                    "{program:?} exited before it was ready ({status})"
                )));
            }
            if announced.read(line.trim_end()) {
                break;
            }
        }
        let Announced {
            authority: Some(authority),
            graph: Some(graph),
            introspection: Some(introspection),
            verification: Some(verification),
            control: Some(control),
            ca,
            mailboxes,
        } = announced
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!(
                "{program:?} said ready without announcing its URLs"
            )));
        };
        Ok(SimProcess {
            child,
            _stdout: stdout,
            authority,
            graph,
            introspection,
            verification,
            control,
            ca: ca.map(PathBuf::from),
            mailboxes,
        })
    }

    /// The `mailroom-sim` binary: `$MAILROOM_SIM_BIN` if set, else the one in the
    /// target directory of the running program (`target/<profile>/mailroom-sim`,
    /// as seen from a test or bench in `target/<profile>/deps/`), built there with
    /// `cargo build -p mailroom-sim` (and `--release` for the release profile) when
    /// it is missing.
    pub fn binary() -> io::Result<PathBuf> {
        if let Some(path) = std::env::var_os("MAILROOM_SIM_BIN") {
            return Ok(PathBuf::from(path));
        }
        let exe = std::env::current_exe()?;
        let profile_dir = exe
            .parent()
            .filter(|d| d.file_name() == Some(OsStr::new("deps")))
            .and_then(Path::parent)
            .or_else(|| exe.parent())
            .ok_or_else(|| io::Error::other("the running program has no directory"))?;
        let candidate = profile_dir.join(format!("mailroom-sim{}", std::env::consts::EXE_SUFFIX));
        if candidate.exists() {
            return Ok(candidate);
        }
        let target_dir = profile_dir
            .parent()
            .ok_or_else(|| io::Error::other("no target directory above the profile"))?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "--quiet",
                "-p",
                "mailroom-sim",
                "--bin",
                "mailroom-sim",
            ])
            .arg("--target-dir")
            .arg(target_dir);
        if profile_dir.file_name() == Some(OsStr::new("release")) {
            build.arg("--release");
        }
        let status = build.status()?;
        if !status.success() || !candidate.exists() {
            return Err(io::Error::other(format!(
                "cannot build {} ({status}); set MAILROOM_SIM_BIN to a mailroom-sim binary",
                candidate.display()
            )));
        }
        Ok(candidate)
    }

    /// The authority host (identity platform), e.g. `http://127.0.0.1:41234`.
    pub fn authority_url(&self) -> &str {
        &self.authority
    }

    /// The Graph base URL (`…/v1.0`).
    pub fn graph_url(&self) -> &str {
        &self.graph
    }

    /// The token introspection URL (for Dovecot's oauth2 passdb).
    pub fn introspection_url(&self) -> &str {
        &self.introspection
    }

    /// The device code verification page (where a person enters a user code).
    pub fn verification_url(&self) -> &str {
        &self.verification
    }

    /// The control API base URL (`…/_sim`).
    pub fn control_url(&self) -> &str {
        &self.control
    }

    /// The PEM file of the CA to trust, when the simulator serves HTTPS with a
    /// certificate it made (`--tls`).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    /// The mailbox addresses, in the order the simulator announced them.
    pub fn mailboxes(&self) -> &[String] {
        &self.mailboxes
    }

    /// The process id (to read its `/proc/{pid}/status`, say).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the simulator gracefully (SIGTERM, through `kill`) and returns its exit
    /// status; where that is not possible, kills it.
    pub fn stop(mut self) -> io::Result<ExitStatus> {
        let terminated = cfg!(unix)
            && Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
        if !terminated {
            self.child.kill()?;
        }
        self.child.wait()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the binary printed so far.
#[derive(Default)]
struct Announced {
    authority: Option<String>,
    graph: Option<String>,
    introspection: Option<String>,
    verification: Option<String>,
    control: Option<String>,
    ca: Option<String>,
    mailboxes: Vec<String>,
}

impl Announced {
    /// Takes one line; true on `ready`.
    fn read(&mut self, line: &str) -> bool {
        let Some((key, value)) = line.split_once(": ") else {
            return line == "ready";
        };
        let value = value.to_owned();
        match key {
            "authority" => self.authority = Some(value),
            "graph" => self.graph = Some(value),
            "introspection" => self.introspection = Some(value),
            "verification" => self.verification = Some(value),
            "control" => self.control = Some(value),
            "ca" => self.ca = Some(value),
            "mailbox" => self.mailboxes.push(value),
            _ => {}
        }
        false
    }
}

/// User + system CPU seconds of process `pid` (`None`: this process), from
/// `/proc/<pid>/stat` (clock ticks of 1/100 s, the value on Linux); NaN when it cannot be
/// read. For benchmarks that print the CPU time of the simulator, of a database server's
/// backends or of their own process beside it.
pub fn cpu_seconds(pid: Option<u32>) -> f64 {
    let [user, system, _, _] = stat_ticks(pid);
    user + system
}

/// User + system CPU seconds of the children this process has waited for
/// (`/proc/self/stat`); NaN when it cannot be read.
pub fn waited_children_cpu_seconds() -> f64 {
    let [_, _, user, system] = stat_ticks(None);
    user + system
}

/// `utime`, `stime`, `cutime` and `cstime` of `/proc/<pid>/stat`, in seconds.
fn stat_ticks(pid: Option<u32>) -> [f64; 4] {
    let path = pid.map_or("/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces:
    // `state` is the first, `utime` the 12th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let seconds = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(f64::NAN, |ticks| ticks / 100.0)
    };
    [seconds(11), seconds(12), seconds(13), seconds(14)]
}

/// A field of `/proc/<pid>/status` given in kB (`"VmHWM:"`, `"VmRSS:"`), in KiB;
/// `pid` `None` is this process. `None` when the process or the field is gone.
pub fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = pid.map_or("/proc/self/status".to_owned(), |p| {
        format!("/proc/{p}/status")
    });
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The async runtime the `mailroom` binary runs on, for benchmarks that must measure
/// what it measures, with its setting `MAILROOM_THREADS` (as `--threads` in
/// crates/mailroom-cli: 1 or unset, a current-thread runtime; more, a multi-thread one
/// with that many workers), and the words that say which.
pub fn mailroom_runtime() -> (tokio::runtime::Builder, String) {
    let threads: usize = std::env::var("MAILROOM_THREADS")
        .map_or(1, |t| t.parse().expect("MAILROOM_THREADS: a number"));
    if threads <= 1 {
        return (
            tokio::runtime::Builder::new_current_thread(),
            "a current-thread runtime".to_owned(),
        );
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(threads);
    (builder, format!("a {threads}-thread runtime"))
}

#[cfg(test)]
mod tests {
    use super::Announced;

    #[test]
    fn reads_this_process_from_proc() {
        let rss = super::status_kib(None, "VmRSS:").expect("VmRSS of this process");
        assert!(rss > 0);
        assert!(super::status_kib(None, "NoSuchField:").is_none());
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(30) {}
        assert!(super::cpu_seconds(None) > 0.0);
        assert!(super::cpu_seconds(Some(u32::MAX)).is_nan());
        assert!(super::waited_children_cpu_seconds() >= 0.0);
    }

    #[test]
    fn reads_what_the_binary_announces() {
        let mut a = Announced::default();
        for line in [
            "authority: http://127.0.0.1:1",
            "graph: http://127.0.0.1:1/v1.0",
            "introspection: http://127.0.0.1:1/oauth2/introspect",
            "verification: http://127.0.0.1:1/device",
            "control: http://127.0.0.1:1/_sim",
            "ca: /tmp/mailroom-sim-1-1-ca.pem",
            "mailbox: demo@mailroom.test",
            "mailbox: user1@mailroom.test",
        ] {
            assert!(!a.read(line), "{line}");
        }
        assert!(a.read("ready"));
        assert_eq!(a.graph.as_deref(), Some("http://127.0.0.1:1/v1.0"));
        assert_eq!(a.verification.as_deref(), Some("http://127.0.0.1:1/device"));
        assert_eq!(a.control.as_deref(), Some("http://127.0.0.1:1/_sim"));
        assert_eq!(a.ca.as_deref(), Some("/tmp/mailroom-sim-1-1-ca.pem"));
        assert_eq!(a.mailboxes, ["demo@mailroom.test", "user1@mailroom.test"]);
    }
}
