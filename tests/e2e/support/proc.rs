//! A `mailroom` process running in the background (a worker, a sync to be killed),
//! its output going to files so that a full pipe never blocks it.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::Out;

/// A spawned process; killed (SIGKILL) if still running when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    what: String,
    status: Option<ExitStatus>,
}

impl Proc {
    pub(super) fn spawn(mut cmd: Command, out: PathBuf, err: PathBuf, what: &str) -> Proc {
        let stdout = std::fs::File::create(&out).expect("an output file");
        let stderr = std::fs::File::create(&err).expect("an output file");
        let child = cmd
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mailroom {what}: {e}"));
        Proc {
            child,
            out,
            err,
            what: what.to_owned(),
            status: None,
        }
    }

    /// Stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Still running?
    pub fn is_running(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status.is_none()
    }

    /// Sends SIGTERM (a graceful stop).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }

    /// Sends SIGKILL and reaps the process. Returns true if the signal is what ended
    /// it (false: it had exited on its own before).
    pub fn sigkill(&mut self) -> bool {
        if self.is_running() {
            let _ = self.child.kill();
        }
        let status = self.reap();
        status.signal() == Some(9)
    }

    fn reap(&mut self) -> ExitStatus {
        match self.status {
            Some(s) => s,
            None => {
                let s = self.child.wait().expect("wait");
                self.status = Some(s);
                s
            }
        }
    }

    /// Waits for the process to end by itself (killing it and failing after
    /// `timeout`), and returns how it ended.
    pub fn wait(&mut self, timeout: Duration) -> Out {
        let deadline = Instant::now() + timeout;
        while self.is_running() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                self.reap();
                panic!(
                    "mailroom {} did not end within {timeout:?}\n--- stdout\n{}\n--- stderr\n{}",
                    self.what,
                    self.stdout(),
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = self.reap();
        Out {
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    /// Waits until stdout satisfies `done` (panics after `timeout` or if the process
    /// ends first).
    pub fn wait_stdout(&mut self, timeout: Duration, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let out = self.stdout();
            if done(&out) {
                return out;
            }
            assert!(
                self.is_running(),
                "mailroom {} ended early\n--- stdout\n{out}\n--- stderr\n{}",
                self.what,
                self.stderr()
            );
            assert!(
                Instant::now() < deadline,
                "mailroom {}: timed out after {timeout:?}\n--- stdout\n{out}\n--- stderr\n{}",
                self.what,
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
