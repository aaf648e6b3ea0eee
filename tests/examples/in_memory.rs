//! wslink's core against tungstenite's server over an in-memory duplex:
//! handshake, messages both ways, a ping, a fragmented message, a close.
//!
//! There is no socket and no runtime: the loop below is all an adapter does.
//! Bytes the core wants written go to the server's inbox; bytes the server
//! writes go to `handle_input`; events are drained after each step.
//!
//! Run it with `cargo run -p wslink-tests --example in_memory`.

// A real clock drives this demo, as an adapter's would.
#![allow(clippy::disallowed_methods)]

use std::io;
use std::time::Instant;

use rand::{rngs::StdRng, SeedableRng};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::handshake::HandshakeError;
use tungstenite::http::HeaderValue;
use tungstenite::protocol::frame::{coding::OpCode, Frame};
use tungstenite::Message as ServerMessage;
use wslink_core::{ClientRequest, CloseCode, Connection, ConnectionConfig, ConnectionEvent, Message};
use wslink_tests::ServerEnd;

fn main() {
    let start = Instant::now();
    let request = ClientRequest::new("ws://exchange.local/v1/stream?feed=trades")
        .expect("valid URL")
        .subprotocol("json")
        .header("Authorization", "Bearer demo-token");
    let config = ConnectionConfig::default().fragment_size(Some(16 << 10));
    // Production code seeds from the OS; a fixed seed makes this run repeatable.
    let rng = Box::new(StdRng::seed_from_u64(2026));
    let mut client = Connection::new(request, config, rng, start).expect("valid request and config");

    // 1. The upgrade request goes out; tungstenite's `accept` answers it.
    let mut end = ServerEnd::default();
    transmit(&mut client, &mut end);
    let request_head = String::from_utf8_lossy(end.inbox.make_contiguous()).into_owned();
    println!("client -> server: upgrade request\n{}", indent(&request_head));
    let mut server = match tungstenite::accept_hdr(end, choose_json) {
        Ok(ws) => ws,
        Err(HandshakeError::Interrupted(mid)) => mid.handshake().expect("handshake completes with the request in"),
        Err(HandshakeError::Failure(e)) => panic!("server refused the upgrade: {e}"),
    };
    let response = std::mem::take(&mut server.get_mut().outbox);
    println!("server -> client: {}", String::from_utf8_lossy(&response).lines().next().unwrap_or_default());
    client.handle_input(&response, Instant::now());
    print_events(&mut client, start);

    // 2. A request from the client, read and answered by the server.
    let order = r#"{"jsonrpc":"2.0","id":1,"method":"public/get_time"}"#;
    client.send_text(order).expect("open");
    transmit(&mut client, server.get_mut());
    match server.read() {
        Ok(ServerMessage::Text(t)) => println!("server read text: {t}"),
        other => println!("server read: {other:?}"),
    }
    server.send(ServerMessage::text(r#"{"jsonrpc":"2.0","id":1,"result":1795305600000}"#)).expect("in-memory");
    deliver(&mut server, &mut client);
    print_events(&mut client, start);

    // 3. A ping from the server is answered by the core on its own.
    server.send(ServerMessage::Ping(b"hb-1".to_vec().into())).expect("in-memory");
    deliver(&mut server, &mut client);
    print_events(&mut client, start);
    transmit(&mut client, server.get_mut());
    println!("server read: {:?}", server.read().map_err(|e| e.to_string()));

    // 4. A 40 KiB binary message leaves in three 16 KiB fragments and arrives whole.
    let blob: Vec<u8> = (0..40 * 1024).map(|i| (i % 251) as u8).collect();
    client.send_binary(&blob).expect("open");
    transmit(&mut client, server.get_mut());
    match server.read() {
        Ok(ServerMessage::Binary(b)) => {
            println!("server read binary: {} bytes, intact: {}", b.len(), b[..] == blob[..])
        }
        other => println!("server read: {other:?}"),
    }

    // 5. The server sends a fragmented text message, split inside a character.
    let text = "bid 101.5 € ask 101.7 €";
    let split = text.find('€').expect("has a euro sign") + 1;
    let first = Frame::message(text.as_bytes()[..split].to_vec(), OpCode::from(1), false);
    let rest = Frame::message(text.as_bytes()[split..].to_vec(), OpCode::from(0), true);
    server.write(ServerMessage::Frame(first)).expect("in-memory");
    server.send(ServerMessage::Frame(rest)).expect("in-memory");
    deliver(&mut server, &mut client);
    print_events(&mut client, start);

    // 6. The client closes; the server echoes; the transport ends.
    client.close(CloseCode::Normal, "demo done", Instant::now()).expect("open");
    transmit(&mut client, server.get_mut());
    println!("server read: {:?}", server.read().map_err(|e| e.to_string()));
    let _ = server.flush();
    deliver(&mut server, &mut client);
    print_events(&mut client, start);
    client.handle_eof(Instant::now());
    println!("client state after the server closed the transport: {:?}", client.state());
}

/// The server picks the offered "json" subprotocol, as an exchange API would.
// The error type is tungstenite's callback signature, not ours to shrink.
#[allow(clippy::result_large_err)]
fn choose_json(_: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    response.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("json"));
    Ok(response)
}

/// Moves what the client queued into the server's inbox.
fn transmit(client: &mut Connection, end: &mut ServerEnd) {
    let mut out = Vec::new();
    let n = client.poll_transmit(&mut out);
    if n > 0 {
        end.inbox.extend(out);
    }
}

/// Moves what the server wrote into the client.
fn deliver(server: &mut tungstenite::WebSocket<ServerEnd>, client: &mut Connection) {
    if let Err(tungstenite::Error::Io(e)) = server.flush() {
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
    let bytes = std::mem::take(&mut server.get_mut().outbox);
    client.handle_input(&bytes, Instant::now());
}

fn print_events(client: &mut Connection, start: Instant) {
    while let Some(event) = client.poll_event() {
        let at = start.elapsed().as_micros();
        match event {
            ConnectionEvent::Opened(r) => {
                println!(
                    "[{at:>6} us] client event: Opened (subprotocol {:?}, {} headers)",
                    r.subprotocol,
                    r.headers.len()
                )
            }
            ConnectionEvent::Message(Message::Text(t)) => println!("[{at:>6} us] client event: text {t}"),
            ConnectionEvent::Message(Message::Binary(b)) => {
                println!("[{at:>6} us] client event: {} binary bytes", b.len())
            }
            ConnectionEvent::Ping(p) => println!("[{at:>6} us] client event: ping {p:?} (pong queued)"),
            ConnectionEvent::Pong(p) => println!("[{at:>6} us] client event: pong {p:?}"),
            ConnectionEvent::Closed(c) => println!(
                "[{at:>6} us] client event: Closed by {:?}, code {}, reason {:?}, clean: {}",
                c.initiator,
                c.code,
                c.reason,
                c.is_clean()
            ),
            other => println!("[{at:>6} us] client event: {other:?}"),
        }
    }
}

fn indent(text: &str) -> String {
    text.trim_end().lines().map(|l| format!("    {l}\n")).collect()
}
