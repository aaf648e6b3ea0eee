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
