//! The HTTP front of the ingest server: `axum` routes on `hyper`'s HTTP/1 server, in a
//! tokio runtime of its own on a background thread. Every connection is a tokio task,
//! so slow or idle clients cost a little memory, never a worker; what each may take is
//! bounded (see [`HEADER_TIMEOUT`], [`BODY_DEADLINE`], `Options::max_body`), and so is
//! what all of them together may take (`Options::max_connections`, `max_bodies`,
//! `write_budget`; the memory bound is [`Options::memory_bound`]).
//!
//! Routes:
//! - `POST /v1/events`: a payload (see `assets/telemetry-schema.json`) → 200, 400, 408,
//!   413, 429 (over the write budget), 503 (no body slot within the body deadline);
//! - `DELETE /v1/machines/<uuid>`: delete everything sent under that id → 200;
//! - `GET /v1/aggregate`: totals, buckets under `min_machines` machines left out; 503
//!   past a quarter of `max_connections` aggregate requests at once;
//! - `GET /healthz`.
//!
//! Nothing about the connection (address, headers, user agent) is read, stored or
//! logged: requests are not logged at all, and the accept loop drops the peer address
//! it is handed (no `ConnectInfo`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

use super::{DayWindow, Storage, StorageError, Suppression, canonical_machine_id, validate};

/// The configuration of a running server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest accepted body, bytes.
    pub max_body: usize,
    /// Aggregate buckets reported by fewer machines are suppressed.
    pub min_machines: u64,
    /// Only machines that posted on at least this many distinct UTC days are counted in
    /// aggregates (1 counts every machine; see `Suppression`).
    pub min_days_seen: u64,
    /// Days older than this many days are refused, and deleted (checked hourly).
    pub retention_days: u64,
    /// Threads of the server's runtime.
    pub workers: usize,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Request bodies held in memory at once; a POST waits for a slot within the body
    /// deadline, else 503.
    pub max_bodies: usize,
    /// The global write budget, in rows per second (a token bucket holding two seconds'
    /// worth); a POST beyond it is answered 429. 0: no budget.
    pub write_budget: u64,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_body: 1024 * 1024,
            min_machines: 5,
            min_days_seen: 2,
            retention_days: codelens_core::telemetry::schema::RETENTION_DAYS_DEFAULT,
            workers: 4,
            max_connections: 512,
            max_bodies: 16,
            write_budget: 20_000,
        }
    }
}

/// What one connection holds at most besides its body: hyper's read buffer (capped at
/// [`MAX_HEADER_BUFFER`]), its write buffer and the task, rounded up.
pub const PER_CONNECTION_BYTES: usize = MAX_HEADER_BUFFER + 32 * 1024;
/// hyper's read buffer per connection (the request line and headers must fit).
pub const MAX_HEADER_BUFFER: usize = 64 * 1024;
/// A body in flight is held about three times at most: its chunks as they arrive,
/// their contiguous copy, and the parsed rows (smaller than the text they came from).
pub const BODY_COPIES: usize = 3;

impl Options {
    /// The most the server's requests can add to its memory, bytes (the process's own
    /// baseline, the storage's caches and the aggregate answer aside): every connection
    /// at its buffers' cap, and `max_bodies` bodies of `max_body` held at once. A test
    /// holds the server to it with far more clients than slots.
    pub fn memory_bound(&self) -> usize {
        self.max_connections * PER_CONNECTION_BYTES + self.max_bodies * BODY_COPIES * self.max_body
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
    /// Called on tokio's blocking threads ([`with_storage`]): SQLite is synchronous,
    /// and each backend keeps its writes and reads on connections of their own, so
    /// calls run side by side and a slow one never holds up the runtime's threads
    /// (which keep reading requests and enforcing timeouts).
    storage: Arc<dyn Storage>,
    options: Options,
    /// Bodies held at once (see [`Options::max_bodies`]).
    bodies: Arc<tokio::sync::Semaphore>,
    write_budget: Mutex<TokenBucket>,
    /// The last aggregate answer and when its query started: at most one aggregate
    /// query runs at a time, and requests that arrived while it ran share the next one
    /// (see [`aggregate`]). `Bytes`, so that every request answered from it shares the
    /// one copy instead of cloning a body that grows with the data.
    aggregate: tokio::sync::Mutex<Option<(Instant, axum::body::Bytes)>>,
    /// Aggregate requests under way or waiting (see [`aggregate_requests_at_once`]).
    aggregate_requests: Arc<tokio::sync::Semaphore>,
}

/// How many aggregate requests may be under way or waiting at once: a quarter of the
/// connections. A query is slow at scale (seconds) and its requests wait for it holding
/// their connections; past this share they are answered 503 at once, so readers can
/// never take the connection slots that posts need.
fn aggregate_requests_at_once(options: &Options) -> usize {
    (options.max_connections / 4).max(1)
}

impl Shared {
    fn new(storage: Arc<dyn Storage>, options: Options) -> Arc<Shared> {
        Arc::new(Shared {
            storage,
            bodies: Arc::new(tokio::sync::Semaphore::new(options.max_bodies.max(1))),
            write_budget: Mutex::new(TokenBucket::new(options.write_budget)),
            aggregate: tokio::sync::Mutex::new(None),
            aggregate_requests: Arc::new(tokio::sync::Semaphore::new(aggregate_requests_at_once(
                &options,
            ))),
            options,
        })
    }
}

/// The global write budget: `rate` rows a second, at most `capacity` saved up. Nothing
/// about the client is kept (no address): it bounds what all clients together write.
#[derive(Debug)]
struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    fn new(rows_per_second: u64) -> TokenBucket {
        let rate = rows_per_second as f64;
        TokenBucket {
            rate,
            capacity: rate * 2.0,
            tokens: rate * 2.0,
            refilled: Instant::now(),
        }
    }

    /// Takes `rows` tokens at `now` if there are enough (a payload larger than the
    /// bucket takes the bucket). No budget (rate 0) always allows. The clock is a
    /// parameter so that the refill can be tested without sleeping or racing it.
    fn try_take(&mut self, rows: usize, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.refilled = now;
        let cost = (rows as f64).min(self.capacity);
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }
}

pub fn serve(
    addr: &str,
    storage: Arc<dyn Storage>,
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
        // Storage calls: one per body slot at most, the aggregate and retention.
        .max_blocking_threads(options.max_bodies.max(1) + 4)
        .thread_name("ingest")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| listen_error(format!("cannot start the runtime: {e}")))?;
    let listener = {
        let _in_runtime = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(|e| listen_error(e.to_string()))?
    };
    let shared = Shared::new(storage, options);
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
        .max_buf_size(MAX_HEADER_BUFFER)
        .keep_alive(true);
    // A connection is accepted only with a slot: past `max_connections` the rest wait
    // in the kernel's backlog, costing this process nothing.
    let slots = Arc::new(tokio::sync::Semaphore::new(
        shared.options.max_connections.max(1),
    ));
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
        let slot = tokio::select! {
            _ = &mut stopped => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
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
                        drop(slot);
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
        // The window's own arithmetic: `today - retention` would panic on a huge
        // `--retention-days`, this saturates.
        let oldest = DayWindow::on(
            chrono::Utc::now().date_naive(),
            shared.options.retention_days,
        )
        .oldest;
        let _ = with_storage(&shared, move |storage| storage.prune_before(&oldest)).await;
    }
}

/// Runs `call` on the storage, on a blocking thread (see [`Shared::storage`]). `None`
/// when it failed.
async fn with_storage<T: Send + 'static>(
    shared: &Arc<Shared>,
    call: impl FnOnce(&dyn Storage) -> Result<T, StorageError> + Send + 'static,
) -> Option<T> {
    let storage = Arc::clone(&shared.storage);
    tokio::task::spawn_blocking(move || call(&*storage).ok())
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

/// An error with `Retry-After: 1`: nothing is wrong with the request, only its moment.
fn try_again_later(code: StatusCode, message: &str) -> Response {
    let mut response = error(code, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
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

/// One aggregate query at a time, whatever the number of requests: a request waits for
/// the query under way, and takes the next answer whose query started after it arrived
/// (so an answer is never older than the request). Twenty concurrent requests cost
/// two queries, on the storage's read connection, while writes go on beside them.
/// Past [`aggregate_requests_at_once`] requests, 503 at once.
async fn aggregate(State(shared): State<Arc<Shared>>) -> Response {
    let Ok(_turn) = Arc::clone(&shared.aggregate_requests).try_acquire_owned() else {
        return try_again_later(StatusCode::SERVICE_UNAVAILABLE, "busy; try again later");
    };
    let arrived = Instant::now();
    let mut last = shared.aggregate.lock().await;
    if let Some((started, body)) = last.as_ref()
        && *started >= arrived
    {
        return aggregate_response(body.clone());
    }
    let started = Instant::now();
    let rules = Suppression {
        min_machines: shared.options.min_machines,
        min_days_seen: shared.options.min_days_seen,
    };
    match with_storage(&shared, move |storage| storage.aggregate(rules)).await {
        Some(aggregate) => {
            let body = axum::body::Bytes::from(serde_json::json!(aggregate).to_string());
            *last = Some((started, body.clone()));
            aggregate_response(body)
        }
        None => storage_failed(),
    }
}

fn aggregate_response(body: axum::body::Bytes) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn delete_machine(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let Some(id) = canonical_machine_id(&id).map(str::to_string) else {
        return error(StatusCode::BAD_REQUEST, "not a machine id");
    };
    match with_storage(&shared, move |storage| storage.delete_machine(&id)).await {
        Some(rows) => json_response(StatusCode::OK, serde_json::json!({ "deleted_rows": rows })),
        None => storage_failed(),
    }
}

async fn events(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Response {
    let deadline = tokio::time::Instant::now() + BODY_DEADLINE;
    let limit = shared.options.max_body;
    // A declared length over the limit: 413 at once, before any slot or byte is taken.
    if declared_length(&headers).is_some_and(|length| length > limit as u64) {
        return too_large(body, limit, deadline);
    }
    let Ok(Ok(slot)) =
        tokio::time::timeout_at(deadline, Arc::clone(&shared.bodies).acquire_owned()).await
    else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "busy; try again later");
    };
    let body = match read_body(body, limit, deadline).await {
        Ok(body) => body,
        Err((BodyError::TooLarge, rest)) => return too_large(rest, limit, deadline),
        Err((BodyError::TimedOut, _)) => {
            return error(StatusCode::REQUEST_TIMEOUT, "the body took too long");
        }
        Err((BodyError::Io, _)) => {
            return error(StatusCode::BAD_REQUEST, "could not read the body");
        }
    };
    let window = DayWindow::on(
        chrono::Utc::now().date_naive(),
        shared.options.retention_days,
    );
    let payload = match validate(&body, &window) {
        Ok(payload) => payload,
        Err(why) => return error(StatusCode::BAD_REQUEST, &why.to_string()),
    };
    drop(body);
    let rows: usize = payload.days.iter().map(|(_, rows)| rows.len()).sum();
    let within_budget = shared
        .write_budget
        .lock()
        .map(|mut bucket| bucket.try_take(rows, Instant::now()))
        .unwrap_or(false);
    if !within_budget {
        return try_again_later(StatusCode::TOO_MANY_REQUESTS, "over the write budget");
    }
    let days = payload.days.len();
    let arrival_day = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    // The slot goes with the put onto its blocking thread: were the client to go away
    // meanwhile, the put would still hold it, so puts under way never outnumber the
    // slots (nor, on PostgreSQL, the write connections sized to them).
    let put = move |storage: &dyn Storage| {
        let _slot = slot;
        storage.put(&payload, &arrival_day)
    };
    match with_storage(&shared, put).await {
        Some(()) => json_response(StatusCode::OK, serde_json::json!({ "accepted_days": days })),
        None => storage_failed(),
    }
}

fn declared_length(headers: &axum::http::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// 413 now, and the connection closed after it. What is left of the body is read and
/// dropped on a task of its own (see [`discard`]), so the answer does not wait for it.
fn too_large(rest: Body, limit: usize, deadline: tokio::time::Instant) -> Response {
    tokio::spawn(discard(rest, limit, deadline));
    let mut response = error(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

#[derive(Debug, PartialEq, Eq)]
enum BodyError {
    TooLarge,
    TimedOut,
    Io,
}

/// Reads a body of at most `limit` bytes by `deadline`. A chunked body is cut off by
/// `Limited` as soon as it goes over, so no more than `limit` bytes are ever held; the
/// rest of a too-large body is handed back, for [`too_large`] to drop.
async fn read_body(
    mut body: Body,
    limit: usize,
    deadline: tokio::time::Instant,
) -> Result<axum::body::Bytes, (BodyError, Body)> {
    if body.size_hint().lower() > limit as u64 {
        return Err((BodyError::TooLarge, body));
    }
    let read = async {
        match Limited::new(&mut body, limit).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge),
            Err(_) => Err(BodyError::Io),
        }
    };
    match tokio::time::timeout_at(deadline, read).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(why)) => Err((why, body)),
        Err(_) => Err((BodyError::TimedOut, body)),
    }
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
        let deadline = tokio::time::Instant::now() + BODY_DEADLINE;
        let why = |read: Result<Bytes, (BodyError, Body)>| read.err().map(|(why, _)| why);
        let declared = Body::from(vec![b' '; 11]);
        assert_eq!(
            why(read_body(declared, 10, deadline).await),
            Some(BodyError::TooLarge)
        );
        let chunked = Body::new(Chunked(vec![Bytes::from_static(b"    "); 3]));
        assert_eq!(
            why(read_body(chunked, 10, deadline).await),
            Some(BodyError::TooLarge)
        );
        let fits = Body::new(Chunked(vec![Bytes::from_static(b"     "); 2]));
        assert_eq!(read_body(fits, 10, deadline).await.unwrap().len(), 10);
        let fits = Body::from(vec![b' '; 10]);
        assert_eq!(read_body(fits, 10, deadline).await.unwrap().len(), 10);
    }

    #[test]
    fn the_write_budget_refills_at_its_rate_and_never_saves_up_more_than_two_seconds() {
        let mut bucket = TokenBucket::new(100);
        let start = bucket.refilled;
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert!(bucket.try_take(150, at(0)));
        assert!(bucket.try_take(50, at(0)));
        assert!(!bucket.try_take(1, at(0)), "empty");
        assert!(bucket.try_take(10, at(100)), "10 rows came back in 100 ms");
        assert!(!bucket.try_take(5, at(140)), "4 rows came back in 40 ms");
        assert!(bucket.try_take(5, at(160)), "6 rows by 160 ms");
        let hour = 3_600_000;
        assert!(
            bucket.try_take(200, at(hour)) && !bucket.try_take(1, at(hour)),
            "capped at 2 s worth"
        );
        assert!(
            bucket.try_take(1_000_000, at(hour + 2_000)),
            "a payload over the cap takes the bucket"
        );
        assert!(!bucket.try_take(1, at(hour + 2_000)));
        assert!(TokenBucket::new(0).try_take(usize::MAX, at(0)), "no budget");
    }

    #[tokio::test]
    async fn aggregate_requests_past_their_share_of_connections_are_answered_503_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::SqliteStorage::open(&dir.path().join("t.db")).unwrap();
        let options = Options {
            max_connections: 8,
            ..Options::default()
        };
        let share = aggregate_requests_at_once(&options);
        assert_eq!(share, 2);
        let shared = Shared::new(Arc::new(storage), options);
        // A query under way (its lock held here): requests arriving now wait for it.
        let query_under_way = shared.aggregate.lock().await;
        let waiting: Vec<_> = (0..share)
            .map(|_| tokio::spawn(aggregate(State(Arc::clone(&shared)))))
            .collect();
        while shared.aggregate_requests.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        // Bounded so that, were it queued behind the held lock, the test fails, not hangs.
        let refused = tokio::time::timeout(
            Duration::from_secs(30),
            aggregate(State(Arc::clone(&shared))),
        )
        .await
        .expect("answered at once, not queued");
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers()[header::RETRY_AFTER], "1");
        drop(query_under_way);
        for request in waiting {
            assert_eq!(request.await.unwrap().status(), StatusCode::OK);
        }
        let after = aggregate(State(Arc::clone(&shared))).await;
        assert_eq!(after.status(), StatusCode::OK, "the turns were given back");
    }

    #[test]
    fn stop_closes_idle_connections_stops_listening_and_returns() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let storage = crate::SqliteStorage::open(&dir.path().join("t.db")).unwrap();
        let running = serve("127.0.0.1:0", Arc::new(storage), Options::default()).unwrap();
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
