//! The mock server against tungstenite's blocking client: refusals, the
//! server's close, a black hole, and a drop that ends every thread.

use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use tungstenite::stream::MaybeTlsStream;
use tungstenite::WebSocket;

use super::*;

const WAIT: Duration = Duration::from_secs(10);

type Client = WebSocket<MaybeTlsStream<TcpStream>>;

fn client(server: &MockServer) -> Client {
    let (ws, _) = tungstenite::client::connect(format!("{}feed?x=1", server.url())).expect("upgraded");
    if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        tcp.set_read_timeout(Some(WAIT)).expect("read timeout");
    }
    ws
}

#[test]
fn messages_flow_both_ways_and_the_responder_answers() {
    let server = MockServer::start();
    server.respond_with(|m| (m.as_bytes() == b"ping?").then(|| Message::Text("pong!".into())));
    let mut ws = client(&server);
    let conn = server.expect_connection(WAIT);
    assert_eq!((conn.index, conn.path.as_str()), (0, "/feed?x=1"));
    assert!(conn.header("sec-websocket-key").is_some());
    ws.send(tungstenite::Message::text("hello")).unwrap();
    ws.send(tungstenite::Message::text("ping?")).unwrap();
    assert_eq!(ws.read().unwrap(), tungstenite::Message::text("pong!"));
    assert_eq!(server.expect_sent(WAIT, |m| m.as_bytes() == b"ping?"), Message::Text("ping?".into()));
    assert!(server.sent().is_empty(), "`hello` was taken with `ping?`");
    server.send_binary(vec![1, 2, 3]);
    assert_eq!(ws.read().unwrap(), tungstenite::Message::binary(vec![1, 2, 3]));
}

#[test]
fn the_server_closes_and_the_client_answers() {
    let server = MockServer::start();
    let mut ws = client(&server);
    server.expect_connection(WAIT);
    server.close(CloseCode::Away, "restart");
    match ws.read() {
        Ok(tungstenite::Message::Close(Some(frame))) => assert_eq!(u16::from(frame.code), u16::from(CloseCode::Away)),
        other => panic!("{other:?}"),
    }
    // Reading on flushes the client's answer and sees the server end TCP.
    let mut ends = 0;
    while ws.read().is_ok() && ends < 8 {
        ends += 1;
    }
    assert!(matches!(server.expect_disconnect(WAIT), Ended::Closed(_)));
}

#[test]
fn the_client_closes_and_the_server_sees_its_frame() {
    let server = MockServer::start();
    let mut ws = client(&server);
    server.expect_connection(WAIT);
    let code = u16::from(CloseCode::Normal).into();
    ws.close(Some(tungstenite::protocol::CloseFrame { code, reason: "bye".into() })).unwrap();
    assert_eq!(server.expect_disconnect(WAIT), Ended::Closed(Some((CloseCode::Normal, "bye".to_owned()))));
}

#[test]
fn refused_upgrades_carry_the_status() {
    let server = MockServer::start();
    server.refuse_upgrades(Some(503));
    match tungstenite::client::connect(server.url()) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 503),
        other => panic!("{:?}", other.map(|_| "upgraded")),
    }
    assert_eq!((server.refused(), server.connections()), (1, 0));
    server.refuse_upgrades(None);
    let _ws = client(&server);
    assert_eq!(server.expect_connection(WAIT).index, 0);
}

#[test]
fn a_cut_ends_the_clients_stream_and_a_blackhole_answers_nothing() {
    let server = MockServer::start();
    let mut ws = client(&server);
    server.expect_connection(WAIT);
    server.cut();
    assert!(ws.read().is_err(), "end of stream");
    assert_eq!(server.expect_disconnect(WAIT), Ended::Cut);

    let mut ws = client(&server);
    server.expect_connection(WAIT);
    server.blackhole();
    server.send_text("lost");
    ws.send(tungstenite::Message::Ping(vec![1].into())).unwrap();
    if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
        tcp.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    }
    match ws.read() {
        Err(tungstenite::Error::Io(e)) => {
            assert!(matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
        }
        other => panic!("a black hole answers nothing: {other:?}"),
    }
}

#[test]
fn dropping_the_server_ends_its_threads_whatever_its_connections_do() {
    let server = MockServer::start();
    let _open = client(&server);
    server.expect_connection(WAIT);
    let _blackholed = client(&server);
    server.expect_connection(WAIT);
    server.blackhole();
    // A client that connected and never sent its upgrade request.
    let _silent = TcpStream::connect(server.addr()).unwrap();
    let (done, ended) = mpsc::channel();
    std::thread::spawn(move || {
        drop(server);
        let _ = done.send(());
    });
    assert_eq!(ended.recv_timeout(WAIT), Ok(()), "the drop joined every thread");
}

#[test]
#[should_panic(expected = "send_text: no current connection; call expect_connection first")]
fn a_command_before_any_connection() {
    MockServer::start().send_text("x");
}

#[test]
#[should_panic(expected = "expect_connection: it did not happen; 0 connection(s) accepted")]
fn a_connection_that_never_comes() {
    MockServer::start().expect_connection(Duration::from_millis(50));
}

#[test]
#[should_panic(expected = "refuse_upgrades: 101 is not a refusal")]
fn refusing_with_101() {
    MockServer::start().refuse_upgrades(Some(101));
}

#[test]
fn async_waits_see_their_deadline_without_a_runtime_timer() {
    let server = MockServer::start();
    let wait = server.expect_connection_async(Duration::from_millis(50));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| futures_lite::future::block_on(wait)));
    let message = outcome.expect_err("no connection came").downcast::<String>().expect("a formatted message");
    assert!(message.contains("expect_connection_async at"), "{message}");
}
