//! What the throwaway broker servers of the tests share ([`redis_server`](crate::redis_server),
//! [`nats_server`](crate::nats_server)): one child process in a temporary directory,
//! listening on a free loopback port, started and restarted until it answers, killed by a
//! watchdog once the test process exits, its directory deleted.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A server process and its directory.
#[derive(Debug)]
pub(crate) struct Process {
    /// What it is, for messages (`redis-server`).
    name: &'static str,
    root: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
}

/// How a server is run: its command for a process (port and directory chosen), and whether
/// it answers yet.
pub(crate) trait Launch {
    fn command(&self, process: &Process) -> io::Result<Command>;
    fn ready(&self, process: &Process) -> io::Result<()>;
}

impl Process {
    /// Starts a server in a new temporary directory, on a free port (a few tries, in case
    /// another process takes the port first), with a watchdog.
    pub(crate) fn start(name: &'static str, launch: &dyn Launch) -> io::Result<Process> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let root =
            std::env::temp_dir().join(format!("event-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&root)?;
        let mut process = Process {
            name,
            root,
            port: 0,
            child: Mutex::new(None),
        };
        let mut last = None;
        for _ in 0..3 {
            process.port = free_port()?;
            match process.spawn(launch) {
                Ok(()) => {
                    watchdog(&process.root)?;
                    return Ok(process);
                }
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other(format!("{name} did not start"))))
    }

    /// Runs the server and waits (20 s at most) until it answers; its log is in the error
    /// when it does not.
    fn spawn(&self, launch: &dyn Launch) -> io::Result<()> {
        let child = launch
            .command(self)?
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        // The watchdog kills whichever server runs now: after a restart, another pid.
        std::fs::write(self.root.join("server.pid"), child.id().to_string())?;
        *self.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
        let started = Instant::now();
        loop {
            if let Some(child) = self
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(self.failed(&format!("{} exited ({status})", self.name)));
            }
            match launch.ready(self) {
                Ok(()) => return Ok(()),
                Err(error) if started.elapsed() > Duration::from_secs(20) => {
                    self.kill();
                    return Err(self.failed(&format!("{} does not answer: {error}", self.name)));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn failed(&self, what: &str) -> io::Error {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        io::Error::other(format!("{what}\nserver log:\n{log}"))
    }

    /// Its log file, in its directory.
    pub(crate) fn log(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// Its directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Its port, on 127.0.0.1.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub(crate) fn kill(&self) {
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

    /// Starts it again on the same port with the same data.
    ///
    /// # Panics
    ///
    /// When it does not start again.
    pub(crate) fn restart(&self, launch: &dyn Launch) {
        self.kill();
        // The port was just freed; a few tries in case the kernel holds it briefly.
        let mut last = None;
        for _ in 0..20 {
            match self.spawn(launch) {
                Ok(()) => return,
                Err(error) => last = Some(error),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "cannot restart the test {}: {}",
            self.name,
            last.map_or_else(String::new, |e| e.to_string())
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A process that kills the server (its pid in `root/server.pid`) and deletes `root` once
/// this process exits.
fn watchdog(root: &Path) -> io::Result<()> {
    let script = format!(
        "while kill -0 {parent} 2>/dev/null; do sleep 0.2; done; \
         kill -9 \"$(cat '{root}/server.pid')\" 2>/dev/null; rm -rf '{root}'",
        parent = std::process::id(),
        root = root.display(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
}

/// `$env`, else `name` on the `PATH` or in the usual binary directories.
pub(crate) fn find_binary(name: &str, env: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
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
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// A port free on 127.0.0.1 now.
pub(crate) fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
