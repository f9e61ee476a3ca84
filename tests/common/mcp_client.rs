#![allow(dead_code)]
//! The MCP client over stdio that every integration test speaking JSON-RPC to the server
//! by hand uses: the real binary (or the command an agent's config names) as a child
//! process, its stdout read line by line on a thread, its stderr collected
//! ([`Proc`]). rmcp's client (`mcp_rmcp.rs`) and the Python SDK (`tests/python/`) are
//! the independent ones.
//!
//! [`Client::start`] is the usual way in: started and initialized, then one request at
//! a time with answers matched by id ([`Client::request`], [`Client::call`]). The raw
//! side — [`Client::spawn`] without the handshake, [`Client::send_bytes`] of any bytes,
//! [`Client::recv_line`] of whatever comes — is for tests that must say or hear what a
//! well-behaved client would not (the fuzzer, a last line without its newline).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::codelens_command;
use super::procs::Proc;

pub const DEADLINE: Duration = Duration::from_secs(60);

/// An MCP server on the other end of a pair of pipes.
pub struct Client {
    /// The server process: its pid, exit and collected stderr.
    pub proc: Proc,
    stdin: Option<ChildStdin>,
    lines: Receiver<Vec<u8>>,
    /// The stdout lines this client read for itself ([`Client::request`],
    /// [`Client::finish`]); lines handed out by [`Client::recv_line`] are the caller's.
    seen: Vec<Vec<u8>>,
    next_id: u64,
}

impl Client {
    /// `codelens --mcp` in `dir`, with `env` added to its environment, initialized.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Client {
        let mut command = codelens_command(dir, &["--mcp"]);
        command.envs(env.iter().copied());
        let mut client = Client::spawn(command, "codelens --mcp");
        client.initialize("codelens-test");
        client
    }

    /// Starts `command` with piped stdio; nothing is sent yet. `name` is what failure
    /// messages call it.
    pub fn spawn(mut command: Command, name: &str) -> Client {
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut proc = Proc::spawn(command, name);
        let stdin = proc.child.stdin.take();
        let stdout = proc.child.stdout.take().expect("stdout is piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            // Bytes, not `String`s: a line that is not UTF-8 must reach the test.
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if line.last() == Some(&b'\n') {
                            line.pop();
                        }
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Client {
            proc,
            stdin,
            lines,
            seen: Vec::new(),
            next_id: 1,
        }
    }

    /// The handshake, as client `client_name`: `initialize` (answered by a server that
    /// calls itself codelens), then the `initialized` notification. Returns the answer.
    pub fn initialize(&mut self, client_name: &str) -> Value {
        let init = self.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": client_name, "version": "1"}}),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "codelens", "{init}");
        self.send_raw(
            &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string(),
        );
        init
    }

    /// Writes `line` and a newline; panics when the server no longer reads.
    pub fn send_raw(&mut self, line: &str) {
        self.send_bytes(line.as_bytes())
            .unwrap_or_else(|e| panic!("{} stopped reading ({e})", self.proc.name));
    }

    /// Writes `line` (any bytes) and a newline; `Err` when the server no longer reads.
    pub fn send_bytes(&mut self, line: &[u8]) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line)?;
        stdin.write_all(b"\n")?;
        stdin.flush()
    }

    /// Writes `bytes` as they are: no newline is added.
    pub fn write_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes)?;
        stdin.flush()
    }

    /// Ends the server's input (end of file on its stdin).
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// The next stdout line, waiting up to `timeout`; `None` when none came in time or
    /// stdout is closed.
    pub fn recv_line(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// A stdout line that has already arrived, if any.
    pub fn try_recv_line(&mut self) -> Option<Vec<u8>> {
        self.lines.try_recv().ok()
    }

    /// Sends a request with the next id and waits for the answer with that id (a result
    /// or an error). Every line read on the way must be a JSON-RPC 2.0 message.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_raw(
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no answer to {method} #{id} from {}; stderr: {}",
                    self.proc.name,
                    self.proc.stderr()
                )
            });
            let message = protocol_message(&line);
            self.seen.push(line);
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    /// A tool call's result (asserting it is one, not a JSON-RPC error).
    pub fn call(&mut self, tool: &str, arguments: Value) -> Value {
        let answer = self.request("tools/call", json!({"name": tool, "arguments": arguments}));
        assert!(answer.get("error").is_none(), "{tool}: {answer}");
        answer["result"].clone()
    }

    pub fn text(result: &Value) -> String {
        result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Closes stdin, waits up to `deadline` for the server to exit, then reads every
    /// line it wrote before it did. Returns how it exited.
    pub fn finish(&mut self, deadline: Duration) -> ExitStatus {
        self.close_stdin();
        let status = self.proc.wait_exit(deadline);
        let until = Instant::now() + deadline;
        loop {
            match self
                .lines
                .recv_timeout(until.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => return status,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{} exited, but its stdout stayed open", self.proc.name)
                }
            }
        }
    }

    /// The stdout lines this client read for itself, in order.
    pub fn seen(&self) -> &[Vec<u8>] {
        &self.seen
    }

    /// Every line the server wrote (of those this client read) was a JSON-RPC 2.0
    /// message.
    pub fn assert_stdout_is_protocol_only(&self) {
        for line in &self.seen {
            protocol_message(line);
        }
    }
}

/// `line` as a JSON-RPC 2.0 message, or a panic saying what it is instead.
fn protocol_message(line: &[u8]) -> Value {
    let text =
        std::str::from_utf8(line).unwrap_or_else(|_| panic!("stdout line is not UTF-8: {line:?}"));
    let message: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {text:.500}"));
    assert_eq!(message["jsonrpc"], "2.0", "{text:.500}");
    message
}
