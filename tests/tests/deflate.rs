//! permessage-deflate against real peers, on both runtimes.
//!
//! Python's `websockets` in every server-side configuration it supports, with
//! two client offers each (the defaults, and one that asks for every
//! parameter): compressed messages both ways, fragmented by us and by the
//! server, with context takeover on and off, and the frames each side
//! compressed counted on both sides. Then a hostile server: a decompression
//! bomb, corrupt deflate data, RSV1 where it may not be, and compressed bad
//! UTF-8, each answered with a clean close and the right code.

use wslink_adapter::Runtime;
use wslink_core::{CloseCode, ConnectionError, DeflateConfig, DisconnectReason, Message, ProtocolError, SessionEvent};
use wslink_tests::peers::{hostile_deflate_server, over_granting_deflate_server};
use wslink_tests::python::PythonDeflateServers;
use wslink_tests::scenario::{builder, run, until, WAIT};
use wslink_tests::{compressed_frame, scenarios, server_frame, ServerDeflate};

scenarios!(
    every_python_deflate_configuration_both_directions,
    hostile_compressed_data_gets_clean_closes,
    a_server_granting_a_larger_client_window_than_offered_gets_our_smaller_one,
);

/// JSON-like text that compresses several times but not to nothing.
fn ticks(n: usize) -> String {
    let mut s = String::with_capacity(n + 100);
    let mut i = 0u64;
    while s.len() < n {
        let price = 60_000 + (i * 7919) % 1000;
        s.push_str(&format!("{{\"ch\":\"trades.BTC\",\"seq\":{i},\"px\":\"{price}.{}\",\"qty\":{}}},", i % 10, i % 13));
        i += 1;
    }
    s.truncate(n);
    s
}

/// Fragments our messages whose compressed form exceeds this.
const FRAGMENT: usize = 512;

async fn exchange<R: Runtime>(server: &str, url: &str, offer: &DeflateConfig) {
    let what = format!("server {server}, offer {offer:?}");
    let (client, mut events) = builder::<R>(url)
        .compression(Some(offer.clone()))
        .config(|c| c.connection.fragment_size = Some(FRAGMENT))
        .start()
        .expect("started");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    let Some(SessionEvent::Connected { response, .. }) = seen.last() else { unreachable!() };
    let ours = response.deflate.unwrap_or_else(|| panic!("{what}: deflate not agreed: {response:?}"));

    let big = ticks(20_000);
    let outgoing = [
        Message::Text(big.clone().into()),
        Message::Text(big.clone().into()), // the same again: context takeover makes it tiny
        Message::Binary(ticks(3000).into_bytes().into()),
        Message::Text("hi".into()), // under the default threshold
    ];
    for message in &outgoing {
        match message {
            Message::Text(t) => client.send_text(t.as_str().to_owned()).await.expect("sent"),
            Message::Binary(b) => client.send_binary(b.to_vec()).await.expect("sent"),
        }
        let got = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
        assert_eq!(got.last(), Some(&SessionEvent::Message(message.clone())), "{what}");
    }
    // The server sends this one as three frames.
    let fragmented = ticks(6000);
    client.send_text(format!("frag:{fragmented}")).await.expect("sent");
    let got = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
    assert_eq!(got.last(), Some(&SessionEvent::Message(Message::Text(fragmented.into()))), "{what}");

    client.send_text("stats?".to_owned()).await.expect("sent");
    let got = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
    let Some(SessionEvent::Message(Message::Text(reply))) = got.last() else { panic!("{what}: {got:?}") };
    let stats: serde_json::Value = serde_json::from_str(reply.as_str()).expect("JSON stats");
    let theirs = &stats["deflate"];
    assert_eq!(theirs["server_no_context_takeover"], ours.server_no_context_takeover, "{what}: {stats}");
    assert_eq!(theirs["client_no_context_takeover"], ours.client_no_context_takeover, "{what}: {stats}");
    assert_eq!(theirs["server_max_window_bits"], ours.server_max_window_bits, "{what}: {stats}");
    let client_bits = theirs["client_max_window_bits"].as_u64().expect("a number");
    assert!(u64::from(ours.client_max_window_bits) <= client_bits, "{what}: {stats}");

    let metrics = client.metrics().await.expect("metrics").session.compression;
    let compressed_in = stats["compressed_in"].as_u64().expect("a count");
    let compressed_out = stats["compressed_out"].as_u64().expect("a count");
    // What we compressed is what the server inflated, the stats request included.
    assert_eq!(metrics.messages_compressed, compressed_in, "{what}: {stats}");
    if ours.client_max_window_bits == 8 {
        assert_eq!(metrics.messages_compressed, 0, "{what}: zlib cannot compress with 8 bits");
    } else {
        // Under the default threshold: "hi" and "stats?".
        let sent_compressed = if offer.compress_threshold > 6 { 4 } else { 6 };
        assert_eq!(metrics.messages_compressed, sent_compressed, "{what}");
        assert!(metrics.compressed_to * 3 < metrics.compressed_from, "{what}: {metrics:?}");
    }
    // The server compresses every message; the stats reply came after its count.
    assert_eq!(metrics.messages_inflated, compressed_out + 1, "{what}: {stats}");
    assert_eq!(compressed_out, 5, "{what}: {stats}");
    client.close(CloseCode::Normal, "").await.expect("closed");
}

async fn every_python_deflate_configuration_both_directions<R: Runtime>() {
    let peers = PythonDeflateServers::start();
    assert_eq!(peers.servers.len(), 17, "16 combinations and an 8-bit client window");
    let asking = DeflateConfig::default()
        .client_max_window_bits(15)
        .server_max_window_bits(Some(11))
        .client_no_context_takeover(true)
        .server_no_context_takeover(true)
        .compress_threshold(0)
        .level(6)
        .mem_level(8);
    for (name, addr) in &peers.servers {
        for offer in [&DeflateConfig::default(), &asking] {
            exchange::<R>(name, &format!("ws://{addr}/"), offer).await;
        }
    }
}

async fn hostile_compressed_data_gets_clean_closes<R: Runtime>() {
    const LIMIT: usize = 1 << 20;
    let zeros = vec![0u8; 1 << 20];
    // 256 MiB of zeros in about 256 KiB.
    let bomb = ServerDeflate::new(9, 15).message(std::iter::repeat_n(&zeros[..], 256));
    assert!(bomb.len() < 512 << 10, "{}", bomb.len());
    let hello = ServerDeflate::new(6, 15).message([&b"hello, world"[..]]);
    let bad_utf8 = ServerDeflate::new(6, 15).message([&b"caf\xc3\x28"[..]]);
    let cases = [
        (
            "bomb",
            compressed_frame(true, 2, &bomb),
            ProtocolError::MessageTooLarge { size: LIMIT as u64 + 1, limit: LIMIT },
        ),
        ("corrupt", compressed_frame(true, 1, &[0xff, 0xff, 0xff]), ProtocolError::InvalidCompressedData),
        (
            "rsv1 on a continuation",
            [compressed_frame(false, 1, &hello[..4]), compressed_frame(true, 0, &hello[4..])].concat(),
            ProtocolError::ReservedBits,
        ),
        ("compressed bad utf-8", compressed_frame(true, 1, &bad_utf8), ProtocolError::InvalidUtf8),
    ];
    for (name, wire, error) in cases {
        // A good compressed message first: the extension works before it is abused.
        let wire = [compressed_frame(true, 1, &ServerDeflate::new(1, 15).message([&b"ok"[..]])), wire].concat();
        let (addr, close_code) = hostile_deflate_server(wire).await;
        let (client, mut events) = builder::<R>(&format!("ws://{addr}/"))
            .compression(Some(DeflateConfig::default()))
            .config(|c| c.connection.max_message_size = LIMIT)
            .start()
            .expect("started");
        let seen = until(&mut events, |e| matches!(e, SessionEvent::Disconnected { .. })).await;
        assert!(seen.contains(&SessionEvent::Message(Message::Text("ok".into()))), "{name}: {seen:?}");
        let code = error.close_code();
        match seen.last() {
            Some(SessionEvent::Disconnected { reason: DisconnectReason::Closed(c) }) => {
                assert_eq!(c.error, Some(ConnectionError::Protocol(error)), "{name}");
                assert_eq!(c.sent_code, Some(code), "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
        let received = tokio::time::timeout(WAIT, close_code).await;
        assert_eq!(received, Ok(Ok(Some(u16::from(code)))), "{name}: the server got our close frame");
        client.close(CloseCode::Normal, "").await.expect("closed");
    }
    // Without the extension agreed, RSV1 is a protocol error too.
    let (addr, _) = wslink_tests::peers::hostile_deflate_server(server_frame(true, 1, b"x")).await;
    let (client, mut events) = builder::<R>(&format!("ws://{addr}/")).start().expect("started");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Disconnected { .. })).await;
    assert!(
        matches!(seen.last(), Some(SessionEvent::Disconnected { reason: DisconnectReason::Closed(c) })
            if c.error == Some(ConnectionError::Handshake(wslink_core::HandshakeError::UnofferedExtension("permessage-deflate".into())))),
        "{seen:?}"
    );
    client.close(CloseCode::Normal, "").await.expect("closed");
}

/// Some servers answer `client_max_window_bits=15` whatever we offered
/// (against RFC 7692 §7.1.2.2); a window of ours that is smaller is one they
/// inflate, so the connection opens and compresses with our window.
async fn a_server_granting_a_larger_client_window_than_offered_gets_our_smaller_one<R: Runtime>() {
    let addr = over_granting_deflate_server().await;
    let offer = DeflateConfig::default().compress_threshold(0);
    let (client, mut events) =
        builder::<R>(&format!("ws://{addr}/")).compression(Some(offer)).start().expect("started");
    let seen = until(&mut events, |e| matches!(e, SessionEvent::Connected { .. })).await;
    let Some(SessionEvent::Connected { response, .. }) = seen.last() else { unreachable!() };
    let params = response.deflate.expect("deflate agreed");
    assert_eq!(params.client_max_window_bits, 12, "we keep the window we offered");
    assert_eq!(params.client_window_over_granted, Some(15), "and the server's answer is on record");
    let outgoing = [ticks(20_000), ticks(20_000), "hi".to_owned()];
    for text in &outgoing {
        client.send_text(text.clone()).await.expect("sent");
        let got = until(&mut events, |e| matches!(e, SessionEvent::Message(_))).await;
        assert_eq!(got.last(), Some(&SessionEvent::Message(Message::Text(text.clone().into()))));
    }
    let compression = client.metrics().await.expect("metrics").session.compression;
    assert_eq!((compression.messages_compressed, compression.messages_inflated), (3, 3), "{compression:?}");
    client.close(CloseCode::Normal, "").await.expect("closed");
}
