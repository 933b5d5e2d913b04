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

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// A Redis server this process started, on 127.0.0.1.
#[derive(Debug)]
pub struct RedisServer {
    root: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
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
        let binary = binary()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let root = std::env::temp_dir().join(format!("event-redis-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&root)?;
        let mut server = RedisServer {
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
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    fn spawn(&self, binary: &Path) -> io::Result<()> {
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .arg("--dir")
            .arg(&self.root)
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
            .arg(self.root.join("server.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // The watchdog kills whichever server runs now: after a restart, another pid.
        std::fs::write(self.root.join("server.pid"), child.id().to_string())?;
        *self.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
        if let Err(error) = self.wait_for_ping(Duration::from_secs(20)) {
            self.kill();
            let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            return Err(io::Error::other(format!("{error}\nserver log:\n{log}")));
        }
        Ok(())
    }

    fn wait_for_ping(&self, timeout: Duration) -> io::Result<()> {
        let started = Instant::now();
        loop {
            if let Some(child) = self
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(io::Error::other(format!("redis-server exited ({status})")));
            }
            if self.ping().is_ok() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "redis-server did not answer PING",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ping(&self) -> io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
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

    /// Its URL, `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
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
            "cannot restart the test Redis server: {}",
            last.map_or_else(String::new, |e| e.to_string())
        );
    }

    /// The server's directory (append-only file, log).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `redis-server` on the `PATH`, in `/usr/bin`, or `$REDIS_SERVER`.
fn binary() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    dirs.extend([
        "/usr/bin".into(),
        "/usr/local/bin".into(),
        "/usr/sbin".into(),
    ]);
    dirs.into_iter()
        .map(|dir| dir.join("redis-server"))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "no redis-server binary: apt-get install redis-server (or run scripts/test.sh, \
                 which installs it), or set REDIS_SERVER to its path",
            )
        })
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
