//! The orchestrator's child processes: this same binary, one role each. Their stdout and
//! stderr are relayed line by line, prefixed with the child's name. Every child is killed
//! when the [`Children`] are dropped; a worker also stops by itself when its stdin closes,
//! so none outlives an orchestrator that was killed.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// One child.
#[derive(Debug)]
struct Process {
    name: String,
    child: Child,
    /// The tasks relaying its stdout and stderr; they end when it closes them.
    relays: Vec<JoinHandle<()>>,
}

/// The running children, by name.
#[derive(Debug, Default)]
pub struct Children {
    processes: Vec<Process>,
}

impl Children {
    /// Starts this binary with `args` as the child `name`.
    ///
    /// # Errors
    ///
    /// When the binary cannot be found or started.
    pub fn spawn(&mut self, name: &str, args: &[&str]) -> io::Result<u32> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut relays = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            relays.push(relay(name, stdout, false));
        }
        if let Some(stderr) = child.stderr.take() {
            relays.push(relay(name, stderr, true));
        }
        let pid = child.id().unwrap_or_default();
        self.processes.push(Process {
            name: name.to_owned(),
            child,
            relays,
        });
        Ok(pid)
    }

    /// Kills the child `name` at once (SIGKILL), as a crash would, and reaps it.
    ///
    /// # Errors
    ///
    /// When there is no such child or the signal fails.
    pub async fn kill(&mut self, name: &str) -> io::Result<()> {
        let index = self.index(name)?;
        let mut process = self.processes.remove(index);
        process.child.kill().await?;
        for relay in process.relays {
            let _ = relay.await;
        }
        Ok(())
    }

    /// Waits for the child `name` to exit, and for the last of its output.
    ///
    /// # Errors
    ///
    /// When there is no such child or waiting fails.
    pub async fn wait(&mut self, name: &str) -> io::Result<ExitStatus> {
        let index = self.index(name)?;
        let status = self.processes[index].child.wait().await?;
        let process = self.processes.remove(index);
        for relay in process.relays {
            let _ = relay.await;
        }
        Ok(status)
    }

    /// Stops every child: closes its stdin (a worker then leaves its groups and exits),
    /// waits up to `grace`, then kills what still runs.
    pub async fn stop_all(&mut self, grace: Duration) {
        for mut process in self.processes.drain(..) {
            drop(process.child.stdin.take());
            if tokio::time::timeout(grace, process.child.wait())
                .await
                .is_err()
            {
                let _ = process.child.kill().await;
            }
            for relay in process.relays {
                let _ = relay.await;
            }
        }
    }

    fn index(&self, name: &str) -> io::Result<usize> {
        self.processes
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| io::Error::other(format!("no child named {name}")))
    }
}

/// Prints each line of `output` as `[name] line`, on stdout or stderr.
fn relay(
    name: &str,
    output: impl AsyncRead + Unpin + Send + 'static,
    stderr: bool,
) -> JoinHandle<()> {
    let prefix = format!("[{name}]");
    tokio::spawn(async move {
        let mut lines = BufReader::new(output).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if stderr {
                eprintln!("{prefix} {line}");
            } else {
                println!("{prefix} {line}");
            }
        }
    })
}
