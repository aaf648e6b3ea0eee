//! A client whose server stopped reading, for `tests/tests/bounded.rs`: the
//! parent starts the server and runs this with a runtime (`tokio` or
//! `smol`), a mode and the URL; it prints one line of figures: its resident
//! memory after connecting and its peak, what the library reports waiting
//! to be written, and for `sends` how many sends completed and whether the
//! next one waited and `try_send_text` answered `Full`.
//!
//! - `pings`: the server floods pings and never reads; the events are
//!   drained until its `done` message.
//! - `sends`: the server never reads; 1 KiB messages are sent in a loop, at
//!   most `SENDS_MAX`, until one does not complete within `WAITED` (it waits
//!   for room in the write budget).

use std::time::Duration;

use wslink_adapter::{Builder, Runtime, TrySendError};
use wslink_core::{Message, SessionEvent};

/// Sends tried at most (200 MiB without a bound on the write side).
const SENDS_MAX: usize = 200_000;
/// A send that has not completed after this is taken to wait for room.
const WAITED: Duration = Duration::from_secs(2);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [runtime, mode, url] = args.as_slice() else { panic!("usage: write_stall_child tokio|smol pings|sends URL") };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let line = rt.block_on(async {
        match runtime.as_str() {
            "tokio" => run::<wslink_tokio::Tokio>(mode, url).await,
            "smol" => run::<wslink_smol::Smol>(mode, url).await,
            other => panic!("unknown runtime {other}"),
        }
    });
    println!("{line}");
}

async fn run<R: Runtime>(mode: &str, url: &str) -> String {
    let (client, mut events) = Builder::<R>::new(url).expect("URL").ping(None).connect().await.expect("connected");
    let before = status_kb("VmRSS:");
    let (mut sends, mut waited, mut full) = (0, false, false);
    match mode {
        "pings" => loop {
            match tokio::time::timeout(Duration::from_secs(30), events.recv()).await.expect("done within 30 s") {
                Some(SessionEvent::Message(Message::Text(t))) if t.as_str() == "done" => break,
                Some(SessionEvent::Disconnected { reason }) => panic!("disconnected: {reason}"),
                Some(_) => {}
                None => panic!("the stream ended"),
            }
        },
        "sends" => {
            // The events are read, so that reading is never what holds the sends.
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            let payload = "b".repeat(1024);
            while sends < SENDS_MAX {
                match tokio::time::timeout(WAITED, client.send_text(payload.clone())).await {
                    Ok(Ok(())) => sends += 1,
                    Ok(Err(e)) => panic!("send {sends} failed: {e}"),
                    Err(_) => {
                        waited = true;
                        break;
                    }
                }
            }
            full = matches!(client.try_send_text("x"), Err(TrySendError::Full(_)));
        }
        other => panic!("unknown mode {other}"),
    }
    let buffered = client.metrics().await.expect("metrics").session.write_buffered;
    let peak = status_kb("VmHWM:");
    format!("before_kb={before} peak_kb={peak} buffered={buffered} sends={sends} waited={waited} full={full}")
}

/// A figure of `/proc/self/status`, in kB.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).expect("the field");
    line[field.len()..].trim().trim_end_matches(" kB").trim().parse().expect("a number of kB")
}
