//! The example binary as a child process: started with arguments, its output read line by
//! line, stopped with Ctrl-C (SIGINT).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `orders` process.
pub(crate) struct Example {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Example {
    /// Starts `orders` with `args` and the environment variables `envs`.
    pub(crate) fn start(args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_orders"))
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts");
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Example { child, lines }
    }

    /// The next line of output that starts with `prefix`, within 30 s.
    pub(crate) fn wait_for(&self, prefix: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("no line starting {prefix:?} within 30 s"));
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    /// The first `http://` address in `line`, without a trailing colon.
    pub(crate) fn address_in(line: &str) -> String {
        line.split_whitespace()
            .find(|word| word.starts_with("http://"))
            .expect("an address")
            .trim_end_matches(':')
            .to_owned()
    }

    /// Sends Ctrl-C (SIGINT) and waits up to 20 s for the process to exit.
    pub(crate) async fn interrupt(mut self) -> ExitStatus {
        let interrupted = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(interrupted.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after SIGINT");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
