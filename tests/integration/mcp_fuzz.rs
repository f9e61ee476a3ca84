//! `codelens --mcp` under 1,000 malformed or random JSON-RPC messages, generated from the
//! server's own `tools/list` answer (its tools and input schemas) and then mutated: wrong
//! types, missing and unknown fields, huge strings, NUL bytes, deep nesting, invalid
//! UTF-8, unknown methods, notifications with ids, batches. The server must answer every
//! well-formed request exactly once (a result or an error), stay silent on notifications,
//! write nothing but JSON-RPC 2.0 to stdout, and still answer a valid request at the end.
//!
//! The generator is a seeded PRNG; `CODELENS_FUZZ_SEED=<n>` replays a run, and every
//! failure message names the seed.

use crate::common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::mcp_client::Client;
use common::rng::Rng;
use common::*;
use serde_json::{Map, Value, json};

const MESSAGES: usize = 1_000;
const DEADLINE: Duration = Duration::from_secs(120);

fn random_string(rng: &mut Rng) -> String {
    match rng.index(12) {
        0 => String::new(),
        1 => "x".repeat(100_000 + rng.index(50_000)),
        2 => "a\0b\0".to_string(),
        3 => "../../../../etc/passwd".to_string(),
        4 => "/etc/shadow".to_string(),
        5 => "((((((((((a*)*)*)*)*)*)*)*)*)*)[".to_string(),
        6 => "src/**/*.{rs,ts".to_string(),
        7 => "😀\u{202e}\u{feff}ünïcødé\u{10ffff}".to_string(),
        8 => "\\u0000\"'`;$(rm -rf /)".to_string(),
        9 => "Store".to_string(),
        10 => "src/store.rs".to_string(),
        _ => (0..rng.index(40))
            .map(|_| char::from(b' ' + rng.index(95) as u8))
            .collect(),
    }
}

fn random_number(rng: &mut Rng) -> Value {
    match rng.index(8) {
        0 => json!(0),
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(i64::MIN),
        4 => json!(u64::MAX),
        5 => json!(1.5e300),
        6 => json!(-0.5),
        _ => json!(rng.index(1000)),
    }
}

fn deep(depth: usize, array: bool) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = if array {
            json!([value])
        } else {
            json!({ "a": value })
        };
    }
    value
}

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.index(if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => random_number(rng),
        3 | 4 => json!(random_string(rng)),
        5 => Value::Array(
            (0..rng.index(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        6 => {
            let mut map = Map::new();
            for _ in 0..rng.index(4) {
                map.insert(random_string(rng), random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
        _ => deep(20 + rng.index(60), rng.chance(50)),
    }
}

/// A value of the schema's type, most of the time; anything at all otherwise.
fn value_for(rng: &mut Rng, schema: &Value) -> Value {
    if rng.chance(20) {
        return random_value(rng, 0);
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.is_empty()
    {
        return rng.pick(options).clone();
    }
    let kind = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) if !types.is_empty() => {
            rng.pick(types).as_str().unwrap_or("null").to_string()
        }
        _ => "string".into(),
    };
    match kind.as_str() {
        "integer" | "number" => random_number(rng),
        "boolean" => json!(rng.chance(50)),
        "null" => Value::Null,
        "array" => json!([random_string(rng)]),
        "object" => json!({}),
        _ => json!(random_string(rng)),
    }
}

/// Arguments for a tool, from its input schema, then mutated.
fn arguments_for(rng: &mut Rng, schema: &Value) -> Value {
    let mut args = Map::new();
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            if rng.chance(70) {
                args.insert(name.clone(), value_for(rng, property));
            }
        }
        if let Some(required) = schema["required"].as_array() {
            for name in required.iter().filter_map(Value::as_str) {
                if rng.chance(85) && !args.contains_key(name) {
                    args.insert(name.into(), value_for(rng, &properties[name]));
                }
            }
        }
    }
    if rng.chance(15) {
        args.insert(random_string(rng), random_value(rng, 0));
    }
    match rng.index(20) {
        0 => random_value(rng, 0),
        1 => Value::Null,
        _ => Value::Object(args),
    }
}

const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "tools/call",
    "tools/call",
    "tools/call",
    "resources/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "logging/setLevel",
    "completion/complete",
    "no/such/method",
    "",
    "notifications/initialized",
    "notifications/progress",
    "rpc.discover",
];

/// One line to send, and the id of the answer it must get (when it is a well-formed
/// request with a fresh id).
struct Message {
    line: Vec<u8>,
    expect: Option<Value>,
}

fn request_params(rng: &mut Rng, method: &str, tools: &[(String, Value)]) -> Value {
    match method {
        "tools/call" => {
            let (name, schema) = rng.pick(tools);
            let name = match rng.index(12) {
                0 => json!("no_such_tool"),
                1 => random_value(rng, 0),
                _ => json!(name),
            };
            let mut params = json!({ "name": name, "arguments": arguments_for(rng, schema) });
            if rng.chance(10) {
                params.as_object_mut().unwrap().remove("arguments");
            }
            if rng.chance(5) {
                params["_meta"] = json!({"progressToken": random_value(rng, 0)});
            }
            params
        }
        "initialize" => json!({
            "protocolVersion": value_for(rng, &json!({"type": "string"})),
            "capabilities": random_value(rng, 0),
            "clientInfo": {"name": random_string(rng), "version": "1"},
        }),
        "tools/list" if rng.chance(50) => json!({ "cursor": random_value(rng, 0) }),
        _ => random_value(rng, 0),
    }
}

fn generate(rng: &mut Rng, n: usize, tools: &[(String, Value)]) -> Message {
    let id = json!(format!("fuzz-{n}"));
    let numeric_id = json!(1_000_000 + n);
    let method = *rng.pick(METHODS);
    let line = |value: Value| value.to_string().into_bytes();
    match rng.index(20) {
        // Well-formed requests (most of the run): each must get exactly one answer.
        0..=10 => {
            let id = if rng.chance(50) { id } else { numeric_id };
            let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
            if rng.chance(90) {
                message["params"] = request_params(rng, method, tools);
            }
            // A params value that is not an object or array is not a valid request:
            // it may be answered with an error, or not at all.
            let well_formed = message
                .get("params")
                .is_none_or(|p| p.is_object() || p.is_array());
            Message {
                line: line(message),
                expect: well_formed.then_some(id),
            }
        }
        // Notifications (no id): never answered.
        11 | 12 => {
            let method = *rng.pick(&[
                "notifications/initialized",
                "notifications/cancelled",
                "notifications/progress",
                "notifications/roots/list_changed",
                "notifications/no_such",
                "tools/call",
            ]);
            let params = match method {
                "notifications/cancelled" => json!({"requestId": "not-a-live-request"}),
                "tools/call" => request_params(rng, method, tools),
                _ => random_value(rng, 0),
            };
            Message {
                line: line(json!({"jsonrpc": "2.0", "method": method, "params": params})),
                expect: None,
            }
        }
        // Broken envelopes: the answer, if any, must still be JSON-RPC.
        13 => {
            let envelope = match rng.index(8) {
                0 => json!({"jsonrpc": "1.0", "id": id, "method": "ping"}),
                1 => json!({"id": id, "method": "ping"}),
                2 => json!({"jsonrpc": "2.0", "id": random_value(rng, 0), "method": "ping"}),
                3 => json!({"jsonrpc": "2.0", "id": id, "method": random_value(rng, 0)}),
                4 => json!({"jsonrpc": "2.0", "id": id}),
                5 => json!({"jsonrpc": "2.0", "id": id, "result": {}}),
                6 => json!({"jsonrpc": "2.0", "id": id, "error": {"code": -1, "message": "x"}}),
                _ => json!({"jsonrpc": "2.0", "method": "notifications/initialized", "id": id}),
            };
            Message {
                line: line(envelope),
                expect: None,
            }
        }
        // Batches (JSON-RPC 2.0 allows them; MCP 2025-06-18 does not).
        14 => {
            let batch: Vec<Value> = (0..rng.index(4))
                .map(
                    |k| json!({"jsonrpc": "2.0", "id": format!("batch-{n}-{k}"), "method": "ping"}),
                )
                .collect();
            Message {
                line: line(Value::Array(batch)),
                expect: None,
            }
        }
        // Deep nesting, past serde_json's recursion limit.
        15 => {
            let mut text = String::from(
                "{\"jsonrpc\":\"2.0\",\"id\":\"deep\",\"method\":\"ping\",\"params\":",
            );
            let depth = 1_000 + rng.index(50_000);
            text.push_str(&"[".repeat(depth));
            text.push_str(&"]".repeat(depth));
            text.push('}');
            Message {
                line: text.into_bytes(),
                expect: None,
            }
        }
        // Invalid UTF-8 inside and outside strings.
        16 => {
            let mut bytes = b"{\"jsonrpc\":\"2.0\",\"id\":\"utf8\",\"method\":\"tools/call\",\"params\":{\"name\":\"search_symbols\",\"arguments\":{\"query\":\"".to_vec();
            bytes.extend_from_slice(&[0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]);
            bytes.extend_from_slice(b"\"}}}");
            if rng.chance(50) {
                bytes = vec![0x80, 0xbf, 0xff, b'{', 0xc0, 0xaf];
            }
            Message {
                line: bytes,
                expect: None,
            }
        }
        // Not JSON, or truncated JSON.
        17 => {
            let whole = json!({"jsonrpc": "2.0", "id": id, "method": "ping"}).to_string();
            let cut = rng.index(whole.len());
            let text = match rng.index(5) {
                0 => whole[..cut].to_string(),
                1 => String::new(),
                2 => "   ".to_string(),
                3 => "null".to_string(),
                _ => random_string(rng),
            };
            Message {
                line: text.into_bytes(),
                expect: None,
            }
        }
        // NUL bytes and control characters on the line itself.
        18 => {
            let mut bytes = json!({"jsonrpc": "2.0", "id": id, "method": "ping"})
                .to_string()
                .into_bytes();
            let at = rng.index(bytes.len());
            bytes.insert(at, 0);
            bytes.insert(0, 0x1b);
            Message {
                line: bytes,
                expect: None,
            }
        }
        // A huge, valid request.
        _ => {
            let message = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                "params": {"name": "search_symbols", "arguments": {"query": "q".repeat(1_000_000)}}});
            Message {
                line: line(message),
                expect: Some(id),
            }
        }
    }
}

/// `codelens --mcp` on `repo`, started but not initialized: the test says everything.
fn start_server(repo: &TestRepo) -> Client {
    let mut command = codelens_command(&repo.root(), &["--mcp"]);
    command.env("CODELENS_TELEMETRY", "0");
    Client::spawn(command, "codelens --mcp")
}

/// Reads answers until `wanted` has arrived; every line must be a JSON-RPC 2.0 message.
fn collect_until(
    server: &mut Client,
    answers: &mut BTreeMap<String, Vec<Value>>,
    wanted: &Value,
    seed: u64,
) {
    let deadline = Instant::now() + DEADLINE;
    while !answers.contains_key(&wanted.to_string()) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = server.recv_line(left).unwrap_or_else(|| {
            panic!("seed {seed}: no answer to {wanted} (server dead or silent)")
        });
        record(&line, answers, seed);
    }
}

/// Checks one stdout line (a JSON-RPC 2.0 message) and files it when it is an answer.
fn record(line: &[u8], answers: &mut BTreeMap<String, Vec<Value>>, seed: u64) {
    let text = std::str::from_utf8(line)
        .unwrap_or_else(|_| panic!("seed {seed}: stdout line is not UTF-8: {line:?}"));
    let message: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("seed {seed}: stdout line is not JSON ({e}): {text:.500}"));
    assert_eq!(message["jsonrpc"], "2.0", "seed {seed}: {text:.500}");
    let is_answer = message.get("result").is_some() ^ message.get("error").is_some();
    let is_server_message = message.get("method").is_some_and(Value::is_string);
    assert!(
        is_answer || is_server_message,
        "seed {seed}: neither an answer nor a request/notification: {text:.500}"
    );
    if let Some(error) = message.get("error") {
        assert!(
            error["code"].is_i64() && error["message"].is_string(),
            "seed {seed}: malformed error object: {text:.500}"
        );
    }
    if is_answer {
        answers
            .entry(message["id"].to_string())
            .or_default()
            .push(message);
    }
}

#[test]
fn a_thousand_malformed_or_random_messages_never_kill_the_server() {
    let seed = std::env::var("CODELENS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x00C0_DE1E_75EE_D5EE);
    eprintln!("mcp fuzz: seed {seed} (replay with CODELENS_FUZZ_SEED={seed})");
    let mut rng = Rng::new(seed);

    let repo = indexed_sources_repo();

    let mut server = start_server(&repo);
    let mut answers = BTreeMap::new();
    let init = json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "codelens-fuzz", "version": "1"}}});
    server.send_bytes(init.to_string().as_bytes()).unwrap();
    server
        .send_bytes(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        .unwrap();
    server
        .send_bytes(br#"{"jsonrpc":"2.0","id":"list","method":"tools/list"}"#)
        .unwrap();
    collect_until(&mut server, &mut answers, &json!("list"), seed);
    let listed = &answers[&json!("list").to_string()][0];
    let tools: Vec<(String, Value)> = listed["result"]["tools"]
        .as_array()
        .expect("tools/list answers with tools")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["inputSchema"].clone(),
            )
        })
        .collect();
    assert!(tools.len() >= 6, "{listed}");

    let mut expected = BTreeMap::new();
    for n in 0..MESSAGES {
        let message = generate(&mut rng, n, &tools);
        if let Err(error) = server.send_bytes(&message.line) {
            panic!(
                "seed {seed}: the server stopped reading after message {n} ({error}): {:.300}",
                String::from_utf8_lossy(&message.line)
            );
        }
        if let Some(id) = message.expect {
            expected.insert(
                id.to_string(),
                String::from_utf8_lossy(&message.line).into_owned(),
            );
        }
        // Keep the pipe drained so the server never blocks on a full stdout.
        while let Some(line) = server.try_recv_line() {
            record(&line, &mut answers, seed);
        }
    }

    // Still serving: a valid request at the end is answered with a real result.
    let last = json!({"jsonrpc": "2.0", "id": "last", "method": "tools/call",
        "params": {"name": "index_status", "arguments": {}}});
    server
        .send_bytes(last.to_string().as_bytes())
        .unwrap_or_else(|e| {
            panic!("seed {seed}: the server is gone before the final request: {e}")
        });
    collect_until(&mut server, &mut answers, &json!("last"), seed);
    let status = &answers[&json!("last").to_string()][0];
    assert_eq!(
        status["result"]["structuredContent"]["files"], 3,
        "seed {seed}: {status}"
    );
    // Every well-formed request got exactly one answer (requests may finish out of order).
    let deadline = Instant::now() + DEADLINE;
    while expected.keys().any(|id| !answers.contains_key(id)) && Instant::now() < deadline {
        if let Some(line) = server.recv_line(Duration::from_millis(200)) {
            record(&line, &mut answers, seed);
        }
    }
    let missing: Vec<String> = expected
        .iter()
        .filter(|(id, _)| !answers.contains_key(*id))
        .map(|(id, line)| format!("{id}: {line:.300}"))
        .collect();
    assert!(
        missing.is_empty(),
        "seed {seed}: {} well-formed requests never answered:\n{}",
        missing.len(),
        missing.join("\n")
    );
    for id in expected.keys() {
        assert_eq!(
            answers[id].len(),
            1,
            "seed {seed}: request {id} answered {} times",
            answers[id].len()
        );
    }
    assert!(
        server.proc.child.try_wait().unwrap().is_none(),
        "seed {seed}: the server exited"
    );
    eprintln!(
        "mcp fuzz: {MESSAGES} messages, {} well-formed requests all answered",
        expected.len()
    );
}
