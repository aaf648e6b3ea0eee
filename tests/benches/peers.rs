//! wslink beside the Rust WebSocket clients users would pick instead, in one run.
//!
//! `cargo bench -p wslink-tests --bench peers` prints one table (median of
//! several runs per cell) and writes every raw line to `target/bench-peers.txt`.
//!
//! One server process (tokio current-thread, pinned to CPU 1 with `taskset`
//! when present) serves every client: it floods pre-encoded frames, echoes, or
//! holds idle connections, chosen by the request path. Each measurement is a
//! fresh client process (pinned to CPU 0; for the one-core round trips, to
//! the server's CPU) so that no run inherits another's
//! allocator state; it reports wall time and its own CPU time (the sum of
//! `/proc/self/task/*/schedstat`, in nanoseconds, all threads included).
//! The runs of a row are interleaved across the peers, so that the machine's
//! drift does not favour whichever peer ran in a quiet minute. Results are
//! printed, never asserted.

// Timing a benchmark is what the clock is for here.
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// wslink's `Client` (a driver task beside the consumer), wslink's
/// `InlineClient` (the connection driven in the consumer's task), and the peers.
const PEERS: &[&str] = &[
    "wslink-tokio",
    "wslink-smol",
    "wslink-tokio-inline",
    "wslink-smol-inline",
    "tokio-tungstenite",
    "tokio-websockets",
    "fastwebsockets",
    "async-tungstenite",
];
/// Flood cells swing by a quarter from run to run on this machine: five runs each.
const RUNS: usize = 5;
/// Round trips take a second a run and swing more than floods from run to run.
const RTT_RUNS: usize = 7;
/// Where clients run: beside the server's CPU, or on it.
const CLIENT_CPU: usize = 0;
const SERVER_CPU: usize = 1;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--serve") => server::run(),
        Some("--client") => client::run(&args[2..]),
        _ => orchestrate(),
    }
}

/// The wslink clients also measured from an earlier build of this bench
/// when `WSLINK_BENCH_BEFORE` names its binary ("before:" + the client), so
/// that a change's before and after share one run and one server.
const BEFORE: &[&str] =
    &["before:wslink-tokio", "before:wslink-smol", "before:wslink-tokio-inline", "before:wslink-tokio+record"];

/// `peers`, and the earlier build's clients when one is named.
fn with_before(peers: &[&'static str]) -> Vec<&'static str> {
    let before = std::env::var_os("WSLINK_BENCH_BEFORE").is_some();
    let earlier = BEFORE.iter().copied().filter(|b| before && peers.contains(&&b["before:".len()..]));
    peers.iter().copied().chain(earlier).collect()
}

fn pinned(cpu: usize) -> Command {
    pinned_exe(cpu, std::env::current_exe().expect("own path"))
}

/// `exe` pinned to `cpu` (when the machine has a second one to keep apart).
fn pinned_exe(cpu: usize, exe: std::path::PathBuf) -> Command {
    if std::path::Path::new("/usr/bin/taskset").exists()
        && std::thread::available_parallelism().map_or(1, |n| n.get()) > 1
    {
        let mut c = Command::new("/usr/bin/taskset");
        c.arg("-c").arg(cpu.to_string()).arg(exe);
        c
    } else {
        Command::new(exe)
    }
}

/// One measurement: a client process's report line, parsed.
#[derive(Debug, Clone, Default)]
struct Report {
    messages: u64,
    wall_ns: u64,
    cpu_ns: u64,
    p50_ns: u64,
    p99_ns: u64,
    rss_kib: u64,
    /// Bytes a recording of the run took on disk (recording rows only).
    disk_bytes: u64,
    /// Lines the recorder dropped (recording rows only).
    dropped: u64,
}

fn measure(port: u16, cpu: usize, peer: &str, workload: &str, raw: &mut std::fs::File) -> Option<Report> {
    // An earlier build's client runs from its own binary, under the same name.
    let (command, client) = match peer.strip_prefix("before:") {
        Some(client) => {
            let exe = std::env::var_os("WSLINK_BENCH_BEFORE").expect("WSLINK_BENCH_BEFORE names the earlier build");
            (pinned_exe(cpu, exe.into()), client)
        }
        None => (pinned(cpu), peer),
    };
    let mut child = command;
    let mut child = child
        .args(["--client", client, workload, &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run a client process");
    // A client that hangs is killed (by its own handle) and counted as failed.
    // Every measured run takes a few seconds at most; opening 10 000 idle
    // connections takes longer.
    let limit = if workload.starts_with("idle") { 60 } else { 15 };
    let deadline = Instant::now() + Duration::from_secs(limit);
    let status = loop {
        match child.try_wait().expect("child status") {
            Some(status) => break Some(status),
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let mut line = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut out, &mut line);
    }
    let line = line.trim().to_owned();
    let _ = writeln!(raw, "{peer} {workload} cpu{cpu} {line}");
    if !status.is_some_and(|s| s.success()) || !line.starts_with("ok") {
        eprintln!("  {peer} {workload}: failed: {line}");
        return None;
    }
    let field =
        |k: &str| line.split_whitespace().find_map(|f| f.strip_prefix(k).and_then(|v| v.parse().ok())).unwrap_or(0);
    Some(Report {
        messages: field("messages="),
        wall_ns: field("wall_ns="),
        cpu_ns: field("cpu_ns="),
        p50_ns: field("p50_ns="),
        p99_ns: field("p99_ns="),
        rss_kib: field("rss_kib="),
        disk_bytes: field("disk_bytes="),
        dropped: field("dropped="),
    })
}

/// One table cell: medians of CPU per message and, by workload, rate or latency.
fn describe(workload: &str, reports: &[Report]) -> String {
    let med = |f: &dyn Fn(&Report) -> f64| median(reports.iter().map(f).collect());
    let cpu = med(&|r| r.cpu_ns as f64 / r.messages as f64);
    let rate = med(&|r| r.messages as f64 / (r.wall_ns as f64 / 1e9));
    if workload.contains("rtt") {
        let (p50, p99) = (med(&|r| r.p50_ns as f64), med(&|r| r.p99_ns as f64));
        format!("p50 {:.1} us, p99 {:.1} us, {cpu:.0} ns cpu/rt", p50 / 1e3, p99 / 1e3)
    } else if workload.starts_with("echo") {
        format!("{:.0} k rt/s, {cpu:.0} ns cpu/rt", rate / 1e3)
    } else if reports.iter().any(|r| r.disk_bytes > 0) {
        let disk = med(&|r| r.disk_bytes as f64 / r.messages as f64);
        let dropped = reports.iter().map(|r| r.dropped).max().unwrap_or(0);
        format!("{cpu:.0} ns cpu/msg, {:.2} M msg/s, {disk:.0} B/msg on disk, {dropped} lines dropped", rate / 1e6)
    } else {
        format!("{cpu:.0} ns cpu/msg, {:.2} M msg/s", rate / 1e6)
    }
}

/// A cell's text, or why it has none.
fn cell_text(workload: &str, reports: Option<Vec<Report>>) -> String {
    match reports {
        Some(reports) => describe(workload, &reports),
        None => "failed (see the raw lines)".to_owned(),
    }
}

/// `runs` measurements of each peer, taken in turn (one run of every peer,
/// then the next round) so that the machine's drift falls on all of them
/// alike. A peer's cell is `None` after its first failure (it is not retried).
fn interleaved(
    port: u16,
    cpu: usize,
    peers: &[&str],
    workload: &str,
    runs: usize,
    raw: &mut std::fs::File,
) -> Vec<Option<Vec<Report>>> {
    let mut cells: Vec<Option<Vec<Report>>> = vec![Some(Vec::new()); peers.len()];
    for _ in 0..runs {
        for (peer, cell) in peers.iter().zip(&mut cells) {
            if let Some(reports) = cell {
                match measure(port, cpu, peer, workload, raw) {
                    Some(report) => reports.push(report),
                    None => *cell = None,
                }
            }
        }
    }
    cells
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn orchestrate() {
    let mut server = pinned(SERVER_CPU).arg("--serve").stdout(Stdio::piped()).spawn().expect("start the bench server");
    let mut first = String::new();
    BufReader::new(server.stdout.take().expect("piped")).read_line(&mut first).expect("server port");
    let port: u16 = first.trim().strip_prefix("PORT ").and_then(|p| p.parse().ok()).expect("PORT line");
    let raw_path = wslink_tests::target_dir().join("bench-peers.txt");
    let mut raw = std::fs::File::create(&raw_path).expect("raw results file");
    let started = Instant::now();

    let mut rows: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let flood = [
        ("flood 16 B text", "flood/16/text/1000000"),
        ("flood 256 B text", "flood/256/text/1000000"),
        ("flood 16 B binary", "flood/16/binary/1000000"),
        ("flood 256 B binary", "flood/256/binary/1000000"),
        ("flood 4 KiB binary", "flood/4096/binary/200000"),
        ("flood 64 KiB binary", "flood/65536/binary/20000"),
        ("flood 256 B JSON, each different", "flood/256/json/1000000"),
    ];
    // The recorder's and the metrics' cost: the same flood with and without them.
    let recorded: &[&str] = &["wslink-tokio", "wslink-tokio+record"];
    let measured: &[&str] = &["wslink-tokio", "wslink-tokio+metrics"];
    let workloads = flood.into_iter().map(|(title, w)| (title, w, CLIENT_CPU, RUNS, PEERS)).chain([
        ("echo pipelined x64", "echo/pipelined", CLIENT_CPU, RUNS, PEERS),
        ("rtt 32 B, client and server on two cores", "echo/rtt", CLIENT_CPU, RTT_RUNS, PEERS),
        ("rtt 32 B, client and server on one core", "echo/rtt", SERVER_CPU, RTT_RUNS, PEERS),
        // Each send awaited before the echo is awaited (the sink peers always do).
        ("rtt 32 B, awaited send one at a time, two cores", "echo/rtt-awaited", CLIENT_CPU, RTT_RUNS, PEERS),
        ("flood 256 B binary (200 000), recording to a file", "flood/256/binary/200000", CLIENT_CPU, RUNS, recorded),
        (
            "flood 256 B binary (200 000), metrics to a Prometheus recorder",
            "flood/256/binary/200000",
            CLIENT_CPU,
            RUNS,
            measured,
        ),
    ]);
    for (title, workload, cpu, runs, peers) in workloads {
        eprintln!("{title} ...");
        let peers = &with_before(peers)[..];
        let cells = interleaved(port, cpu, peers, workload, runs, &mut raw);
        let cells = peers.iter().zip(cells).map(|(peer, cell)| (peer.to_string(), cell_text(workload, cell)));
        rows.push((title.to_owned(), cells.collect()));
    }

    // permessage-deflate: the same JSON compressed; no peer here speaks it.
    let title = "flood 256 B JSON, permessage-deflate";
    eprintln!("{title} ...");
    let speakers: Vec<&str> = PEERS.iter().copied().filter(|p| p.starts_with("wslink")).collect();
    let mut results = interleaved(port, CLIENT_CPU, &speakers, "flood/256/json-deflate/1000000", RUNS, &mut raw);
    let mut cells = Vec::new();
    for peer in PEERS {
        let text = match speakers.iter().position(|s| s == peer) {
            Some(i) => cell_text("flood", results[i].take()),
            None => "no permessage-deflate".to_owned(),
        };
        cells.push((peer.to_string(), text));
    }
    let (plain, compressed) = (json_frames(false), json_frames(true));
    let wire = |frames: &[Vec<u8>]| frames.iter().map(Vec::len).sum::<usize>() as f64 / frames.len() as f64;
    cells.push((
        "bytes on the wire".to_owned(),
        format!("{:.1} per message (plain {:.1})", wire(&compressed), wire(&plain)),
    ));
    rows.push((title.to_owned(), cells));

    eprintln!("idle 10 000 connections ...");
    let mut cells = Vec::new();
    for peer in with_before(&["wslink-tokio", "tokio-tungstenite", "tokio-websockets", "fastwebsockets"]) {
        let text = match measure(port, CLIENT_CPU, peer, "idle/10000", &mut raw) {
            Some(r) => format!("{:.1} KB/conn", r.rss_kib as f64 * 1024.0 / 1000.0 / r.messages.max(1) as f64),
            None => "failed".to_owned(),
        };
        cells.push((peer.to_string(), text));
    }
    rows.push(("idle (RSS per connection)".to_owned(), cells));
    // Compression state is allocated on first use: each connection here has
    // received one compressed message and sent one, so both are counted.
    let text = match measure(port, CLIENT_CPU, "wslink-tokio", "idle-deflate/10000", &mut raw) {
        Some(r) => format!("{:.1} KB/conn", r.rss_kib as f64 * 1024.0 / 1000.0 / r.messages.max(1) as f64),
        None => "failed".to_owned(),
    };
    rows.push(("idle with permessage-deflate in use both ways".to_owned(), vec![("wslink-tokio".to_owned(), text)]));

    let _ = server.kill();
    let _ = server.wait();
    println!(
        "\nwslink beside its peers: median of {RUNS} runs ({RTT_RUNS} for rtt), runs of each row interleaved, \
         client on CPU {CLIENT_CPU} (rtt on one core: CPU {SERVER_CPU}), server on CPU {SERVER_CPU} ({:.0} s)",
        started.elapsed().as_secs_f64()
    );
    for (title, cells) in rows {
        println!("\n{title}");
        for (peer, text) in cells {
            println!("  {peer:<20} {text}");
        }
    }
    println!("\nraw lines: {}", raw_path.display());
}

/// 1024 different 256-byte JSON book updates as server frames, compressed
/// (permessage-deflate, one context for the whole sequence) or not. Replayed
/// in a cycle, the compressed frames still inflate: each refers only to
/// messages before it in the cycle, which the client has just inflated again.
fn json_frames(deflate: bool) -> Vec<Vec<u8>> {
    // Made once per process: the idle server sends one to each of 10 000 clients.
    static FRAMES: std::sync::OnceLock<[Vec<Vec<u8>>; 2]> = std::sync::OnceLock::new();
    FRAMES.get_or_init(|| [make_json_frames(false), make_json_frames(true)])[usize::from(deflate)].clone()
}

fn make_json_frames(deflate: bool) -> Vec<Vec<u8>> {
    let mut compressor = wslink_tests::ServerDeflate::new(6, 15);
    (0..1024u64)
        .map(|i| {
            let (bid, ask) = (60_000 + (i * 7919) % 500, 60_500 + (i * 104_729) % 500);
            let mut json = format!(
                r#"{{"channel":"book.BTC-PERPETUAL.100ms","data":{{"change_id":{},"ts":{},"bids":[[{bid}.5,{}]],"asks":[[{ask}.0,{}]],"pad":""#,
                7_000_000 + i,
                1_763_000_000_000u64 + i * 100,
                (i * 31) % 97,
                (i * 17) % 89
            );
            while json.len() < 254 {
                json.push('.');
            }
            json.push_str("\"}}");
            let json = json.into_bytes();
            if deflate {
                wslink_tests::compressed_frame(true, 1, &compressor.message([&json[..]]))
            } else {
                wslink_tests::server_frame(true, 1, &json)
            }
        })
        .collect()
}

/// The server: never the bottleneck, the same for every client.
mod server {
    use std::sync::{Arc, Mutex};

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    /// Reads and drops what the client sends until it hangs up (its masked
    /// frames go unparsed: a flood's server has nothing to answer).
    async fn drain(stream: &mut tokio::net::TcpStream) {
        let mut sink = [0u8; 4096];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                return;
            }
        }
    }

    // The error type is tungstenite's callback signature, not ours to shrink.
    #[allow(clippy::result_large_err)]
    pub(crate) fn run() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            println!("PORT {}", listener.local_addr().expect("addr").port());
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                let _ = tcp.set_nodelay(true);
                let path = Arc::new(Mutex::new(String::new()));
                let seen = path.clone();
                let callback = move |req: &Request, mut resp: Response| {
                    *seen.lock().expect("lock") = req.uri().path().to_owned();
                    if req.uri().path().contains("deflate") {
                        let agree = "permessage-deflate".parse().expect("header value");
                        resp.headers_mut().insert("Sec-WebSocket-Extensions", agree);
                    }
                    Ok(resp)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else { continue };
                let path = path.lock().expect("lock").clone();
                let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
                match parts.as_slice() {
                    ["flood", size, kind, count] => {
                        let (size, count): (usize, u64) = (size.parse().unwrap_or(16), count.parse().unwrap_or(0));
                        let opcode = if *kind == "binary" { 2 } else { 1 };
                        let payload: Vec<u8> = if opcode == 1 {
                            let pattern = br#"{"ch":"trades","px":101.25,"qty":3}"#;
                            pattern.iter().cycle().take(size).copied().collect()
                        } else {
                            vec![0x5a; size]
                        };
                        // A cycle of frames: one frame repeated, or the 1024 JSON updates.
                        let cycle = match *kind {
                            "json" | "json-deflate" => super::json_frames(*kind == "json-deflate"),
                            _ => vec![wslink_tests::server_frame(true, opcode, &payload)],
                        };
                        // One write is whole cycles, about 256 KiB of them; the rest
                        // of `count` goes out frame by frame from the cycle's start.
                        let cycle_bytes: usize = cycle.iter().map(Vec::len).sum();
                        let cycles_per_write = (256 * 1024 / cycle_bytes).max(1);
                        let per_write = (cycles_per_write * cycle.len()) as u64;
                        let chunk = cycle.concat().repeat(cycles_per_write);
                        tokio::spawn(async move {
                            // Flood once the client asks, as a feed starts after a subscribe.
                            if !matches!(ws.next().await, Some(Ok(_))) {
                                return;
                            }
                            let stream = ws.get_mut();
                            let mut sent = 0u64;
                            while sent + per_write <= count {
                                if stream.write_all(&chunk).await.is_err() {
                                    return;
                                }
                                sent += per_write;
                            }
                            let rest: Vec<u8> =
                                cycle.iter().cycle().take((count - sent) as usize).flatten().copied().collect();
                            if stream.write_all(&rest).await.is_err() {
                                return;
                            }
                            drain(stream).await;
                        });
                    }
                    ["idle"] => held.push(tokio::spawn(async move { while let Some(Ok(_)) = ws.next().await {} })),
                    ["idle-deflate"] => held.push(tokio::spawn(async move {
                        // One compressed message, then the client's (compressed) bytes are
                        // read and dropped: tungstenite's reader would refuse RSV1.
                        let stream = ws.get_mut();
                        let first = super::json_frames(true).swap_remove(0);
                        if stream.write_all(&first).await.is_err() {
                            return;
                        }
                        drain(stream).await;
                    })),
                    _ => {
                        tokio::spawn(async move {
                            while let Some(Ok(m)) = ws.next().await {
                                if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                                    return;
                                }
                            }
                        });
                    }
                }
            }
        });
    }
}

/// The client side of each measurement, one library at a time.
mod client {
    use super::*;
    use std::sync::Mutex;

    /// CPU and wall time when the connection opened: setup is not measured.
    static START: Mutex<Option<(u64, Instant)>> = Mutex::new(None);

    /// CPU and wall time when the last message arrived.
    static END: Mutex<Option<(u64, Instant)>> = Mutex::new(None);

    /// Bytes on disk and lines dropped by the recording of a `+record` run.
    pub(crate) static RECORDED: Mutex<(u64, u64)> = Mutex::new((0, 0));

    /// Called by each client when its last message has arrived.
    pub(crate) fn mark_end() {
        *END.lock().expect("lock") = Some((cpu_ns(), Instant::now()));
    }

    /// Called by each client once connected.
    pub(crate) fn mark_start() {
        *START.lock().expect("lock") = Some((cpu_ns(), Instant::now()));
    }

    fn cpu_ns() -> u64 {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    fn rss_kib() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4
    }

    pub(crate) fn run(args: &[String]) {
        let (peer, workload, port) = (&args[0], &args[1], &args[2]);
        let url = format!("ws://127.0.0.1:{port}/{workload}");
        let parts: Vec<&str> = workload.split('/').collect();
        let kind = parts[0];
        let count: u64 = match kind {
            "flood" => parts[3].parse().expect("count"),
            "idle" | "idle-deflate" => parts[1].parse().expect("count"),
            // WSLINK_BENCH_RTT: another count, for marginal instruction
            // counts under callgrind (a run of 30 000 less one of 10 000).
            _ if workload.contains("rtt") => {
                std::env::var("WSLINK_BENCH_RTT").ok().and_then(|n| n.parse().ok()).unwrap_or(20_000)
            }
            _ => 100_000,
        };
        let url = if kind.starts_with("idle") { format!("ws://127.0.0.1:{port}/{kind}") } else { url };
        let rss0 = rss_kib();
        let mut rtts = match (peer.as_str(), kind) {
            (_, "idle" | "idle-deflate") => {
                super::peers::idle(peer, &url, count);
                Vec::new()
            }
            _ => super::peers::run(peer, kind, workload.contains("rtt"), workload.ends_with("awaited"), &url, count),
        };
        let (cpu0, start) = START.lock().expect("lock").unwrap_or((cpu_ns(), Instant::now()));
        let (cpu1, end) = END.lock().expect("lock").unwrap_or((cpu_ns(), Instant::now()));
        let (wall, cpu) = (end.saturating_duration_since(start), cpu1.saturating_sub(cpu0));
        rtts.sort_unstable();
        let pct = |p: f64| rtts.get(((rtts.len() as f64 * p) as usize).min(rtts.len().saturating_sub(1))).copied();
        let (disk, dropped) = *RECORDED.lock().expect("lock");
        println!(
            "ok messages={count} wall_ns={} cpu_ns={cpu} p50_ns={} p99_ns={} rss_kib={} disk_bytes={disk} dropped={dropped}",
            wall.as_nanos(),
            pct(0.5).map_or(0, |d: Duration| d.as_nanos()),
            pct(0.99).map_or(0, |d: Duration| d.as_nanos()),
            rss_kib().saturating_sub(rss0)
        );
    }
}

/// Each library's flood, echo and idle clients.
mod peers {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use wslink_tokio::{Message, SessionEvent};

    const RTT_PAYLOAD: &[u8] = &[7u8; 32];
    const DEPTH: u64 = 64;

    fn tokio_rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
    }

    /// Runs `kind` ("flood" or "echo") and returns round trips when `rtt`;
    /// wslink awaits each send when `awaited` (the other peers always do).
    pub(crate) fn run(peer: &str, kind: &str, rtt: bool, awaited: bool, url: &str, count: u64) -> Vec<Duration> {
        // The server agrees to permessage-deflate on these paths only.
        let deflate = url.contains("deflate");
        match peer {
            "wslink-tokio" => tokio_rt().block_on(wslink(
                wslink_tokio::Builder::new(url).expect("url"),
                deflate,
                kind,
                rtt,
                awaited,
                count,
            )),
            "wslink-tokio-inline" => tokio_rt().block_on(wslink_inline(
                wslink_tokio::Builder::new(url).expect("url"),
                deflate,
                kind,
                rtt,
                awaited,
                count,
            )),
            // No executor needed: the connection runs in `block_on`'s own task.
            "wslink-smol-inline" => smol::block_on(wslink_inline(
                wslink_smol::Builder::new(url).expect("url"),
                deflate,
                kind,
                rtt,
                awaited,
                count,
            )),
            "wslink-tokio+record" => {
                let path = wslink_tests::target_dir().join(format!("bench-recording-{}.wslink", std::process::id()));
                let (recorder, file) = wslink_tokio::FileRecorder::create(&path, 4 << 30).expect("recording file");
                let b = wslink_tokio::Builder::new(url).expect("url").record(recorder);
                // The runtime, and with it the client and its recorder, is gone when `block_on` returns.
                let rtts = tokio_rt().block_on(wslink(b, deflate, kind, rtt, awaited, count));
                let dropped = file.finish().expect("recording written");
                let disk = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                let _ = std::fs::remove_file(&path);
                *super::client::RECORDED.lock().expect("lock") = (disk, dropped);
                rtts
            }
            "wslink-tokio+metrics" => {
                // The pushed metrics' cost (feature `metrics`): a Prometheus
                // recorder installed, as a service would, so every handle is live.
                let _page = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().expect("recorder");
                let b = wslink_tokio::Builder::new(url).expect("url");
                tokio_rt().block_on(wslink(b, deflate, kind, rtt, awaited, count))
            }
            "wslink-smol" => {
                // Driver and consumer on one executor in `block_on`, on this
                // thread, as async-tungstenite's single task is: with the
                // driver on smol's global executor (the default) every batch
                // would cross threads.
                let ex = std::sync::Arc::new(smol::Executor::new());
                let spawn_on = ex.clone();
                let b =
                    wslink_smol::Builder::new(url).expect("url").spawn_with(move |task| spawn_on.spawn(task).detach());
                smol::block_on(ex.run(wslink(b, deflate, kind, rtt, awaited, count)))
            }
            "tokio-tungstenite" => tokio_rt().block_on(async {
                let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
                sink_stream(
                    ws,
                    kind,
                    rtt,
                    count,
                    |m: &tokio_tungstenite::tungstenite::Message| m.is_text() || m.is_binary(),
                    || tokio_tungstenite::tungstenite::Message::binary(RTT_PAYLOAD.to_vec()),
                )
                .await
            }),
            "async-tungstenite" => smol::block_on(async {
                let host = url.trim_start_matches("ws://").split('/').next().expect("host").to_owned();
                let tcp = async_net::TcpStream::connect(host).await.expect("tcp");
                tcp.set_nodelay(true).expect("nodelay");
                let (ws, _) = async_tungstenite::client_async(url, tcp).await.expect("connect");
                sink_stream(
                    ws,
                    kind,
                    rtt,
                    count,
                    |m: &async_tungstenite::tungstenite::Message| m.is_text() || m.is_binary(),
                    || async_tungstenite::tungstenite::Message::binary(RTT_PAYLOAD.to_vec()),
                )
                .await
            }),
            "tokio-websockets" => tokio_rt().block_on(async {
                let uri = url.parse().expect("uri");
                let (ws, _) = tokio_websockets::ClientBuilder::from_uri(uri).connect().await.expect("connect");
                sink_stream(
                    ws,
                    kind,
                    rtt,
                    count,
                    |m: &tokio_websockets::Message| m.is_text() || m.is_binary(),
                    || tokio_websockets::Message::binary(RTT_PAYLOAD.to_vec()),
                )
                .await
            }),
            "fastwebsockets" => tokio_rt().block_on(fastws(url, kind, rtt, count)),
            other => panic!("unknown peer {other}"),
        }
    }

    /// What the bench asks of a wslink client, with its handles apart
    /// (`Client` and `Events`) or in one (`InlineClient`).
    trait Link {
        async fn next(&mut self) -> Option<SessionEvent>;
        /// Hands a message over without waiting for the session's answer.
        fn post(&self, payload: wslink_tokio::Bytes);
        /// Sends a message and waits for the session's answer.
        async fn send(&mut self, payload: wslink_tokio::Bytes);
    }

    impl Link for (wslink_adapter::Client, wslink_adapter::Events) {
        async fn next(&mut self) -> Option<SessionEvent> {
            self.1.recv().await
        }
        fn post(&self, payload: wslink_tokio::Bytes) {
            self.0.try_send_binary(payload).expect("handed over");
        }
        async fn send(&mut self, payload: wslink_tokio::Bytes) {
            self.0.send_binary(payload).await.expect("sent");
        }
    }

    impl Link for wslink_adapter::InlineClient {
        async fn next(&mut self) -> Option<SessionEvent> {
            self.recv().await
        }
        fn post(&self, payload: wslink_tokio::Bytes) {
            self.try_send_binary(payload).expect("handed over");
        }
        async fn send(&mut self, payload: wslink_tokio::Bytes) {
            self.send_binary(payload).await.expect("sent");
        }
    }

    async fn wslink<R: wslink_adapter::Runtime>(
        b: wslink_adapter::Builder<R>,
        deflate: bool,
        kind: &str,
        rtt: bool,
        awaited: bool,
        count: u64,
    ) -> Vec<Duration> {
        let b = if deflate { b.compression(Some(wslink_tokio::DeflateConfig::default())) } else { b };
        drive(b.connect().await.expect("connect"), kind, rtt, awaited, count).await
    }

    /// As `wslink`, with the connection driven in this task (`InlineClient`).
    async fn wslink_inline<R: wslink_adapter::Runtime>(
        b: wslink_adapter::Builder<R>,
        deflate: bool,
        kind: &str,
        rtt: bool,
        awaited: bool,
        count: u64,
    ) -> Vec<Duration> {
        let b = if deflate { b.compression(Some(wslink_tokio::DeflateConfig::default())) } else { b };
        drive(b.connect_inline().await.expect("connect"), kind, rtt, awaited, count).await
    }

    /// A flood or an echo over a connected wslink client.
    async fn drive(mut link: impl Link, kind: &str, rtt: bool, awaited: bool, count: u64) -> Vec<Duration> {
        super::client::mark_start();
        let mut rtts = Vec::new();
        let mut got = 0u64;
        let payload = wslink_tokio::Bytes::from_static(RTT_PAYLOAD);
        let depth = if kind == "flood" || rtt { 1 } else { DEPTH };
        // `post` hands each message to the driver without waiting for the
        // session's answer (a refusal would arrive as an event); at most
        // DEPTH are in flight, well under the command queue's 256.
        for _ in 0..depth {
            link.post(payload.clone());
        }
        let mut sent_at = Instant::now();
        while got < count {
            match link.next().await {
                Some(SessionEvent::Message(m)) => {
                    std::hint::black_box(&m);
                    let _ = matches!(m, Message::Text(_));
                    got += 1;
                    if kind == "echo" {
                        if rtt {
                            rtts.push(sent_at.elapsed());
                            sent_at = Instant::now();
                        }
                        if got + if rtt { 0 } else { DEPTH - 1 } < count {
                            if awaited {
                                link.send(payload.clone()).await;
                            } else {
                                link.post(payload.clone());
                            }
                        }
                    }
                }
                Some(_) => {}
                None => panic!("stream ended after {got}"),
            }
        }
        super::client::mark_end();
        // Dropping the handles closes in the background, as the other clients' close() does.
        drop(link);
        rtts
    }

    async fn sink_stream<S, M, E>(
        mut ws: S,
        kind: &str,
        rtt: bool,
        count: u64,
        is_data: impl Fn(&M) -> bool,
        make: impl Fn() -> M,
    ) -> Vec<Duration>
    where
        S: futures_util::Stream<Item = Result<M, E>> + futures_util::Sink<M> + Unpin,
        E: std::fmt::Debug,
    {
        super::client::mark_start();
        let mut rtts = Vec::new();
        let mut got = 0u64;
        let depth = if kind == "flood" || rtt { 1 } else { DEPTH };
        for _ in 0..depth {
            if ws.send(make()).await.is_err() {
                panic!("send failed");
            }
        }
        let mut sent_at = Instant::now();
        while got < count {
            let m = ws.next().await.expect("stream open").expect("message");
            if !is_data(&m) {
                continue;
            }
            std::hint::black_box(&m);
            got += 1;
            if kind == "echo" {
                if rtt {
                    rtts.push(sent_at.elapsed());
                    sent_at = Instant::now();
                }
                if got + if rtt { 0 } else { DEPTH - 1 } < count && ws.send(make()).await.is_err() {
                    panic!("send failed");
                }
            }
        }
        super::client::mark_end();
        let _ = ws.close().await;
        rtts
    }

    /// fastwebsockets speaks no client handshake without hyper; do it by hand.
    async fn fast_handshake(url: &str) -> tokio::net::TcpStream {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rest = url.trim_start_matches("ws://");
        let (host, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let mut tcp = tokio::net::TcpStream::connect(host).await.expect("tcp");
        tcp.set_nodelay(true).expect("nodelay");
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut byte).await.expect("response");
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "upgrade refused");
        tcp
    }

    async fn fastws(url: &str, kind: &str, rtt: bool, count: u64) -> Vec<Duration> {
        use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket};
        let mut ws = WebSocket::after_handshake(fast_handshake(url).await, Role::Client);
        ws.set_auto_close(true);
        ws.set_auto_pong(true);
        super::client::mark_start();
        let mut rtts = Vec::new();
        let mut got = 0u64;
        let depth = if kind == "flood" || rtt { 1 } else { DEPTH };
        for _ in 0..depth {
            ws.write_frame(Frame::binary(Payload::Borrowed(RTT_PAYLOAD))).await.expect("send");
        }
        let mut sent_at = Instant::now();
        while got < count {
            let frame = ws.read_frame().await.expect("frame");
            if !matches!(frame.opcode, OpCode::Text | OpCode::Binary) {
                continue;
            }
            std::hint::black_box(&frame.payload);
            got += 1;
            if kind == "echo" {
                if rtt {
                    rtts.push(sent_at.elapsed());
                    sent_at = Instant::now();
                }
                if got + if rtt { 0 } else { DEPTH - 1 } < count {
                    ws.write_frame(Frame::binary(Payload::Borrowed(RTT_PAYLOAD))).await.expect("send");
                }
            }
        }
        super::client::mark_end();
        rtts
    }

    /// Opens `count` connections and keeps each with a read pending; reports after all are open.
    pub(crate) fn idle(peer: &str, url: &str, count: u64) {
        let rt = tokio_rt();
        rt.block_on(async {
            let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
            for _ in 0..count {
                match peer {
                    "wslink-tokio" if url.ends_with("idle-deflate") => {
                        // Pings off: this server reads raw bytes and answers nothing.
                        let (client, mut events) = wslink_tokio::Builder::new(url)
                            .expect("url")
                            .ping(None)
                            .compression(Some(wslink_tokio::DeflateConfig::default()))
                            .connect()
                            .await
                            .expect("connect");
                        // Both directions' state allocated: one message each way.
                        while !matches!(events.recv().await, Some(SessionEvent::Message(_)) | None) {}
                        client.send_text(String::from_utf8(vec![b'x'; 256]).expect("ascii")).await.expect("send");
                        keep.push(Box::new((client, events)));
                    }
                    "wslink-tokio" => {
                        let (client, events) =
                            wslink_tokio::Builder::new(url).expect("url").connect().await.expect("connect");
                        keep.push(Box::new((client, events)));
                    }
                    "tokio-tungstenite" => {
                        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
                        let (tx, mut rx) = ws.split();
                        tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
                        keep.push(Box::new(tx));
                    }
                    "tokio-websockets" => {
                        let uri = url.parse().expect("uri");
                        let (ws, _) = tokio_websockets::ClientBuilder::from_uri(uri).connect().await.expect("connect");
                        let (tx, mut rx) = ws.split();
                        tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
                        keep.push(Box::new(tx));
                    }
                    "fastwebsockets" => {
                        let mut ws = fastwebsockets::WebSocket::after_handshake(
                            fast_handshake(url).await,
                            fastwebsockets::Role::Client,
                        );
                        tokio::spawn(async move { while ws.read_frame().await.is_ok() {} });
                    }
                    other => panic!("no idle client for {other}"),
                }
            }
            // Let every connection settle into its pending read.
            tokio::time::sleep(Duration::from_millis(500)).await;
            std::mem::forget(keep);
        });
    }
}
