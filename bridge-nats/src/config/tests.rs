use std::time::Duration;

use super::*;

const GOOD: &str = r#"
[bridge]
shards = 4
shard = 1
instance = "a"

[nats]
urls = ["nats://127.0.0.1:4222"]

[[endpoint]]
name = "deribit"
url = "wss://www.deribit.com/ws/api/v2"
connections = 2
id_pointer = "/params/data/change_id"
channels = ["book.BTC-PERPETUAL.100ms", "trades.BTC-PERPETUAL.raw"]
"#;

fn refused(text: &str) -> String {
    match Config::parse(text) {
        Ok(c) => panic!("accepted: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_file_is_read_with_its_defaults() {
    let c = Config::parse(GOOD).unwrap();
    assert_eq!((c.bridge.shard, c.bridge.shards), (1, 4));
    assert_eq!(c.nats.stream, "WSLINK");
    assert_eq!(c.nats.max_in_flight, 1024);
    assert_eq!(c.endpoints[0].channel_pointer, "/params/channel");
    assert_eq!(c.endpoints[0].connections, 2);
    assert!(c.with_shard(3, 4).is_ok());
}

#[test]
fn broken_files_say_what_is_wrong() {
    assert!(refused("not toml [").contains("invalid configuration"));
    assert!(refused("").contains("nats"));
    assert!(refused(&GOOD.replace("shard = 1", "shard = 4")).contains("bridge.shard"));
    assert!(refused(&GOOD.replace("shards = 4", "shards = 0")).contains("bridge.shards"));
    assert!(refused(&GOOD.replace("shards = 4", "shards = -1")).contains("invalid configuration"));
    assert!(refused(&GOOD.replace("wss://www", "https://www")).contains("endpoint[0].url"));
    assert!(refused(&GOOD.replace("name = \"deribit\"", "name = \"a.b\"")).contains("endpoint[0].name"));
    assert!(refused(&GOOD.replace("connections = 2", "connections = 0")).contains("endpoint[0].connections"));
    assert!(refused(&GOOD.replace("\"/params/data/change_id\"", "\"params\"")).contains("endpoint[0].id_pointer"));
    assert!(refused(&GOOD.replace("urls = [\"nats://127.0.0.1:4222\"]", "urls = []")).contains("nats.urls"));
    assert!(refused(&GOOD.replace("[nats]", "[nats]\nmax_in_flight = 0")).contains("nats.max_in_flight"));
    assert!(refused(&GOOD.replace("[nats]", "[nats]\nsubject_prefix = \"a.>\"")).contains("nats.subject_prefix"));
    assert!(refused(&GOOD.replace("[nats]", "[nats]\nduplicate_window_ms = 10")).contains("duplicate_window"));
    assert!(refused(&GOOD.replace("[nats]", "[nats]\nuser = \"u\"")).contains("nats.user"));
    assert!(refused(&GOOD.replace("connections = 2", "connections = 2\nmax_message_size = 0"))
        .contains("endpoint[0].max_message_size"));
    assert!(refused(&GOOD.replace("[nats]", "[nats]\nmax_in_flgiht = 3")).contains("max_in_flgiht"));
    assert!(refused(&GOOD.replace("channels = [", "channels = [\"\", ")).contains("endpoint[0].channels"));
    let twice = format!("{GOOD}\n[[endpoint]]\nname = \"deribit\"\nurl = \"ws://x\"\nchannels = []\n");
    assert!(refused(&twice).contains("endpoint[1].name"));
    let params = GOOD.replace("connections = 2", "connections = 2\nauth_params = \"{}\"");
    assert!(refused(&params).contains("auth_method"));
}

#[test]
fn a_missing_file_and_a_missing_variable_are_errors() {
    let e = Config::load(Path::new("/nonexistent/bridge.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }), "{e}");
    let text = GOOD.replace(
        "connections = 2",
        "connections = 2\nauth_method = \"public/auth\"\nauth_params_env = \"WSLINK_BRIDGE_TEST_UNSET_VAR\"",
    );
    let c = Config::parse(&text).unwrap();
    assert!(c.endpoints[0].auth_params().unwrap_err().to_string().contains("WSLINK_BRIDGE_TEST_UNSET_VAR"));
}

#[test]
fn the_duplicate_window_covers_a_resend_after_a_lost_ack() {
    // Default ack timeout 5 s: at least 4 x (5000 + 2000) = 28000.
    let with = |extra: &str| GOOD.replace("[nats]", &format!("[nats]\n{extra}"));
    assert!(refused(&with("duplicate_window_ms = 27999")).contains("nats.duplicate_window_ms"));
    assert!(Config::parse(&with("duplicate_window_ms = 28000")).is_ok());
    let slow = refused(&with("ack_timeout_ms = 30000\nduplicate_window_ms = 120000"));
    assert!(slow.contains("nats.duplicate_window_ms") && slow.contains("128000"), "{slow}");
    // No i64-nanosecond overflow: far too long windows and timeouts are refused.
    assert!(refused(&with("duplicate_window_ms = 9223372036854775807")).contains("nats.duplicate_window_ms"));
    assert!(refused(&with("ack_timeout_ms = 9223372036854775807")).contains("nats.ack_timeout_ms"));
    let c = Config::parse(GOOD).unwrap();
    assert_eq!(c.min_duplicate_window_ms(), 28_000);
    assert_eq!(c.endpoints[0].max_message_size, 8 << 20);
}

#[test]
fn an_endpoints_connection_settings_are_read_and_checked() {
    let c = Config::parse(GOOD).unwrap();
    let e = &c.endpoints[0];
    // Defaults: reconnects start again after 10 s up, and wait at most 10 s.
    let b = e.backoff();
    assert_eq!(
        (b.initial, b.max, b.reset_after),
        (Duration::from_millis(250), Duration::from_secs(10), Duration::from_secs(10))
    );
    assert_eq!(b.factor, 1.5);
    assert_eq!(e.ping().map(|p| (p.interval, p.timeout)), Some((Duration::from_secs(15), Duration::from_secs(10))));
    assert_eq!(e.idle_timeout(), None);
    assert_eq!(c.bridge.gap_settle_ms, 5000);
    assert_eq!(e.max_sequence_jump, 1_000_000_000);

    let set = GOOD.replace(
        "connections = 2",
        "connections = 2\nbackoff_initial_ms = 50\nbackoff_max_ms = 2000\nbackoff_factor = 2.0\nbackoff_reset_after_ms = 3000\n\
         ping_interval_ms = 0\nidle_timeout_ms = 7000\nmax_sequence_jump = 10",
    );
    let c = Config::parse(&set).unwrap();
    let e = &c.endpoints[0];
    let b = e.backoff();
    assert_eq!(
        (b.initial, b.max, b.reset_after, b.factor),
        (Duration::from_millis(50), Duration::from_secs(2), Duration::from_secs(3), 2.0)
    );
    assert_eq!(e.ping(), None);
    assert_eq!(e.idle_timeout(), Some(Duration::from_secs(7)));
    assert_eq!(e.max_sequence_jump, 10);

    let with = |extra: &str| GOOD.replace("connections = 2", &format!("connections = 2\n{extra}"));
    for (extra, field) in [
        ("backoff_initial_ms = 0", "endpoint[0].backoff_initial_ms"),
        ("backoff_initial_ms = 500\nbackoff_max_ms = 100", "endpoint[0].backoff_max_ms"),
        ("backoff_factor = 0.5", "endpoint[0].backoff_factor"),
        ("backoff_factor = nan", "endpoint[0].backoff_factor"),
        ("backoff_reset_after_ms = 0", "endpoint[0].backoff_reset_after_ms"),
        ("ping_interval_ms = 100\nping_timeout_ms = 100", "endpoint[0].ping_timeout_ms"),
        ("ping_interval_ms = 100\nping_timeout_ms = 0", "endpoint[0].ping_timeout_ms"),
        ("idle_timeout_ms = 99999999999", "endpoint[0].idle_timeout_ms"),
        ("max_sequence_jump = 0", "endpoint[0].max_sequence_jump"),
        ("backoff_max_ms = -1", "invalid configuration"),
    ] {
        let e = refused(&with(extra));
        assert!(e.contains(field), "{extra}: {e}");
    }
    let settle = GOOD.replace("instance = \"a\"", "instance = \"a\"\ngap_settle_ms = 60001");
    assert!(refused(&settle).contains("bridge.gap_settle_ms"));
    assert_eq!(Config::parse(GOOD).unwrap().bridge.worker_threads, 1);
    for threads in ["0", "65"] {
        let t = GOOD.replace("instance = \"a\"", &format!("instance = \"a\"\nworker_threads = {threads}"));
        assert!(refused(&t).contains("bridge.worker_threads"), "{threads}");
    }
}
