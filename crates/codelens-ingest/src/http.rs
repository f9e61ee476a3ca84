//! The HTTP front of the ingest server: `axum` routes on `hyper`'s HTTP/1 server, in a
//! tokio runtime of its own on a background thread. Every connection is a tokio task,
//! so slow or idle clients cost a little memory, never a worker; what each may take is
//! bounded (see [`HEADER_TIMEOUT`], [`BODY_DEADLINE`], `Options::max_body`).
//!
//! Routes:
//! - `POST /v1/events`: a payload (see `assets/telemetry-schema.json`) → 200, 400, 408, 413;
//! - `DELETE /v1/machines/<uuid>`: delete everything sent under that id → 200;
//! - `GET /v1/aggregate`: totals, buckets under `min_machines` machines left out;
//! - `GET /healthz`.
//!
//! Nothing about the connection (address, headers, user agent) is read, stored or
//! logged: requests are not logged at all, and the accept loop drops the peer address
//! it is handed (no `ConnectInfo`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use super::{Storage, StorageError, validate};

/// The configuration of a running server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest accepted body, bytes.
    pub max_body: usize,
    /// Aggregate buckets reported by fewer machines are suppressed.
    pub min_machines: u64,
    /// Days older than this many days are deleted (checked hourly).
    pub retention_days: u64,
    /// Threads of the server's runtime, and at most as many threads calling storage.
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

/// The longest a client may take to send a request's headers, from the moment the
/// server starts waiting for them: a connection that stalls mid-headers (slowloris), or
/// sits idle between kept-alive requests, is closed after this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a client may take to send a body, once its headers are in (else 408).
pub const BODY_DEADLINE: Duration = Duration::from_secs(5);
/// At [`Running::stop`], requests under way get this long to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Retention is applied at start and then this often.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {why}")]
    Listen { addr: String, why: String },
}

/// A listening server; requests are answered until [`Running::stop`] or the process
/// ends.
pub struct Running {
    thread: std::thread::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
    pub addr: SocketAddr,
}

impl Running {
    /// Stops accepting, lets requests under way finish (for at most a few seconds),
    /// and returns once the server's threads are gone.
    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }

    /// Serves until the process is killed.
    pub fn wait(self) {
        let _keep_serving = self.stop;
        let _ = self.thread.join();
    }
}

struct Shared {
    /// SQLite is synchronous and has one writer anyway: storage is called on tokio's
    /// blocking threads ([`with_storage`]), one call at a time under this mutex, so a
    /// slow disk delays other storage calls but never the runtime's threads (which keep
    /// reading requests and enforcing timeouts).
    storage: Mutex<Box<dyn Storage>>,
    options: Options,
}

pub fn serve(
    addr: &str,
    storage: Box<dyn Storage>,
    options: Options,
) -> Result<Running, ServeError> {
    let listen_error = |why: String| ServeError::Listen {
        addr: addr.into(),
        why,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(|e| listen_error(e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| listen_error(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| listen_error(e.to_string()))?;
    let workers = options.workers.max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(workers)
        .thread_name("ingest")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| listen_error(format!("cannot start the runtime: {e}")))?;
    let listener = {
        let _in_runtime = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(|e| listen_error(e.to_string()))?
    };
    let shared = Arc::new(Shared {
        storage: Mutex::new(storage),
        options,
    });
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("ingest".into())
        .spawn(move || {
            runtime.block_on(run(listener, shared, stopped));
            // Storage calls under way (on blocking threads) are short; do not wait on a
            // stuck one forever.
            runtime.shutdown_timeout(SHUTDOWN_GRACE);
        })
        .map_err(|e| listen_error(format!("cannot start the server thread: {e}")))?;
    Ok(Running {
        thread,
        stop,
        addr: bound,
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/events", post(events))
        .route("/v1/machines/{*id}", delete(delete_machine))
        .route("/v1/aggregate", get(aggregate))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(shared)
}

/// Accepts connections until `stopped`, each served on its own task; then shuts down
/// gracefully.
async fn run(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let service = TowerToHyperService::new(router(Arc::clone(&shared)));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    let prune = tokio::spawn(prune_periodically(Arc::clone(&shared)));
    // A dropped `Running` (without `stop`) keeps serving, as `wait` does.
    let stopped = async {
        if stopped.await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                // The peer address is dropped here, unread.
                Ok((stream, _)) => {
                    let connection = http.serve_connection(TokioIo::new(stream), service.clone());
                    let connection = graceful.watch(connection);
                    tokio::spawn(async move {
                        // A client that goes away or times out is not an error to report.
                        let _ = connection.await;
                    });
                }
                // Out of descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
        }
    }
    drop(listener);
    prune.abort();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

async fn prune_periodically(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(PRUNE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let oldest =
            chrono::Utc::now().date_naive() - chrono::Days::new(shared.options.retention_days);
        let oldest = oldest.format("%Y-%m-%d").to_string();
        let _ = with_storage(&shared, move |storage| storage.prune_before(&oldest)).await;
    }
}

/// Runs `call` on the storage, on a blocking thread (see [`Shared::storage`]). `None`
/// when it failed (or the mutex was poisoned by a panic in an earlier call).
async fn with_storage<T: Send + 'static>(
    shared: &Arc<Shared>,
    call: impl FnOnce(&mut dyn Storage) -> Result<T, StorageError> + Send + 'static,
) -> Option<T> {
    let shared = Arc::clone(shared);
    tokio::task::spawn_blocking(move || {
        let mut storage = shared.storage.lock().ok()?;
        call(&mut **storage).ok()
    })
    .await
    .ok()
    .flatten()
}

fn json_response(code: StatusCode, body: serde_json::Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error(code: StatusCode, message: &str) -> Response {
    json_response(code, serde_json::json!({ "error": message }))
}

fn storage_failed() -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "storage failed")
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route")
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, serde_json::json!({ "ok": true }))
}

async fn aggregate(State(shared): State<Arc<Shared>>) -> Response {
    let min_machines = shared.options.min_machines;
    match with_storage(&shared, move |storage| storage.aggregate(min_machines)).await {
        Some(aggregate) => json_response(StatusCode::OK, serde_json::json!(aggregate)),
        None => storage_failed(),
    }
}

async fn delete_machine(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Ok(id) = uuid::Uuid::parse_str(&id) else {
        return error(StatusCode::BAD_REQUEST, "not a machine id");
    };
    let id = id.hyphenated().to_string();
    match with_storage(&shared, move |storage| storage.delete_machine(&id)).await {
        Some(rows) => json_response(StatusCode::OK, serde_json::json!({ "deleted_rows": rows })),
        None => storage_failed(),
    }
}

async fn events(State(shared): State<Arc<Shared>>, body: Body) -> Response {
    let body = match read_body(body, shared.options.max_body).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large"),
        Err(BodyError::TimedOut) => {
            return error(StatusCode::REQUEST_TIMEOUT, "the body took too long");
        }
        Err(BodyError::Io) => return error(StatusCode::BAD_REQUEST, "could not read the body"),
    };
    let tomorrow = (chrono::Utc::now().date_naive() + chrono::Days::new(1))
        .format("%Y-%m-%d")
        .to_string();
    let payload = match validate(&body, &tomorrow) {
        Ok(payload) => payload,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why.to_string()),
    };
    let days = payload.days.len();
    match with_storage(&shared, move |storage| storage.put(&payload)).await {
        Some(()) => json_response(StatusCode::OK, serde_json::json!({ "accepted_days": days })),
        None => storage_failed(),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum BodyError {
    TooLarge,
    TimedOut,
    Io,
}

/// Reads a body of at most `limit` bytes within [`BODY_DEADLINE`]. A chunked body is
/// cut off by `Limited` as soon as it goes over, so no more than `limit` bytes are ever
/// held; a declared length over the limit is refused without reading. Either way the
/// rest of a too-large body is then read and thrown away (see [`discard`]).
async fn read_body(mut body: Body, limit: usize) -> Result<axum::body::Bytes, BodyError> {
    let deadline = tokio::time::Instant::now() + BODY_DEADLINE;
    let read = async {
        if body.size_hint().lower() > limit as u64 {
            return Err(BodyError::TooLarge);
        }
        match Limited::new(&mut body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge),
            Err(_) => Err(BodyError::Io),
        }
    };
    let read = match tokio::time::timeout_at(deadline, read).await {
        Ok(read) => read,
        Err(_) => return Err(BodyError::TimedOut),
    };
    if read == Err(BodyError::TooLarge) {
        discard(body, limit, deadline).await;
    }
    read
}

/// Reads and drops what is left of a body, up to `4 × limit` more bytes and until
/// `deadline`. A client that writes its whole body before reading the answer (as most
/// do) would otherwise see the connection reset, not the 413: closing a socket with
/// unread data resets it. Past either bound the connection is simply closed.
async fn discard(mut body: Body, limit: usize, deadline: tokio::time::Instant) {
    let mut left = limit.saturating_mul(4);
    let _ = tokio::time::timeout_at(deadline, async {
        while let Some(Ok(frame)) = body.frame().await {
            let len = frame.data_ref().map_or(0, |data| data.len());
            left = match left.checked_sub(len) {
                Some(left) => left,
                None => return,
            };
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use hyper::body::Frame;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Chunks with no declared length, as a chunked upload arrives.
    struct Chunked(Vec<Bytes>);

    impl hyper::body::Body for Chunked {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.0.pop().map(|chunk| Ok(Frame::data(chunk))))
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_whether_declared_or_chunked() {
        let declared = Body::from(vec![b' '; 11]);
        assert_eq!(read_body(declared, 10).await, Err(BodyError::TooLarge));
        let chunked = Body::new(Chunked(vec![Bytes::from_static(b"    "); 3]));
        assert_eq!(read_body(chunked, 10).await, Err(BodyError::TooLarge));
        let fits = Body::new(Chunked(vec![Bytes::from_static(b"     "); 2]));
        assert_eq!(read_body(fits, 10).await.unwrap().len(), 10);
        let fits = Body::from(vec![b' '; 10]);
        assert_eq!(read_body(fits, 10).await.unwrap().len(), 10);
    }

    #[test]
    fn stop_closes_idle_connections_stops_listening_and_returns() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::SqliteStorage::open(&dir.path().join("t.db")).unwrap();
        let running = serve("127.0.0.1:0", Box::new(storage), Options::default()).unwrap();
        let mut idle = std::net::TcpStream::connect(running.addr).unwrap();
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut answer = [0u8; 12];
        idle.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        let addr = running.addr;
        let started = std::time::Instant::now();
        running.stop();
        assert!(started.elapsed() < Duration::from_secs(3));
        idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut rest = Vec::new();
        let _ = idle.read_to_end(&mut rest);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "still listening"
        );
    }
}
