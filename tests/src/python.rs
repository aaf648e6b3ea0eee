//! Python's `websockets` server as a peer nobody here wrote.
//!
//! The first test that needs it creates a virtualenv under `target/` and
//! installs `websockets` from PyPI into it; later runs reuse it. If Python or
//! the package cannot be had, the test fails with the reason: a missing peer
//! is never skipped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The `websockets` version the tests are written against.
const WEBSOCKETS: &str = "websockets>=14,<18";

fn venv_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = crate::target_dir().join("wslink-pyenv");
        let python = venv.join("bin").join("python");
        let ready = |p: &Path| Command::new(p).args(["-c", "import websockets"]).status().is_ok_and(|s| s.success());
        if !ready(&python) {
            let status = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
            assert!(status.is_ok_and(|s| s.success()), "python3 -m venv failed: Python 3 is required by the tests");
            // A registry hiccup should not fail the run: three tries, then the reason.
            let installed = (0..3).any(|_| {
                let status = Command::new(&python).args(["-m", "pip", "install", "--quiet", WEBSOCKETS]).status();
                status.is_ok_and(|s| s.success())
            });
            assert!(installed, "pip install {WEBSOCKETS} failed three times");
            assert!(ready(&python), "websockets is not importable after installing it");
        }
        python
    })
}

/// A running Python `websockets` echo server; killed (by its own pid) when dropped.
pub struct PythonServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl PythonServer {
    /// Starts the echo server on 127.0.0.1, with TLS when `tls` names a chain and key.
    pub fn start(tls: Option<(&Path, &Path)>) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers").join("echo_server.py");
        let mut command = Command::new(venv_python());
        command.arg(script).stdout(Stdio::piped()).stderr(Stdio::inherit());
        if let Some((cert, key)) = tls {
            command.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let mut child = command.spawn().expect("start the Python echo server");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("the server prints its port");
        let port: u16 = line.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("unexpected first line from the Python server: {line:?}")
        });
        Self { child, addr: SocketAddr::from(([127, 0, 0, 1], port)) }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
