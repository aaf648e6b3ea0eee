//! A client with every default, for `tests/tests/proxy.rs`: the parent runs
//! it with proxy variables in its environment (never set in the test
//! process itself, whose threads may read the environment meanwhile), and
//! it prints each warning logged (a line `warn: ` and its fields), then
//! how its one attempt to the URL in its argument ended. Every name
//! resolves to 127.0.0.1, so a `.test` URL is reached directly unless a
//! proxy takes it.

use std::fmt::Write;
use std::net::SocketAddr;

fn main() {
    tracing::subscriber::set_global_default(Warnings).expect("the only subscriber");
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

/// Prints each warning and error event, with its fields, on a line of its own.
struct Warnings;

struct Line(String);

impl tracing::field::Visit for Line {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, " {}={value:?}", field.name());
    }
}

impl tracing::Subscriber for Warnings {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = Line("warn:".to_owned());
        event.record(&mut line);
        println!("{}", line.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
