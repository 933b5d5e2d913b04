//! The flow in two processes on a broker: the gateway's side in this one, the AI service in
//! a child process, this same binary run as `chatbot ai …`, each with its own bus on the
//! same broker and prefix.
//!
//! Events go only through the broker: the gateway publishes `guild.*` and awaits the AI's
//! replies with `wait_for`, which finds them whichever process published them. Beside the
//! bus, the child's stdin and stdout carry what the story asks of the AI service's memory
//! (what [`AiLink`] asks in-process): one command per line in, one JSON [`Reply`] per line
//! out. Its stderr is relayed as `[ai] …`. It stops when told to (`finish`), when its stdin
//! closes (the gateway's process ended), or when it is killed: the gateway kills it on
//! every way out that is not `finish`, and when dropped.

use crate::backend::Backend;
use crate::breaker::State;
use crate::groups;
use crate::json_log::Output;
use crate::scenario::{AiLink, AiReport, AiService, Config, Counters, Error, Gateway, Summary};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// How long a process has for its subscriptions to join their groups on the broker.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the AI service has to answer a command; `finish` included, which shuts its bus
/// down (leaving its groups) first.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// The consumer name of the gateway's process in every group.
pub const GATEWAY: &str = "gateway";

/// The consumer name of the AI service's process in every group.
pub const AI: &str = "ai";

/// A line the AI service's process writes on its stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// Its subscriptions have joined their groups: events published from now on reach it.
    Ready,
    /// The answer to `greeting <correlation id>`.
    Greeting {
        /// The greeting written for that request, if any.
        text: Option<String>,
    },
    /// The answer to `finish`, once its bus is shut down.
    Report {
        /// How many calls reached the provider.
        provider_calls: u32,
        /// The breaker's state for the provider: `closed`, `open` or `half_open`.
        breaker: String,
        /// Its bus's counters.
        counters: Counters,
    },
}

/// Runs the gateway's side on `backend` in this process and the AI service in a child
/// process on the same broker, both with the default [`Config`], writing the JSON log and
/// the narration to `out`. The child is stopped on every way out: told to finish, or
/// killed.
///
/// # Errors
///
/// [`Error`] as [`crate::run`] has them, and [`Error::AiService`] when the child fails.
pub async fn run(backend: &Backend, out: impl Write + Send + 'static) -> Result<Summary, Error> {
    let config = Config::default();
    let out = Output::new(out);
    out.line(&format!("== Two processes over {backend}"))?;
    // Started first, so that it joins its groups while this process joins its own.
    let started = Instant::now();
    let mut ai = AiProcess::spawn(backend)?;
    let result = async {
        let bus = backend.bus(GATEWAY).await?;
        let gateway = Gateway::start(&bus, out.clone())?;
        groups::joined(&bus, &Gateway::GROUPS, JOIN_TIMEOUT).await?;
        out.line(&format!(
            "> gateway (pid {}, this process): {} joined ({:.0?})",
            std::process::id(),
            Gateway::GROUPS.join(", "),
            started.elapsed()
        ))?;
        ai.ready().await?;
        out.line(&format!(
            "> AI service (pid {}, `chatbot ai`): {} joined ({:.0?})",
            ai.pid,
            AiService::GROUPS.join(", "),
            started.elapsed()
        ))?;
        gateway.run(&config, &mut ai).await
    }
    .await;
    match result {
        Ok(summary) => Ok(summary),
        // Whatever failed, an AI service that died explains it best.
        Err(error) => Err(match ai.kill().await {
            Some(status) => Error::AiService(format!(
                "its process ended ({status}) during the run; then: {error}"
            )),
            None => error,
        }),
    }
}

/// The AI service's process, as the gateway reaches it.
#[derive(Debug)]
pub struct AiProcess {
    child: Child,
    pid: u32,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Relays its stderr; ends when it closes it.
    relay: JoinHandle<()>,
    /// Whether it was told to finish: from then on, its exit is expected.
    finishing: bool,
}

impl AiProcess {
    /// Starts this binary as `chatbot ai` on `backend`'s broker and prefix. It is killed when
    /// dropped.
    ///
    /// # Errors
    ///
    /// [`Error::AiService`] when it cannot start, or `backend` has no broker.
    pub fn spawn(backend: &Backend) -> Result<AiProcess, Error> {
        let (transport, url, prefix) = match backend {
            Backend::Redis { url, prefix } => ("redis", url, prefix),
            Backend::Nats { url, prefix } => ("nats", url, prefix),
            Backend::InMemory => {
                return Err(Error::AiService(
                    "an in-memory bus is not shared with another process".into(),
                ));
            }
        };
        let failed = |error: io::Error| Error::AiService(format!("cannot start it: {error}"));
        let mut child = Command::new(std::env::current_exe().map_err(failed)?)
            .args([
                "ai",
                "--transport",
                transport,
                "--url",
                url,
                "--prefix",
                prefix,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(failed)?;
        let pid = child.id().unwrap_or_default();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::AiService("its pipes are missing".into()));
        };
        let relay = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[ai] {line}");
            }
        });
        Ok(AiProcess {
            child,
            pid,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout).lines(),
            relay,
            finishing: false,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until it says [`Reply::Ready`].
    ///
    /// # Errors
    ///
    /// [`Error::AiService`] when it exits first, says something else, or says nothing within
    /// [`JOIN_TIMEOUT`].
    pub async fn ready(&mut self) -> Result<(), Error> {
        match self.reply(JOIN_TIMEOUT).await? {
            Reply::Ready => Ok(()),
            other => Err(Error::AiService(format!(
                "expected it to be ready, it said {other:?}"
            ))),
        }
    }

    /// Kills it (SIGKILL) and reaps it, with the last of its output; how it had exited if
    /// it had, unasked, before.
    pub async fn kill(&mut self) -> Option<ExitStatus> {
        let exited = self
            .child
            .try_wait()
            .ok()
            .flatten()
            .filter(|_| !self.finishing);
        let _ = self.child.kill().await;
        let _ = (&mut self.relay).await;
        exited
    }

    /// Sends one command line.
    async fn send(&mut self, command: &str) -> Result<(), Error> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::AiService("its stdin is closed".into()))?;
        let sent = async {
            stdin.write_all(format!("{command}\n").as_bytes()).await?;
            stdin.flush().await
        };
        sent.await
            .map_err(|error| Error::AiService(format!("cannot send `{command}`: {error}")))
    }

    /// Reads its next reply, for at most `timeout`.
    async fn reply(&mut self, timeout: Duration) -> Result<Reply, Error> {
        let line = match tokio::time::timeout(timeout, self.stdout.next_line()).await {
            Err(_) => {
                return Err(Error::AiService(format!("no answer within {timeout:?}")));
            }
            Ok(Err(error)) => return Err(Error::AiService(format!("cannot read it: {error}"))),
            Ok(Ok(None)) => {
                let status = self.exit_status().await;
                return Err(Error::AiService(format!(
                    "its process ended ({status}) without answering; its stderr is above, as [ai] lines"
                )));
            }
            Ok(Ok(Some(line))) => line,
        };
        serde_json::from_str(&line)
            .map_err(|error| Error::AiService(format!("unreadable answer ({error}): {line}")))
    }

    /// How it exited, waiting a moment for it: a closed stdout usually means it is ending.
    async fn exit_status(&mut self) -> String {
        match tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(error)) => format!("unknown: {error}"),
            Err(_) => "still running".to_owned(),
        }
    }

    /// Waits for its exit after `finish`, and for the last of its stderr.
    async fn wait(&mut self) -> Result<ExitStatus, Error> {
        let status = tokio::time::timeout(ANSWER_TIMEOUT, self.child.wait())
            .await
            .map_err(|_| Error::AiService(format!("it did not exit within {ANSWER_TIMEOUT:?}")))?
            .map_err(|error| Error::AiService(format!("cannot wait for it: {error}")))?;
        let _ = (&mut self.relay).await;
        Ok(status)
    }
}

impl AiLink for &mut AiProcess {
    async fn greeting(&mut self, correlation_id: &str) -> Result<Option<String>, Error> {
        self.send(&format!("greeting {correlation_id}")).await?;
        match self.reply(ANSWER_TIMEOUT).await? {
            Reply::Greeting { text } => Ok(text),
            other => Err(Error::AiService(format!(
                "asked for a greeting, it said {other:?}"
            ))),
        }
    }

    async fn finish(self) -> Result<AiReport, Error> {
        self.finishing = true;
        self.send("finish").await?;
        let reply = self.reply(ANSWER_TIMEOUT).await?;
        // Its stdin closes: it has nothing more to read.
        drop(self.stdin.take());
        let status = self.wait().await?;
        let Reply::Report {
            provider_calls,
            breaker,
            counters,
        } = reply
        else {
            return Err(Error::AiService(format!(
                "asked to finish, it said {reply:?}"
            )));
        };
        if !status.success() {
            return Err(Error::AiService(format!("it exited with {status}")));
        }
        let breaker = match breaker.as_str() {
            "closed" => State::Closed,
            "open" => State::Open,
            "half_open" => State::HalfOpen,
            other => {
                return Err(Error::AiService(format!("unknown breaker state {other:?}")));
            }
        };
        Ok(AiReport {
            provider_calls,
            breaker,
            counters: Some(counters),
        })
    }
}

/// The AI service's process (`chatbot ai`): subscribes the breaker and the greeter on
/// `backend`, with the default [`Config`] as the gateway's process has it, says [`Reply::Ready`] once they have joined, then answers the commands on its
/// stdin: `greeting <correlation id>`, and `finish`, on which it shuts its bus down,
/// reports, and returns. Errors go to stderr.
///
/// # Errors
///
/// [`Error`] when the broker cannot be reached, the groups do not join, stdout fails, or
/// stdin closes before `finish` (the gateway's process is gone).
pub async fn serve_ai(backend: &Backend) -> Result<(), Error> {
    let bus = backend.bus(AI).await?;
    let ai = AiService::start(&bus, &Config::default())?;
    groups::joined(&bus, &AiService::GROUPS, JOIN_TIMEOUT).await?;
    answer(&Reply::Ready)?;
    eprintln!(
        "pid {}: {} joined on {backend}",
        std::process::id(),
        AiService::GROUPS.join(", ")
    );
    let mut commands = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let Some(line) = commands.next_line().await? else {
            bus.shutdown().await;
            return Err(Error::AiService(
                "stdin closed before `finish`: the gateway's process is gone".into(),
            ));
        };
        match line.split_once(' ').unwrap_or((line.as_str(), "")) {
            ("greeting", correlation_id) => answer(&Reply::Greeting {
                text: ai.greeting(correlation_id),
            })?,
            ("finish", "") => {
                bus.shutdown().await;
                let report = ai.report();
                answer(&Reply::Report {
                    provider_calls: report.provider_calls,
                    breaker: report.breaker.to_string(),
                    counters: bus.metrics().into(),
                })?;
                eprintln!("pid {}: shut down", std::process::id());
                return Ok(());
            }
            _ => eprintln!("unknown command: {line:?}"),
        }
    }
}

/// Writes one reply line on stdout.
fn answer(reply: &Reply) -> Result<(), Error> {
    let line = serde_json::to_string(reply)
        .map_err(|error| Error::AiService(format!("cannot encode {reply:?}: {error}")))?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}
