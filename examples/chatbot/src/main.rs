//! Runs the chat bot scenario: the JSON log of every event, the breaker's transitions, the
//! request/response results and a summary, on stdout. Errors go to stderr, with exit code 1.
//!
//! - `chatbot` (`--transport memory`): one process, one in-memory bus.
//! - `chatbot --transport redis|nats`: starts a throwaway `redis-server` or `nats-server`
//!   (or uses `--url`), then runs the gateway's side in this process and the AI service in a
//!   child process, `chatbot ai …`, both on that broker. The child and the broker are
//!   stopped on every way out, Ctrl-C included; the run gives up after [`DEADLINE`].

use chatbot::backend::Backend;
use chatbot::broker::{BrokerServer, Kind};
use chatbot::{Summary, processes};
use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The most a run over a broker takes, its start included; past it, it fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// The chat bot's flow: in memory in one process, or over Redis or NATS in two.
#[derive(Debug, Parser)]
#[command(name = "chatbot", version, args_conflicts_with_subcommands = true)]
struct Cli {
    /// Where the events travel.
    #[arg(long, value_enum, default_value_t = Transport::Memory)]
    transport: Transport,
    /// A broker already running (`redis://host:port`, `nats://host:port` with JetStream),
    /// instead of one started for this run.
    #[arg(long)]
    url: Option<String>,
    /// A role, for the process the main one starts.
    #[command(subcommand)]
    role: Option<Role>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    /// One process, an in-memory bus.
    Memory,
    /// Two processes on Redis Streams.
    Redis,
    /// Two processes on NATS JetStream.
    Nats,
}

#[derive(Debug, Subcommand)]
enum Role {
    /// The AI service (breaker, greeter, provider) on a broker; started by the main process,
    /// which talks to it over its stdin and stdout.
    Ai {
        /// The broker's kind.
        #[arg(long, value_enum)]
        transport: Transport,
        /// The broker.
        #[arg(long)]
        url: String,
        /// The prefix of the run.
        #[arg(long)]
        prefix: String,
    },
}

impl Transport {
    fn backend(self, url: String, prefix: String) -> Backend {
        match self {
            Transport::Memory => Backend::InMemory,
            Transport::Redis => Backend::Redis { url, prefix },
            Transport::Nats => Backend::Nats { url, prefix },
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match (cli.role, cli.transport, cli.url) {
        (
            Some(Role::Ai {
                transport,
                url,
                prefix,
            }),
            ..,
        ) => {
            let backend = transport.backend(url, prefix);
            match processes::serve_ai(&backend).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        (None, Transport::Memory, None) => verdict(chatbot::run(std::io::stdout()).await),
        (None, Transport::Memory, Some(_)) => {
            eprintln!("error: --url needs --transport redis or --transport nats");
            ExitCode::FAILURE
        }
        (None, transport, url) => over_broker(transport, url).await,
    }
}

/// The run over a broker: started here unless `url` names one, stopped at the end on every
/// way out (it is dropped last, after the AI service's process).
async fn over_broker(transport: Transport, url: Option<String>) -> ExitCode {
    let started = Instant::now();
    let kind = if transport == Transport::Redis {
        Kind::Redis
    } else {
        Kind::Nats
    };
    let mut server = None;
    let url = match url {
        Some(url) => url,
        None => match tokio::task::spawn_blocking(move || BrokerServer::start(kind)).await {
            Ok(Ok(started)) => {
                println!(
                    "> {kind} {} (pid {}) started for this run on {}, in {}",
                    started.version(),
                    started.pid(),
                    started.url(),
                    started.dir().display()
                );
                server.insert(started).url()
            }
            Ok(Err(error)) => {
                eprintln!("error: {error}");
                return ExitCode::FAILURE;
            }
            Err(error) => {
                eprintln!("error: starting {kind}: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    // A prefix of its own, so that a shared server keeps this run apart from any other.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    let prefix = format!("chatbot-{}-{nanos}", std::process::id());
    let backend = transport.backend(url, prefix);
    let run = processes::run(&backend, std::io::stdout());
    let code = tokio::select! {
        outcome = tokio::time::timeout(DEADLINE, run) => {
            outcome.map_or_else(
                |_| {
                    eprintln!("error: the run did not finish within {DEADLINE:?}");
                    ExitCode::FAILURE
                },
                verdict,
            )
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("error: interrupted");
            ExitCode::FAILURE
        }
    };
    // The AI service's process is gone (it finished, or the run's future was dropped,
    // which killed it); now the broker.
    let stopped = server.take().map(|server| {
        let pid = server.pid();
        drop(server);
        format!(", {kind} (pid {pid}) stopped")
    });
    if code == ExitCode::SUCCESS {
        println!(
            "> done in {:.1?}: the AI service's process exited{}",
            started.elapsed(),
            stopped.unwrap_or_default()
        );
    }
    code
}

/// Exit code 0 when the flow completed without dead letters.
fn verdict(result: Result<Summary, chatbot::Error>) -> ExitCode {
    match result {
        Ok(summary) if summary.dead_letters.is_empty() => ExitCode::SUCCESS,
        Ok(summary) => {
            eprintln!(
                "error: {} deliveries were dead-lettered",
                summary.dead_letters.len()
            );
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
