//! The HTTP front of the ingest server, on `tiny_http`: small, synchronous, and easy to
//! audit, which suits a service receiving one small POST per machine per day. A few
//! worker threads share one storage behind a mutex (SQLite has one writer anyway).
//!
//! Routes:
//! - `POST /v1/events`: a payload (see `assets/telemetry-schema.json`) → 200, 400, 413;
//! - `DELETE /v1/machines/<uuid>`: delete everything sent under that id → 200;
//! - `GET /v1/aggregate`: totals, buckets under `min_machines` machines left out;
//! - `GET /healthz`.
//!
//! Nothing about the connection (address, headers, user agent) is read, stored or
//! logged: requests are not logged at all. (The peer address is used once, in memory,
//! to find the request's socket and bound how long its body may take: see
//! [`BODY_DEADLINE`].)

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tiny_http::{Header, Method, Request, Response, Server};

use super::{Storage, validate};

/// The configuration of a running server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest accepted body, bytes.
    pub max_body: usize,
    /// Aggregate buckets reported by fewer machines are suppressed.
    pub min_machines: u64,
    /// Days older than this many days are deleted (checked hourly).
    pub retention_days: u64,
    pub workers: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_body: 1024 * 1024,
            min_machines: 5,
            retention_days: 730,
            workers: 4,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {why}")]
    Listen { addr: String, why: String },
}

/// A listening server; requests are answered until [`Running::stop`] or the process
/// ends.
pub struct Running {
    server: Arc<Server>,
    workers: Vec<std::thread::JoinHandle<()>>,
    pub addr: SocketAddr,
}

impl Running {
    pub fn stop(self) {
        self.server.unblock();
        for _ in &self.workers {
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }

    /// Serves until the process is killed.
    pub fn wait(self) {
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

struct Shared {
    storage: Mutex<Box<dyn Storage>>,
    options: Options,
    last_prune: Mutex<Option<Instant>>,
}

pub fn serve(
    addr: &str,
    storage: Box<dyn Storage>,
    options: Options,
) -> Result<Running, ServeError> {
    let server = Server::http(addr).map_err(|why| ServeError::Listen {
        addr: addr.into(),
        why: why.to_string(),
    })?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| ServeError::Listen {
            addr: addr.into(),
            why: "not an IP address".into(),
        })?;
    let server = Arc::new(server);
    let shared = Arc::new(Shared {
        storage: Mutex::new(storage),
        options: options.clone(),
        last_prune: Mutex::new(None),
    });
    let workers = (0..options.workers.max(1))
        .filter_map(|i| {
            let server = Arc::clone(&server);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("ingest-{i}"))
                .spawn(move || {
                    while let Ok(request) = server.recv() {
                        prune_if_due(&shared);
                        handle(request, &shared);
                    }
                })
                .ok()
        })
        .collect();
    Ok(Running {
        server,
        workers,
        addr: bound,
    })
}

fn prune_if_due(shared: &Shared) {
    let Ok(mut last) = shared.last_prune.lock() else {
        return;
    };
    if last.is_some_and(|at| at.elapsed() < Duration::from_secs(3600)) {
        return;
    }
    *last = Some(Instant::now());
    let oldest = chrono::Utc::now().date_naive() - chrono::Days::new(shared.options.retention_days);
    if let Ok(mut storage) = shared.storage.lock() {
        let _ = storage.prune_before(&oldest.format("%Y-%m-%d").to_string());
    }
}

fn json_response(code: u16, body: serde_json::Value) -> Response<std::io::Cursor<Vec<u8>>> {
    let header =
        Header::from_bytes("Content-Type", "application/json").expect("static header is valid");
    Response::from_string(body.to_string())
        .with_status_code(code)
        .with_header(header)
}

fn error(code: u16, message: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    json_response(code, serde_json::json!({ "error": message }))
}

fn handle(mut request: Request, shared: &Shared) {
    let path = request.url().split('?').next().unwrap_or("").to_string();
    let response = match (request.method(), path.as_str()) {
        (Method::Post, "/v1/events") => events(&mut request, shared),
        (Method::Delete, p) if p.starts_with("/v1/machines/") => {
            delete(&p["/v1/machines/".len()..], shared)
        }
        (Method::Get, "/v1/aggregate") => match shared.storage.lock() {
            Ok(storage) => match storage.aggregate(shared.options.min_machines) {
                Ok(aggregate) => json_response(200, serde_json::json!(aggregate)),
                Err(_) => error(500, "storage failed"),
            },
            Err(_) => error(500, "storage failed"),
        },
        (Method::Get, "/healthz") => json_response(200, serde_json::json!({ "ok": true })),
        _ => error(404, "no such route"),
    };
    let _ = request.respond(response);
}

fn events(request: &mut Request, shared: &Shared) -> Response<std::io::Cursor<Vec<u8>>> {
    let limit = shared.options.max_body;
    if request.body_length().is_some_and(|n| n > limit) {
        return error(413, "body too large");
    }
    let body = match read_body(request, limit) {
        Ok(body) => body,
        Err(BodyError::TimedOut) => return error(408, "the body took too long"),
        Err(BodyError::Io) => return error(400, "could not read the body"),
    };
    if body.len() > limit {
        return error(413, "body too large");
    }
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string();
    let payload = match validate(&body, &tomorrow) {
        Ok(payload) => payload,
        Err(why) => return error(400, &why.to_string()),
    };
    match shared.storage.lock() {
        Ok(mut storage) => match storage.put(&payload) {
            Ok(()) => json_response(
                200,
                serde_json::json!({ "accepted_days": payload.days.len() }),
            ),
            Err(_) => error(500, "storage failed"),
        },
        Err(_) => error(500, "storage failed"),
    }
}

fn delete(id: &str, shared: &Shared) -> Response<std::io::Cursor<Vec<u8>>> {
    let Ok(id) = uuid::Uuid::parse_str(id) else {
        return error(400, "not a machine id");
    };
    match shared.storage.lock() {
        Ok(mut storage) => match storage.delete_machine(&id.hyphenated().to_string()) {
            Ok(rows) => json_response(200, serde_json::json!({ "deleted_rows": rows })),
            Err(_) => error(500, "storage failed"),
        },
        Err(_) => error(500, "storage failed"),
    }
}

/// The longest a client may take to send a body. tiny_http sets no read timeout and the
/// body is read on one of the few workers: without this, a handful of clients that send
/// headers and then stall would hold every worker, and the server, forever.
pub const BODY_DEADLINE: Duration = Duration::from_secs(5);
/// Each read waits at most this long, so the deadline is checked at least this often.
const READ_SLICE: Duration = Duration::from_millis(500);

enum BodyError {
    TimedOut,
    Io,
}

/// Reads the body (at most `limit + 1` bytes: one over tells a too-large chunked body
/// from one that fits) within [`BODY_DEADLINE`].
fn read_body(request: &mut Request, limit: usize) -> Result<Vec<u8>, BodyError> {
    let socket = connection_socket(request);
    if let Some(socket) = &socket {
        let _ = socket.set_read_timeout(Some(READ_SLICE));
    }
    let deadline = Instant::now() + BODY_DEADLINE;
    let mut body = Vec::new();
    let mut reader = request.as_reader().take(limit as u64 + 1);
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) && Instant::now() < deadline => {}
            // The timeout stays set: tiny_http drains an unread body when the request
            // is dropped, and that must not block either.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(BodyError::TimedOut);
            }
            Err(_) => return Err(BodyError::Io),
        }
        if Instant::now() >= deadline {
            return Err(BodyError::TimedOut);
        }
    }
    // A kept-alive connection waits for its next request without a timeout, as before
    // (on tiny_http's own threads, not the workers).
    if let Some(socket) = &socket {
        let _ = socket.set_read_timeout(None);
    }
    Ok(body)
}

/// The request's own socket. tiny_http does not expose it, so it is found among this
/// process's descriptors by its peer address (unique per connection); the result
/// borrows the descriptor and never closes it. `None` when not found (then the body
/// is read without a socket timeout, and only the deadline between reads applies).
#[cfg(unix)]
fn connection_socket(request: &Request) -> Option<std::mem::ManuallyDrop<std::net::TcpStream>> {
    use std::os::fd::{FromRawFd, RawFd};
    let peer = *request.remote_addr()?;
    let fds: Vec<RawFd> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .map_while(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => (0..1024).collect(),
    };
    fds.into_iter().find_map(|fd| {
        // SAFETY: ManuallyDrop: the descriptor is borrowed, never closed here. A
        // descriptor that is not a socket only makes getpeername fail.
        let stream = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
        (stream.peer_addr().ok() == Some(peer)).then_some(stream)
    })
}

#[cfg(not(unix))]
fn connection_socket(_request: &Request) -> Option<std::mem::ManuallyDrop<std::net::TcpStream>> {
    None
}
