//! The cost of a proxied connect, in one run: the core's proxy handshakes
//! alone, then whole connects over loopback (`Builder::connect` until
//! `Connected`) direct, through our minimal HTTP CONNECT proxy
//! (`tunnels::TunnelProxy`, in this process), and through pproxy (Python,
//! its own process) speaking HTTP CONNECT, SOCKS5, and HTTP CONNECT over
//! TLS (`https://`); `ws` and `wss`.
//!
//! For each route: the median and p90 of the connect time over `CONNECTS`
//! connects (after 20 unmeasured ones), and the CPU time per connect of
//! this process (client, echo server and, for our proxy, the proxy) and of
//! pproxy's, from `/proc/<pid>/stat` (clock ticks of 10 ms, summed over the
//! whole series). The routes alternate in rounds so that drift on this
//! shared machine spreads over all of them.
//!
//! `cargo bench -p wslink-tests --bench proxy` (`WSLINK_BENCH_CONNECTS=N` to change the count).

// Timing a benchmark is what the clock is for here.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use wslink_core::proxy::{ProxyHandshake, ProxyServer};
use wslink_tests::certs::TestCerts;
use wslink_tests::peers::echo_server;
use wslink_tests::python::PythonProxy;
use wslink_tests::tunnels::TunnelProxy;
use wslink_tokio::{Builder, CloseCode, Proxy, TlsOptions};

const ROUNDS: usize = 10;
const HANDSHAKES: usize = 200_000;

/// Runs one handshake of `proxy` to completion against canned replies.
fn handshake(proxy: &ProxyServer, replies: &[&[u8]]) -> usize {
    let mut tunnel = ProxyHandshake::new(proxy, "stream.example.com", 443, None).expect("valid target");
    let mut out = Vec::with_capacity(256);
    let mut written = tunnel.poll_transmit(&mut out);
    for reply in replies {
        let mut rest = *reply;
        while !rest.is_empty() {
            let (now, later) = rest.split_at(tunnel.read_limit().min(rest.len()));
            rest = later;
            tunnel.handle_input(now).expect("a good reply");
            written += tunnel.poll_transmit(&mut out);
        }
    }
    assert!(tunnel.is_open());
    written
}

fn machines() {
    let http = ProxyServer::parse("http://trader:secret@proxy.test:3128").expect("proxy URL");
    let socks = ProxyServer::parse("socks5h://trader:secret@proxy.test:1080").expect("proxy URL");
    let http_reply: &[&[u8]] = &[b"HTTP/1.1 200 Connection established\r\nProxy-Agent: bench\r\n\r\n"];
    let socks_replies: &[&[u8]] = &[&[5, 2], &[1, 0], &[5, 0, 0, 1, 10, 0, 0, 1, 1, 187]];
    println!("the core's handshakes alone, best of 5 rounds of {HANDSHAKES}:");
    for (name, proxy, replies) in
        [("HTTP CONNECT, Basic auth", &http, http_reply), ("SOCKS5, user and password", &socks, socks_replies)]
    {
        let mut best = Duration::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            for _ in 0..HANDSHAKES {
                black_box(handshake(black_box(proxy), replies));
            }
            best = best.min(start.elapsed());
        }
        println!("  {name:<28} {:>7.0} ns per handshake", best.as_nanos() as f64 / HANDSHAKES as f64);
    }
}

/// Clock ticks (user + system) of process `pid` so far.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

struct Route {
    name: &'static str,
    url: String,
    proxy: Proxy,
    roots: Option<rustls::RootCertStore>,
    times: Vec<Duration>,
    own_ticks: u64,
    pproxy_ticks: u64,
}

async fn connect_once(route: &Route) -> Duration {
    let mut builder = Builder::new(&route.url).expect("valid URL").ping(None).proxy(route.proxy.clone());
    if let Some(roots) = &route.roots {
        builder = builder.tls(TlsOptions::with_roots(roots.clone()));
    }
    let start = Instant::now();
    let (client, _events) = builder.connect().await.unwrap_or_else(|e| panic!("{}: {e}", route.name));
    let took = start.elapsed();
    client.close(CloseCode::Normal, "").await.expect("closed");
    took
}

fn main() {
    machines();
    let connects: usize = std::env::var("WSLINK_BENCH_CONNECTS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let pproxy = PythonProxy::start(None);
    let pproxy_pid = pproxy.pid().to_string();
    let certs = TestCerts::generate();
    let (cert, key) = certs.write_pem("bench-https-proxy");
    let https_pproxy = PythonProxy::start_tls(None, &cert, &key);
    let https_pid = https_pproxy.pid().to_string();
    runtime.block_on(async {
        let plain = echo_server(None).await;
        let secure = echo_server(Some(certs.server_config())).await;
        let ours = TunnelProxy::start().await;
        let via_ours = Proxy::http(&ours.addr.to_string()).expect("proxy URL");
        let via_http = Proxy::http(&pproxy.addr.to_string()).expect("proxy URL");
        let via_socks = Proxy::socks5(&format!("socks5h://{}", pproxy.addr)).expect("proxy URL");
        let via_https = Proxy::http(&format!("https://{}", https_pproxy.addr)).expect("proxy URL");
        let route = |name, url: String, proxy: Proxy, tls: bool| Route {
            name,
            url,
            roots: (tls || proxy == via_https).then(|| certs.roots()),
            proxy,
            times: Vec::new(),
            own_ticks: 0,
            pproxy_ticks: 0,
        };
        let (ws, wss) = (format!("ws://{plain}/"), format!("wss://{secure}/"));
        let mut routes = vec![
            route("ws direct", ws.clone(), Proxy::none(), false),
            route("ws, our CONNECT proxy", ws.clone(), via_ours.clone(), false),
            route("ws, pproxy CONNECT", ws.clone(), via_http.clone(), false),
            route("ws, pproxy SOCKS5", ws.clone(), via_socks, false),
            route("ws, pproxy https://", ws.clone(), via_https.clone(), false),
            route("wss direct", wss.clone(), Proxy::none(), true),
            route("wss, our CONNECT proxy", wss.clone(), via_ours, true),
            route("wss, pproxy CONNECT", wss.clone(), via_http, true),
            route("wss, pproxy https://", wss, via_https.clone(), true),
        ];
        for route in &routes {
            for _ in 0..20 {
                connect_once(route).await;
            }
        }
        let per_round = connects.div_ceil(ROUNDS);
        for _ in 0..ROUNDS {
            for route in routes.iter_mut() {
                let pid = if route.proxy == via_https { &https_pid } else { &pproxy_pid };
                let (own, other) = (cpu_ticks("self"), cpu_ticks(pid));
                for _ in 0..per_round {
                    let took = connect_once(route).await;
                    route.times.push(took);
                }
                route.own_ticks += cpu_ticks("self") - own;
                route.pproxy_ticks += cpu_ticks(pid) - other;
            }
        }
        println!("\n{} connects per route, in {ROUNDS} alternating rounds:", per_round * ROUNDS);
        println!(
            "{:<24} | {:>10} | {:>10} | {:>16} | {:>16}",
            "route", "median", "p90", "CPU/connect here", "CPU/connect pproxy"
        );
        for route in &mut routes {
            route.times.sort();
            let n = route.times.len();
            let per = |ticks: u64| format!("{:.2} ms", ticks as f64 * 10.0 / n as f64);
            println!(
                "{:<24} | {:>7.0} µs | {:>7.0} µs | {:>16} | {:>16}",
                route.name,
                route.times[n / 2].as_secs_f64() * 1e6,
                route.times[n * 9 / 10].as_secs_f64() * 1e6,
                per(route.own_ticks),
                per(route.pproxy_ticks)
            );
        }
    });
}
