//! A throwaway PostgreSQL server for tests and benchmarks, started from the binaries of the
//! Debian `postgresql` package (`/usr/lib/postgresql/*/bin`), never a server already running.
//!
//! The server lives in a new temporary directory: its data, its log and its Unix socket. It
//! listens on 127.0.0.1 only, on a free port, and trusts every local connection (user
//! `postgres`, no password). It stops, and its directory is deleted, when the
//! [`PostgresServer`] is dropped or, for one kept in a `static` ([`PostgresServer::shared`]),
//! when the test process ends: a small watchdog process waits for the test process to exit,
//! then stops the server (`pg_ctl stop -m immediate`), so even a process that aborts leaves
//! no server behind.
//!
//! `initdb` refuses to run as root, so when the tests run as root (containers, CI) the
//! server's programs run as the `postgres` system user (`runuser -u postgres`), and the
//! directory is handed to that user.
//!
//! ```no_run
//! use tests::postgres_server::PostgresServer;
//!
//! let server = PostgresServer::shared();
//! let url = server.create_database(); // a new empty database per test
//! assert!(url.starts_with("host=127.0.0.1"));
//! ```

use crate::server::free_port;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A PostgreSQL server this process started, on 127.0.0.1.
#[derive(Debug)]
pub struct PostgresServer {
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    /// How long `initdb` plus `pg_ctl start` took.
    started_in: Duration,
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl PostgresServer {
    /// One server for the whole test process, started on first use, stopped when the
    /// process ends.
    ///
    /// # Panics
    ///
    /// When the server cannot start (PostgreSQL not installed: `apt-get install
    /// postgresql`, or `scripts/test.sh` which installs it), with the reason.
    pub fn shared() -> &'static PostgresServer {
        static SHARED: OnceLock<PostgresServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            PostgresServer::start()
                .unwrap_or_else(|error| panic!("cannot start a test PostgreSQL server: {error}"))
        })
    }

    /// Starts a new server, with `fsync` on (as in production).
    ///
    /// # Errors
    ///
    /// When no PostgreSQL binaries are found, or `initdb` or `pg_ctl start` fail (their
    /// output and the server log are in the error).
    pub fn start() -> io::Result<PostgresServer> {
        let started = Instant::now();
        let bin = find_bin()?;
        let as_postgres = running_as_root();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let root =
            std::env::temp_dir().join(format!("event-store-pg-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&root)?;
        if as_postgres {
            check(
                Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(&root)
                    .output()?,
                "chown postgres",
            )?;
        }
        let data = root.join("data");
        let mut server = PostgresServer {
            root,
            data,
            bin,
            port: 0,
            as_postgres,
            started_in: Duration::ZERO,
        };
        server.watchdog()?;
        let output = server
            .program("initdb")
            .arg("-D")
            .arg(&server.data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
            .output()?;
        check(output, "initdb")?;
        // A port someone else takes between here and the start makes the start fail:
        // try a few.
        let mut last = None;
        for _ in 0..3 {
            server.port = free_port()?;
            match server.pg_ctl_start() {
                Ok(()) => {
                    server.started_in = started.elapsed();
                    return Ok(server);
                }
                Err(error) => last = Some(error),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("pg_ctl start failed")))
    }

    fn pg_ctl_start(&self) -> io::Result<()> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=300",
            self.port,
            self.root.display()
        );
        let output = self
            .program("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.root.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()?;
        check(output, "pg_ctl start").map(drop).map_err(|error| {
            let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            io::Error::other(format!("{error}\nserver log:\n{log}"))
        })
    }

    /// A process that stops the server and deletes its directory once this process exits.
    fn watchdog(&self) -> io::Result<()> {
        let stop = self.stop_command();
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; {stop} >/dev/null 2>&1; rm -rf '{root}'",
            pid = std::process::id(),
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

    fn stop_command(&self) -> String {
        let pg_ctl = format!(
            "'{}' stop -D '{}' -m immediate -w",
            self.bin.join("pg_ctl").display(),
            self.data.display()
        );
        if self.as_postgres {
            format!("runuser -u postgres -- {pg_ctl}")
        } else {
            pg_ctl
        }
    }

    /// A server program, run as `postgres` when this process is root.
    fn program(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.stdin(Stdio::null()).current_dir(&self.root);
        command
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// How long `initdb` and the start took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// A connection string (key=value form) for database `dbname`.
    pub fn connection_string(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname}",
            self.port
        )
    }

    /// A connection string of this module (`host=... port=... user=... dbname=...`) as a
    /// URL, `postgres://user@host:port/dbname`, for clients that take URLs only (sqlx).
    ///
    /// # Panics
    ///
    /// When one of the four fields is missing: not a string of this module.
    pub fn url(connection_string: &str) -> String {
        let field = |name: &str| {
            connection_string
                .split_whitespace()
                .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {name} in {connection_string:?}"))
        };
        format!(
            "postgres://{}@{}:{}/{}",
            field("user"),
            field("host"),
            field("port"),
            field("dbname")
        )
    }

    /// Creates a new, empty database with a unique name and returns its connection string.
    ///
    /// # Panics
    ///
    /// When `createdb` fails, with its output.
    pub fn create_database(&self) -> String {
        let name = format!("test_{}", DATABASES.fetch_add(1, Relaxed));
        let output = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .arg(&name)
            .stdin(Stdio::null())
            .output()
            .and_then(|output| check(output, "createdb"));
        if let Err(error) = output {
            panic!("cannot create a test database: {error}");
        }
        self.connection_string(&name)
    }

    /// Stops the server now (`pg_ctl stop -m immediate`) and deletes its directory.
    pub fn stop(&self) {
        let _ = Command::new("sh")
            .args(["-c", &self.stop_command()])
            .stdin(Stdio::null())
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }

    /// The server's directory (data, log, socket).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of the PostgreSQL programs the server runs from (`initdb`, `pg_ctl`,
    /// and the clients of the same version: `pg_dump`, `psql`). The clients connect over
    /// TCP as user `postgres` (trusted), so they need not run as that system user.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`, or `$PG_BIN`.
fn find_bin() -> io::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("no /usr/lib/postgresql ({error}): apt-get install postgresql"),
            )
        })?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "no /usr/lib/postgresql/*/bin/initdb: apt-get install postgresql",
        )
    })
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

fn check(output: Output, what: &str) -> io::Result<Output> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(io::Error::other(format!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )))
    }
}
