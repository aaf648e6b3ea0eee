//! wslink's core in a loop of your own: `std::net` sockets, a blocking read
//! with a timeout until the session's next deadline, no async runtime. The
//! loop itself is `wslink_tests::blocking::drive` (about 60 lines); this
//! example runs it against a JSON-RPC exchange server on loopback that drops
//! the link once, and prints what happens.
//!
//! `cargo run -p wslink-tests --example custom_loop`

use wslink_tests::blocking::walkthrough;
use wslink_tests::peers::ExchangeServer;

fn main() {
    // The server is tokio-tungstenite on a runtime of its own; the client has none.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let server = runtime.block_on(ExchangeServer::start(true));
    println!("exchange server on ws://{}/\n", server.addr);
    let (_, session) = walkthrough(&format!("ws://{}/", server.addr), || server.drop_all(), true);
    let m = session.metrics(std::time::Instant::now());
    println!(
        "\nconnects {}, messages in {} out {}, latency {:?}",
        m.connects,
        m.messages_in,
        m.messages_out,
        session.latency()
    );
    for n in 0..server.connections.load(std::sync::atomic::Ordering::SeqCst) {
        println!("server saw on connection {n}: {:?}", server.methods_on(n));
    }
}
