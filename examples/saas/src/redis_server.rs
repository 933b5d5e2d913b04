//! A throwaway `redis-server` for one run: on 127.0.0.1, on a free port, in a temporary
//! directory, keeping nothing on disk. It is killed when the [`RedisServer`] is dropped,
//! on success and on failure alike.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to get Redis when it is missing.
pub const INSTALL_HINT: &str = "redis-server not found on the PATH or in /usr/bin.\n\
     Install it (Debian, Ubuntu: `sudo apt-get install redis-server`; macOS: `brew install redis`),\n\
     or run the same flow in one process without Redis: `cargo run -p saas -- --in-memory`.";

/// Why the server did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No `redis-server` binary.
    #[error("{INSTALL_HINT}")]
    NotInstalled,
    /// It did not start, or did not answer.
    #[error("redis-server did not start: {0}")]
    Io(#[from] io::Error),
}

/// A `redis-server` this process started; killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
    // Deleted after the server is killed (fields drop in order, after `Drop::drop`).
    _dir: tempfile::TempDir,
}

/// `redis-server` on the `PATH` or in `/usr/bin`.
pub fn find() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
    dirs.push("/usr/bin".into());
    dirs.into_iter()
        .map(|dir| dir.join("redis-server"))
        .find(|path| path.is_file())
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    ///
    /// # Errors
    ///
    /// [`StartError::NotInstalled`] without a `redis-server`; [`StartError::Io`] when it
    /// exits or stays silent (its log is in the error).
    pub fn start() -> Result<RedisServer, StartError> {
        let binary = find().ok_or(StartError::NotInstalled)?;
        let dir = tempfile::Builder::new().prefix("saas-redis-").tempdir()?;
        // The port is free when we look; should another process take it before the server
        // binds it, the server exits and we say so.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = dir.path().join("redis.log");
        let child = Command::new(binary)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(dir.path())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut server = RedisServer {
            child,
            port,
            _dir: dir,
        };
        if let Err(error) = server.wait_until_up(Duration::from_secs(10)) {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(io::Error::other(format!("{error}; its log:\n{log}")).into());
        }
        Ok(server)
    }

    /// Its URL, `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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

    fn ping(&self) -> io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"PING\r\n")?;
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply)?;
        if &reply == b"+PONG\r\n" {
            Ok(())
        } else {
            Err(io::Error::other(
                String::from_utf8_lossy(&reply).into_owned(),
            ))
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
