//! wslink's core in a loop of your own: `std::net` sockets, a blocking read
//! with a timeout until the session's next deadline, no async runtime. The
//! loop itself is `wslink_tests::blocking::drive` (about 60 lines, and the
//! proxy's tunnel, the core's `ProxyHandshake`, in 30 more); this example
//! runs it against a JSON-RPC exchange server on loopback, through an HTTP
//! CONNECT proxy, with the server dropping the link once, and prints what
//! happens.
//!
//! `cargo run -p wslink-tests --example custom_loop`

use wslink_core::proxy::ProxyServer;
use wslink_tests::blocking::walkthrough;
use wslink_tests::peers::ExchangeServer;
use wslink_tests::tunnels::TunnelProxy;

fn main() {
    // The server and the proxy are tokio on a runtime of their own; the client has none.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let server = runtime.block_on(ExchangeServer::start(true));
    let proxy = runtime.block_on(TunnelProxy::start());
    println!("exchange server on ws://{}/, through the proxy at http://{}\n", server.addr, proxy.addr);
    let via = ProxyServer::parse(&format!("http://{}", proxy.addr)).expect("proxy URL");
    let (_, session) = walkthrough(&format!("ws://{}/", server.addr), Some(&via), || server.drop_all(), true);
    let m = session.metrics(std::time::Instant::now());
    println!(
        "\nconnects {}, messages in {} out {}, latency {:?}, tunnels {}",
        m.connects,
        m.messages_in,
        m.messages_out,
        session.latency(),
        proxy.tunnels.load(std::sync::atomic::Ordering::SeqCst)
    );
    for n in 0..server.connections.load(std::sync::atomic::Ordering::SeqCst) {
        println!("server saw on connection {n}: {:?}", server.methods_on(n));
    }
}
