use proptest::prelude::*;
use serde_json::Value;

use super::*;

/// The answer of the tree the bridge used to build: `Value::pointer` on the
/// parsed message, the value mapped as the bridge maps it.
fn oracle(json: &[u8], pointer: &str) -> Option<Scalar<'static>> {
    if pointer.is_empty() {
        return None;
    }
    let value: Value = serde_json::from_slice(json).ok()?;
    Some(match value.pointer(pointer)? {
        Value::String(s) => Scalar::Str(Cow::Owned(s.clone())),
        Value::Bool(b) => Scalar::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Scalar::Unsigned(u),
            (None, Some(i)) => Scalar::Signed(i),
            (None, None) => Scalar::Other,
        },
        _ => Scalar::Other,
    })
}

/// `find` and the oracle, one pointer at a time and all three together.
fn agree(json: &[u8], pointers: [&str; 3]) {
    let parsed = pointers.map(Pointer::parse);
    let together = find(json, [&parsed[0], &parsed[1], &parsed[2]]);
    for (i, p) in pointers.iter().enumerate() {
        let want = oracle(json, p);
        let alone = find(json, [&parsed[i]]).and_then(|[v]| v);
        let with_others = together.as_ref().and_then(|all| all[i].clone());
        let text = String::from_utf8_lossy(json);
        assert_eq!(alone, want, "{p:?} alone in {text}");
        assert_eq!(with_others, want, "{p:?} among {pointers:?} in {text}");
        // Text known to be UTF-8 gives the same answers.
        if let Ok(text) = std::str::from_utf8(json) {
            let in_str = find_in_str(text, [&parsed[0], &parsed[1], &parsed[2]]);
            assert_eq!(in_str.and_then(|all| all[i].clone()), want, "{p:?} in the text {text}");
        }
    }
}

#[test]
fn the_three_pointers_of_a_notification() {
    let m = br#"{"jsonrpc":"2.0","method":"subscription","params":{"channel":"t.BTC","data":{"seq":7,"id":"a\"b","neg":-3,"f":1.5,"big":123456789012345678901}}}"#;
    let p = |s: &str| Pointer::parse(s);
    let [c, s, i] = find(m, [&p("/params/channel"), &p("/params/data/seq"), &p("/params/data/id")]).unwrap();
    assert_eq!(c, Some(Scalar::Str(Cow::Borrowed("t.BTC"))));
    assert!(matches!(c, Some(Scalar::Str(Cow::Borrowed(_)))), "no copy without escapes");
    assert_eq!(s, Some(Scalar::Unsigned(7)));
    assert_eq!(i, Some(Scalar::Str(Cow::Owned("a\"b".into()))));
    let [neg, f, big] = find(m, [&p("/params/data/neg"), &p("/params/data/f"), &p("/params/data/big")]).unwrap();
    assert_eq!((neg, f, big), (Some(Scalar::Signed(-3)), Some(Scalar::Other), Some(Scalar::Other)));
    let [missing, object, unset] = find(m, [&p("/params/nothing"), &p("/params"), &p("")]).unwrap();
    assert_eq!((missing, object, unset), (None, Some(Scalar::Other), None));
}

#[test]
fn the_same_pointer_twice_and_one_inside_another() {
    for pointers in [
        ["/a/b", "/a/b", "/a"],
        ["/a", "/a/b", "/a/b/c"],
        ["/0", "/a/0", "/a/1"],
        ["/a~1b", "/m~0n", "/"],
        ["/a/01", "/a/+1", "/a/1"],
    ] {
        for json in [
            r#"{"a":{"b":1,"c":2}}"#,
            r#"{"a":{"b":{"c":"x"}}}"#,
            r#"{"a":[10,"y",{"b":3}],"0":true}"#,
            r#"{"a/b":"slash","m~n":"tilde","":"empty"}"#,
            r#"[{"a":1},[2]]"#,
        ] {
            agree(json.as_bytes(), pointers);
        }
    }
}

#[test]
fn the_last_of_two_equal_keys_counts() {
    for json in [
        r#"{"a":{"b":1},"a":{"c":2}}"#,
        r#"{"a":{"b":1},"a":{"b":2}}"#,
        r#"{"a":1,"a":{"b":3}}"#,
        r#"{"a":{"b":3},"a":1}"#,
        r#"{"a":{"b":1,"b":[1]}}"#,
        r#"{"a":{"b":"x"},"z":0,"a":{"b":"y"}}"#,
    ] {
        agree(json.as_bytes(), ["/a/b", "/a", "/z"]);
    }
}

#[test]
fn broken_documents_have_no_values() {
    let p = Pointer::parse("/a");
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let deep_object = format!(r#"{{"a":1,"b":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    for json in [
        &b"{\"a\":1} x"[..],
        b"{\"a\":1",
        b"{\"a\":\"\xff\"}",
        b"",
        b"\xff\x00\x01",
        b"{\"a\":1}{\"a\":2}",
        b"{\"a\":01}",
        b"{a:1}",
        deep.as_bytes(),
        deep_object.as_bytes(),
    ] {
        assert_eq!(find(json, [&p]), None, "{:?}", String::from_utf8_lossy(json));
        agree(json, ["/a", "/b", ""]);
    }
    // A valid document with no object at the root has no keys, and no panic.
    assert_eq!(find(b"  7 ", [&p]), Some([None]));
    assert_eq!(find(b"\"a\"", [&Pointer::parse("")]), Some([None]));
}

#[test]
fn pointers_not_starting_with_a_slash_point_at_nothing() {
    assert!(!Pointer::parse("").is_set());
    assert!(!Pointer::parse("a/b").is_set());
    assert!(Pointer::parse("/").is_set());
}

/// JSON text with keys from a small set (so pointers hit, and keys repeat),
/// numbers of every kind, escapes, and nesting.
fn json_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec!["a", "b", "0", "1", "a/b", "m~n", "", "é", "a\\\"b"]);
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        prop::sample::select(vec!["1.5", "-0", "1e3", "123456789012345678901", "-99999999999999999999", "0.0"])
            .prop_map(str::to_owned),
        "[a-z\\\\\"é ]{0,6}".prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(|kv| {
                let fields: Vec<String> = kv.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

fn pointer_text() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec!["a", "b", "0", "1", "01", "+1", "a~1b", "m~0n", "", "é", "a\"b", "~01"]);
    prop::collection::vec(token, 0..4).prop_map(|t| t.iter().map(|t| format!("/{t}")).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn find_answers_as_the_parsed_tree_does(json in json_text(), p in prop::array::uniform3(pointer_text())) {
        agree(json.as_bytes(), [&p[0], &p[1], &p[2]]);
    }

    #[test]
    fn broken_bytes_never_panic_and_agree(json in json_text(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = json.into_bytes();
        if !bytes.is_empty() {
            let at = cut.index(bytes.len());
            bytes[at] = byte;
        }
        agree(&bytes, ["/a", "/a/b", "/0/1"]);
        let truncated = &bytes[..bytes.len() / 2];
        agree(truncated, ["/a", "/b/a", "/1"]);
    }
}
