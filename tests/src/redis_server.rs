//! A throwaway Redis server for tests, started from the Debian `redis-server` binary, never a
//! server already running.
//!
//! The server lives in a new temporary directory (its append-only file and its log), listens
//! on 127.0.0.1 only, on a free port, with every write fsynced (`--appendonly yes
//! --appendfsync always`) and no snapshots. It stops, and its directory is deleted, when the
//! [`RedisServer`] is dropped or, for one kept in a `static` ([`RedisServer::shared`]), when
//! the test process ends: a small watchdog process waits for the test process to exit, then
//! kills the server, so even a process that aborts leaves no server behind.
//!
//! [`kill`](RedisServer::kill) and [`restart`](RedisServer::restart) (same port, same data)
//! are for fault tests.
//!
//! ```no_run
//! use tests::redis_server::RedisServer;
//!
//! let server = RedisServer::shared();
//! assert!(server.url().starts_with("redis://127.0.0.1:"));
//! ```

use crate::server::{Launch, Process, find_binary};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// A Redis server this process started, on 127.0.0.1.
#[derive(Debug)]
pub struct RedisServer {
    process: Process,
}

/// How `redis-server` runs.
struct Redis {
    binary: PathBuf,
}

impl Launch for Redis {
    fn command(&self, process: &Process) -> io::Result<Command> {
        let mut command = Command::new(&self.binary);
        command
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(process.port().to_string())
            .arg("--dir")
            .arg(process.root())
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--logfile",
            ])
            .arg(process.log());
        Ok(command)
    }

    fn ready(&self, process: &Process) -> io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", process.port()))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply)?;
        if &reply == b"+PONG\r\n" {
            Ok(())
        } else {
            // `-LOADING ...` while the append-only file is read again.
            Err(io::Error::other(
                String::from_utf8_lossy(&reply).into_owned(),
            ))
        }
    }
}

impl RedisServer {
    /// One server for the whole test process, started on first use, stopped when the
    /// process ends.
    ///
    /// # Panics
    ///
    /// When the server cannot start (Redis not installed: `apt-get install redis-server`,
    /// or `scripts/test.sh` which installs it), with the reason.
    pub fn shared() -> &'static RedisServer {
        static SHARED: OnceLock<RedisServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            RedisServer::start()
                .unwrap_or_else(|error| panic!("cannot start a test Redis server: {error}"))
        })
    }

    /// Starts a new server.
    ///
    /// # Errors
    ///
    /// When `redis-server` is not found (the error says how to install it) or does not
    /// answer PING in time (its log is in the error).
    pub fn start() -> io::Result<RedisServer> {
        Ok(RedisServer {
            process: Process::start("redis-server", &launch()?)?,
        })
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// Its URL, `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
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

    /// The server's directory (append-only file, log).
    pub fn root(&self) -> &Path {
        self.process.root()
    }
}

/// `$REDIS_SERVER`, or `redis-server` on the `PATH` or in `/usr/bin`.
fn launch() -> io::Result<Redis> {
    let binary = find_binary("redis-server", "REDIS_SERVER").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no redis-server binary: apt-get install redis-server (or run scripts/test.sh, \
             which installs it), or set REDIS_SERVER to its path",
        )
    })?;
    Ok(Redis { binary })
}
