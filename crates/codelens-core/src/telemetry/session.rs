//! A process's telemetry session: flushes the recorder into the buffer (at exit, and
//! every [`FLUSH_INTERVAL`] on a background thread for long-running processes) and
//! sends completed days, at most once a day, never waiting more than [`EXIT_BOUND`] at
//! exit. Every failure here is silent: it never changes what a command does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::buffer::{self, Row};
use super::schema::{
    MAX_COUNT, MAX_DAYS_PER_PAYLOAD, MAX_ROWS_PER_DAY, RETENTION_DAYS_DEFAULT, SCHEMA_VERSION,
};
use super::{TelemetryEnv, recorder};

/// The longest an exiting command waits for a send (documented in TELEMETRY.md).
pub const EXIT_BOUND: Duration = Duration::from_secs(2);
/// How often a long-running process (MCP server, `watch`, TUI) flushes its counts.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(60);
const FIRST_FLUSH: Duration = Duration::from_secs(5);

/// The environment of the running session, for `set_consent` to switch the recorder.
static ACTIVE: OnceLock<TelemetryEnv> = OnceLock::new();
/// The consent's generation the recorder's counts belong to (see `Consent::generation`).
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The payload POSTed to the ingest server (`assets/telemetry-schema.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payload {
    pub schema_version: u32,
    pub machine_id: String,
    pub days: Vec<PayloadDay>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PayloadDay {
    /// The UTC day the counts belong to, `YYYY-MM-DD`.
    pub timestamp: String,
    pub events: Vec<Row>,
}

/// Flushes and sends for as long as it lives; dropping it is the exit path.
pub struct Session {
    env: TelemetryEnv,
    stop: Arc<(Mutex<bool>, Condvar)>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

/// Starts this process's session. Cheap and silent when telemetry is off: nothing is
/// read but the consent file, nothing written, no thread started.
pub fn start(env: TelemetryEnv) -> Session {
    let consent = super::read_consent(&env);
    let on = super::decide(&env, consent.as_ref()).enabled();
    GENERATION.store(consent.map_or(0, |c| c.generation), Ordering::Relaxed);
    let _ = ACTIVE.set(env.clone());
    recorder::set_enabled(on);
    Session {
        env,
        stop: Arc::new((Mutex::new(false), Condvar::new())),
        ticker: None,
    }
}

/// Called by `set_consent` so a running process (the TUI) follows the new choice. The
/// counts so far belong to the old choice: they are dropped, never written.
pub(crate) fn consent_changed(enabled: bool, generation: u64) {
    if ACTIVE.get().is_some() {
        recorder::set_enabled(false);
        drop(recorder::take());
        GENERATION.store(generation, Ordering::Relaxed);
        recorder::set_enabled(enabled);
    }
}

impl Session {
    /// For long-running processes: flush (and send, when a day completes) every
    /// [`FLUSH_INTERVAL`] on a background thread, off every request's path.
    pub fn flush_periodically(&mut self) {
        self.flush_every(FLUSH_INTERVAL);
    }

    pub fn flush_every(&mut self, interval: Duration) {
        if self.ticker.is_some() {
            return;
        }
        let env = self.env.clone();
        let stop = Arc::clone(&self.stop);
        let spawned = std::thread::Builder::new()
            .name("codelens-telemetry".into())
            .spawn(move || {
                let (lock, wake) = &*stop;
                // The first flush comes early: `watch` is usually ended by Ctrl-C,
                // which skips the exit flush, and its start is then already counted.
                let mut wait = interval.min(FIRST_FLUSH);
                loop {
                    let Ok(stopped) = lock.lock() else { return };
                    if *stopped {
                        return;
                    }
                    let Ok((stopped, _)) = wake.wait_timeout(stopped, wait) else {
                        return;
                    };
                    if *stopped {
                        return;
                    }
                    // Never hold the lock while working: the exit path must not wait.
                    drop(stopped);
                    wait = interval;
                    if recorder::is_enabled() {
                        flush(&env);
                        if let Some(send) = prepare_send(&env, Instant::now() + EXIT_BOUND) {
                            send.run();
                        }
                    }
                }
            });
        self.ticker = spawned.ok();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Ok(mut stopped) = self.stop.0.lock() {
            *stopped = true;
            self.stop.1.notify_all();
        }
        // Not joined: a send in flight on the ticker has its own 2 s timeout, and the
        // exit below must not add to it. Flushes and sends are safe side by side (the
        // counters hand each increment out once; a send is claimed under the file lock).
        drop(self.ticker.take());
        if !recorder::is_enabled() {
            return;
        }
        // One deadline for the whole exit: waiting for the buffer's lock (another
        // process may hold it, or hang holding it) and the send together.
        let deadline = Instant::now() + EXIT_BOUND;
        flush_until(&self.env, deadline);
        if let Some(send) = prepare_send(&self.env, deadline) {
            // The send runs on its own thread; the exit waits for it until the deadline,
            // then the process ends (and the thread with it) whatever the network does.
            let (done, finished) = mpsc::channel();
            let spawned = std::thread::Builder::new()
                .name("codelens-telemetry-send".into())
                .spawn(move || {
                    send.run();
                    let _ = done.send(());
                });
            if spawned.is_ok() {
                let _ = finished.recv_timeout(deadline.saturating_duration_since(Instant::now()));
            }
        }
    }
}

/// Adds the recorder's counts to today's entry of the buffer, waiting at most
/// [`EXIT_BOUND`] for the buffer's lock (then the counts are dropped, silently).
pub fn flush(env: &TelemetryEnv) {
    flush_until(env, Instant::now() + EXIT_BOUND);
}

/// Re-checks the stored consent under the buffer's lock: `codelens telemetry off` in
/// another terminal stops this process too, and after an off (then maybe on again:
/// the consent's generation changed) the counts taken here belong to the old choice
/// and are dropped rather than written.
fn flush_until(env: &TelemetryEnv, deadline: Instant) {
    if !super::status_decision(env).enabled() {
        recorder::set_enabled(false);
        drop(recorder::take());
        return;
    }
    let rows = recorder::take();
    if rows.is_empty() {
        return;
    }
    let today = env.today();
    let wait = deadline.saturating_duration_since(Instant::now());
    let _ = buffer::update(env, wait, |buffer| {
        let consent = super::read_consent(env);
        if !super::decide(env, consent.as_ref()).enabled() {
            recorder::set_enabled(false);
            return (false, ());
        }
        let generation = consent.map_or(0, |c| c.generation);
        if GENERATION.swap(generation, Ordering::Relaxed) != generation {
            return (false, ());
        }
        let _ = super::ensure_machine_id_locked(env);
        buffer.add(&today, rows);
        (true, ())
    });
}

/// The payload that would be sent next: the oldest completed UTC days (before today) on
/// or after the opt-in day, at most [`MAX_DAYS_PER_PAYLOAD`] of them, each shaped to what
/// the server accepts (see [`payload_day`]). `None` when there is nothing to send or no
/// machine id.
pub fn next_payload(env: &TelemetryEnv, buffer: &buffer::Buffer) -> Option<Payload> {
    let machine_id = super::read_machine_id(env)?;
    let days: Vec<PayloadDay> = sendable_days(env, buffer)
        .take(MAX_DAYS_PER_PAYLOAD)
        .map(|(day, rows)| payload_day(day, rows))
        .collect();
    (!days.is_empty()).then_some(Payload {
        schema_version: SCHEMA_VERSION,
        machine_id,
        days,
    })
}

/// Every day of `buffer` that may be sent, oldest first: completed (before today's UTC
/// day), on or after the opt-in day, and no older than the server keeps. `next_payload`
/// takes the first of them, `preview` counts the rest.
fn sendable_days<'a>(
    env: &TelemetryEnv,
    buffer: &'a buffer::Buffer,
) -> impl Iterator<Item = (&'a String, &'a Vec<Row>)> + 'a {
    let today = env.today();
    let opt_in = super::read_consent(env).and_then(|c| c.opt_in_date);
    let oldest_kept = oldest_day_kept(&today);
    buffer.days.iter().filter(move |(day, _)| {
        day.as_str() < today.as_str()
            && opt_in.as_deref().is_none_or(|from| day.as_str() >= from)
            && oldest_kept
                .as_deref()
                .is_none_or(|kept| day.as_str() >= kept)
    })
}

/// The oldest day the server keeps by default: older days would be refused, so they are
/// never sent (and the buffer's trim drops them in time).
fn oldest_day_kept(today: &str) -> Option<String> {
    let today = chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d").ok()?;
    let oldest = today.checked_sub_days(chrono::Days::new(RETENTION_DAYS_DEFAULT))?;
    Some(oldest.format("%Y-%m-%d").to_string())
}

/// One day as the server accepts it: counts clamped to [`MAX_COUNT`], and at most
/// [`MAX_ROWS_PER_DAY`] rows (the largest counts; a hand-edited buffer is the only way
/// to have more).
fn payload_day(day: &str, rows: &[Row]) -> PayloadDay {
    let mut events: Vec<Row> = rows
        .iter()
        .map(|row| Row {
            count: row.count.min(MAX_COUNT),
            ..row.clone()
        })
        .collect();
    if events.len() > MAX_ROWS_PER_DAY {
        events.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.cmp(b)));
        events.truncate(MAX_ROWS_PER_DAY);
        events.sort();
    }
    PayloadDay {
        timestamp: day.to_string(),
        events,
    }
}

/// What `codelens telemetry show` prints: the next payload, and beside it the days that
/// are recorded but not sendable yet (today's, until the UTC day ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub schema_version: u32,
    pub machine_id: String,
    /// Exactly the days the next send carries (empty when none is complete yet).
    pub days: Vec<PayloadDay>,
    /// Completed days left for the sends after the next one (past the per-send cap).
    #[serde(skip_serializing_if = "is_zero")]
    pub days_after_next_send: usize,
    /// Today's counts as they will be sent once the day is over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_yet_sendable: Option<NotYetSendable>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotYetSendable {
    /// Why not: only completed UTC days are ever sent.
    pub reason: &'static str,
    pub days: Vec<PayloadDay>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The preview `telemetry show` prints; `None` when nothing is recorded (or no id).
pub fn preview(env: &TelemetryEnv, buffer: &buffer::Buffer) -> Option<Preview> {
    let machine_id = super::read_machine_id(env)?;
    let today = env.today();
    let next = next_payload(env, buffer);
    let sent_next = next.as_ref().map_or(0, |p| p.days.len());
    let completed = sendable_days(env, buffer).count();
    let not_yet: Vec<PayloadDay> = buffer
        .days
        .range(today.clone()..)
        .map(|(day, rows)| payload_day(day, rows))
        .collect();
    if next.is_none() && not_yet.is_empty() {
        return None;
    }
    Some(Preview {
        schema_version: SCHEMA_VERSION,
        machine_id,
        days: next.map(|p| p.days).unwrap_or_default(),
        days_after_next_send: completed - sent_next,
        not_yet_sendable: (!not_yet.is_empty()).then_some(NotYetSendable {
            reason: "the UTC day is not over; only completed days are sent",
            days: not_yet,
        }),
    })
}

/// A send that is due, claimed for today (so no other process sends today too).
struct Send {
    env: TelemetryEnv,
    payload: Payload,
    /// The consent's generation when the send was claimed: a result is written only if
    /// telemetry is still on under that same choice (see [`Send::record`]).
    generation: u64,
}

/// Claims today's send under the buffer's lock (waiting for it until `deadline`). In
/// debug mode nothing is claimed: the payload only goes to stderr, and the real send
/// must not be pushed to tomorrow by it.
fn prepare_send(env: &TelemetryEnv, deadline: Instant) -> Option<Send> {
    let today = env.today();
    let wait = deadline.saturating_duration_since(Instant::now());
    let claimed = buffer::update(env, wait, |buffer| {
        let consent = super::read_consent(env);
        if !super::decide(env, consent.as_ref()).enabled()
            || buffer.last_send_day.as_deref() == Some(today.as_str())
        {
            return (false, None);
        }
        let generation = consent.map_or(0, |c| c.generation);
        match next_payload(env, buffer) {
            Some(payload) if env.debug => (false, Some((payload, generation))),
            Some(payload) => {
                buffer.last_send_day = Some(today.clone());
                (true, Some((payload, generation)))
            }
            None => (false, None),
        }
    })
    .ok()
    .flatten();
    let (payload, generation) = claimed?;
    Some(Send {
        env: env.clone(),
        payload,
        generation,
    })
}

/// What became of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 2xx: the days leave the buffer.
    Accepted,
    /// A 4xx other than 408 and 429: the server will never take these days; they leave
    /// the buffer and are counted in `rejected_days`, rather than re-sent every day.
    Rejected,
    /// Anything else (no answer, 5xx, 408, 429): the days stay for the next day's try.
    Retry,
}

fn outcome(result: &Result<(), SendError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Accepted,
        Err(SendError::Status(code @ 400..=499)) if *code != 408 && *code != 429 => {
            Outcome::Rejected
        }
        Err(_) => Outcome::Retry,
    }
}

impl Send {
    fn run(self) {
        let Ok(body) = serde_json::to_string(&self.payload) else {
            return;
        };
        if self.env.debug {
            // Instead of sending, never on stdout. The days stay buffered: nothing left.
            eprintln!("codelens: telemetry payload (debug, not sent): {body}");
            return;
        }
        // Turned off since the claim (another terminal): no socket is opened.
        if !self.still_consented() {
            return;
        }
        let outcome = outcome(&post(&self.env.url, &body));
        if outcome != Outcome::Retry {
            self.record(outcome);
        }
    }

    /// Whether telemetry is still on under the choice this send was claimed under.
    fn still_consented(&self) -> bool {
        let consent = super::read_consent(&self.env);
        super::decide(&self.env, consent.as_ref()).enabled()
            && consent.map_or(0, |c| c.generation) == self.generation
    }

    /// Removes the sent days from the buffer — only if, under the buffer's lock, the
    /// user has not turned telemetry off (or off and on) meanwhile: `telemetry off`
    /// deleted the buffer, and after it nothing under `CODELENS_HOME` is written again.
    fn record(&self, outcome: Outcome) {
        // Checked before `update` too, which would create the home and the lock file.
        if !self.still_consented() {
            return;
        }
        let sent: Vec<&str> = self
            .payload
            .days
            .iter()
            .map(|d| d.timestamp.as_str())
            .collect();
        let _ = buffer::update(&self.env, EXIT_BOUND, |buffer| {
            if !self.still_consented() {
                return (false, ());
            }
            for day in &sent {
                let removed = buffer.days.remove(*day).is_some();
                if removed && outcome == Outcome::Rejected {
                    buffer.rejected_days = buffer.rejected_days.saturating_add(1);
                }
            }
            (true, ())
        });
    }
}

/// Why a request did not succeed (never shown during ordinary commands).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0} is not an http(s) URL")]
    BadUrl(String),
    #[error("{0}")]
    Http(#[from] ureq::Error),
    #[error("the server answered {0}")]
    Status(u16),
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(EXIT_BOUND))
        .timeout_connect(Some(Duration::from_millis(1500)))
        // Status codes are ours to judge; redirects could lead the payload elsewhere.
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("codelens/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

/// One POST of `body`; `Ok` only for a 2xx answer.
pub fn post(url: &str, body: &str) -> Result<(), SendError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(SendError::BadUrl(url.into()));
    }
    let response = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(body)?;
    match response.status().as_u16() {
        200..=299 => Ok(()),
        code => Err(SendError::Status(code)),
    }
}

/// Asks the server to delete everything stored for `machine_id` (`telemetry forget`):
/// `DELETE <url>/machines/<id>`, where `<url>` is the events URL without `/events`.
pub fn request_deletion(env: &TelemetryEnv, machine_id: &str) -> Result<(), SendError> {
    let url = deletion_url(&env.url, machine_id);
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(SendError::BadUrl(url));
    }
    let response = agent().delete(&url).call()?;
    match response.status().as_u16() {
        200..=299 | 404 => Ok(()),
        code => Err(SendError::Status(code)),
    }
}

pub fn deletion_url(events_url: &str, machine_id: &str) -> String {
    let base = events_url.trim_end_matches('/');
    let base = base.strip_suffix("/events").unwrap_or(base);
    format!("{base}/machines/{machine_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_url_sits_beside_events() {
        assert_eq!(
            deletion_url("http://127.0.0.1:9/v1/events", "abc"),
            "http://127.0.0.1:9/v1/machines/abc"
        );
        assert_eq!(
            deletion_url("https://x.dev/v1/events/", "abc"),
            "https://x.dev/v1/machines/abc"
        );
    }
}
