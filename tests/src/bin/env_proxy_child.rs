//! A client with every default, for `tests/tests/proxy.rs`: the parent runs
//! it with proxy variables in its environment (never set in the test
//! process itself, whose threads may read the environment meanwhile), and
//! it prints how its one attempt to the URL in its argument ended. Every
//! name resolves to 127.0.0.1, so a `.test` URL is reached directly unless
//! a proxy takes it.

use std::net::SocketAddr;

fn main() {
    let url = std::env::args().nth(1).expect("a URL argument");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let builder = match wslink_tokio::Builder::new(&url) {
            Ok(builder) => builder,
            Err(e) => return println!("error: {e}"),
        };
        let connect = builder
            .ping(None)
            .max_attempts(Some(1))
            .resolver(|_host, port| Ok(vec![SocketAddr::from(([127, 0, 0, 1], port))]))
            .connect()
            .await;
        match connect {
            Ok((client, _events)) => {
                println!("connected");
                let _ = client.close(wslink_tokio::CloseCode::Normal, "").await;
            }
            Err(e) => println!("error: {e}"),
        }
    });
}
