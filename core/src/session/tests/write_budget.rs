//! The write side's bound: a peer that reads nothing cannot grow the
//! session's memory (pings answered only while there is room, then only the
//! latest; sends held in the bounded queue), every byte waiting is counted,
//! and a transport that takes nothing for `write_timeout` ends the link.

use super::*;

/// A ping frame from the server.
fn ping_frame(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x89, payload.len() as u8];
    frame.extend_from_slice(payload);
    frame
}

/// The payloads of the pongs among `got`.
fn pongs(got: &[Got]) -> Vec<Vec<u8>> {
    got.iter()
        .filter_map(|g| match g {
            Got::Pong(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_ping_flood_to_a_client_whose_peer_reads_nothing_stays_within_the_budget() {
    const BUDGET: usize = 4096;
    let mut f = Fake::open(builder().write_budget(BUDGET));
    f.stalled = true;
    // 125-byte pings, 1 000 of them in reads of 50: without a bound the pongs
    // would hold 131 000 bytes.
    for read in 0..20u8 {
        let mut bytes = Vec::new();
        for i in 0..50u8 {
            let mut payload = [b'p'; 125];
            payload[0] = read;
            payload[1] = i;
            bytes.extend(ping_frame(&payload));
        }
        f.input(&bytes);
        let buffered = f.s.write_buffered();
        assert!(buffered <= BUDGET + 131, "read {read}: {buffered} bytes wait, budget {BUDGET}");
        assert_eq!(buffered, f.unwritten.len(), "the count is what the transport holds");
        assert_eq!(f.s.metrics(f.now).write_buffered, buffered);
    }
    assert!(!f.s.has_write_room());
    // The peer reads again: what waited goes, then one pong for the latest ping.
    f.unstall(None);
    let answered = pongs(&f.got());
    assert!(answered.len() < 40, "{} pongs: the flood was coalesced", answered.len());
    let last = answered.last().expect("the latest ping is answered");
    assert_eq!((last[0], last[1]), (19, 49), "the last pong answers the last ping");
    assert_eq!(f.s.write_buffered(), 0);
    assert!(f.events().is_empty(), "no error: a ping flood is not a fault");
}

#[test]
fn sends_past_the_budget_wait_in_order_and_none_is_lost() {
    let mut f = Fake::open(builder().write_budget(1000));
    f.stalled = true;
    for i in 0..30 {
        f.s.send(Message::Text(format!("{i:03}{}", "x".repeat(97)).into()), f.now).expect("taken");
        f.step();
    }
    // 10 messages of 106 bytes pass the budget; the rest wait in the queue.
    assert_eq!(f.s.metrics(f.now).queue_len, 20);
    assert!(f.s.write_buffered() <= 1000 + 106);
    assert!(!f.s.has_write_room());
    // The peer reads a little at a time: each read lets the next ones out.
    while !f.unwritten.is_empty() {
        f.unstall(Some(300));
    }
    let texts = f.texts();
    assert_eq!(texts.len(), 30);
    for (i, t) in texts.iter().enumerate() {
        assert!(t.starts_with(&format!("{i:03}")), "message {i} out of order: {t:.3}");
    }
    assert_eq!(f.s.metrics(f.now).queue_len, 0);
    assert!(f.s.has_write_room());
}

#[test]
fn a_message_larger_than_the_budget_still_goes_out() {
    let mut f = Fake::open(builder().write_budget(100));
    f.stalled = true;
    f.s.send(Message::Binary(vec![7u8; 5000].into()), f.now).expect("taken");
    f.s.send(Message::Text("after".into()), f.now).expect("queued");
    f.step();
    assert_eq!(f.s.metrics(f.now).queue_len, 1, "the second waits for the first");
    f.unstall(None);
    let got = f.got();
    assert!(matches!(&got[0], Got::Binary(b) if b.len() == 5000));
    assert_eq!(got[1], Got::Text("after".into()));
}

#[test]
fn a_peer_that_takes_nothing_for_the_write_timeout_ends_the_link() {
    let mut f = Fake::open(builder().write_timeout(Some(secs(30))).max_attempts(None));
    f.stalled = true;
    f.s.send(Message::Text("stuck".into()), f.now).unwrap();
    f.step();
    assert_eq!(f.s.poll_timeout(), Some(f.now + secs(30)));
    // Progress moves the deadline on: a slow reader is not a dead one.
    f.wait(secs(20));
    f.unstall(Some(2));
    f.stalled = true;
    assert_eq!(f.s.poll_timeout(), Some(f.now + secs(30)));
    f.wait(secs(29));
    assert!(f.events().is_empty());
    f.advance();
    let events = f.events();
    assert_eq!(disconnects(&events), [DisconnectReason::WriteTimeout]);
    assert!(matches!(events.last(), Some(SessionEvent::Reconnecting { attempt: 1, .. })), "{events:?}");
    assert!(f.got().iter().all(|g| !matches!(g, Got::Close(_))), "no close frame: it could not be written");
    assert_eq!(f.s.write_buffered(), 0, "the bytes went with the transport");
    assert_eq!(
        crate::hooks::SessionError::from_disconnect(&DisconnectReason::WriteTimeout),
        Some(crate::hooks::SessionError::WriteTimeout)
    );
}

#[test]
fn no_write_timeout_while_nothing_waits_or_when_it_is_off() {
    let mut f = Fake::open(builder().write_timeout(Some(secs(5))));
    f.s.send(Message::Text("written at once".into()), f.now).unwrap();
    f.step();
    assert_eq!(f.s.poll_timeout(), None, "nothing waits: no deadline");
    let mut off = Fake::open(builder().write_timeout(None));
    off.stalled = true;
    off.s.send(Message::Text("stuck".into()), off.now).unwrap();
    off.step();
    assert_eq!(off.s.poll_timeout(), None);
}

#[test]
fn an_app_heartbeat_probe_flood_is_answered_once_room_returns() {
    let beat = crate::presets::DeribitHeartbeat;
    let mut f = Fake::open(builder().app_heartbeat(beat, secs(30), secs(10)).write_budget(2000));
    f.stalled = true;
    let probe = r#"{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}"#;
    for _ in 0..200 {
        f.server_text(probe);
    }
    assert!(f.s.write_buffered() < 2000 + 200, "{} bytes wait", f.s.write_buffered());
    f.unstall(None);
    let answers = f.texts().iter().filter(|t| method_of(t) == "public/test").count();
    assert!((1..40).contains(&answers), "{answers} answers to 200 probes");
}
