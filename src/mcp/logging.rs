//! MCP logging: once a client sets a level (`logging/setLevel`), the engine's events at
//! or above it — a degraded or stopped watcher, lock retries, lost-event rescans,
//! errors — reach it as `notifications/message`. Nothing is sent before a level is set.
//!
//! rmcp marks MCP logging deprecated (SEP-2577 will replace it); clients in use today
//! still read it, hence the `allow(deprecated)` here and only here.
#![allow(deprecated)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rmcp::Peer;
use rmcp::model::{LoggingLevel, LoggingMessageNotificationParam};
use rmcp::service::RoleServer;
use serde_json::json;

use super::Backend;
use crate::engine::Event;

/// The level a client asked for, where to send, and whether the forwarding thread runs.
#[derive(Default)]
pub struct Logging {
    to: Mutex<Option<(LoggingLevel, Peer<RoleServer>)>>,
    forwarding: AtomicBool,
}

/// How much an event matters to an agent; `None`: never sent.
fn level_of(event: &Event) -> Option<LoggingLevel> {
    Some(match event {
        Event::Error(_) => LoggingLevel::Error,
        Event::LockRetry { .. } | Event::Rescan { .. } => LoggingLevel::Warning,
        Event::WorktreeChanged { .. } => LoggingLevel::Warning,
        Event::WatcherChanged { mode, .. } if mode != "native" => LoggingLevel::Warning,
        Event::WatcherChanged { .. } | Event::RoleChanged(_) | Event::CatchupFinished { .. } => {
            LoggingLevel::Info
        }
        Event::Synced { .. } | Event::FromWriter { .. } => LoggingLevel::Debug,
        Event::WriterAsked { .. } | Event::WriterRequestTaken { .. } => LoggingLevel::Info,
        Event::PendingChanged { .. } | Event::TelemetryChanged { .. } => return None,
    })
}

fn rank(level: LoggingLevel) -> u8 {
    match level {
        LoggingLevel::Debug => 0,
        LoggingLevel::Info => 1,
        LoggingLevel::Notice => 2,
        LoggingLevel::Warning => 3,
        LoggingLevel::Error => 4,
        LoggingLevel::Critical => 5,
        LoggingLevel::Alert => 6,
        LoggingLevel::Emergency => 7,
    }
}

impl Logging {
    /// The client's `logging/setLevel`: from now on, events at `level` or above go to
    /// `peer`. The first call starts the thread that forwards them.
    pub fn set(
        self: &Arc<Self>,
        level: LoggingLevel,
        peer: Peer<RoleServer>,
        backend: Arc<OnceLock<Result<Backend, String>>>,
    ) {
        *self.to.lock().unwrap_or_else(|e| e.into_inner()) = Some((level, peer));
        if self.forwarding.swap(true, Ordering::Relaxed) {
            return;
        }
        let runtime = tokio::runtime::Handle::current();
        let this = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("codelens-mcp-log".into())
            .spawn(move || {
                let Ok(backend) = backend.wait() else {
                    return;
                };
                // Ends when the engine stops (its senders go) or the client is gone.
                for event in backend.engine.subscribe() {
                    let Some(level) = level_of(&event) else {
                        continue;
                    };
                    let target = this.to.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    let Some((wanted, peer)) = target else {
                        continue;
                    };
                    if rank(level) < rank(wanted) {
                        continue;
                    }
                    let mut message = LoggingMessageNotificationParam::new(
                        level,
                        json!({ "event": event.to_string() }),
                    );
                    message.logger = Some("codelens.engine".into());
                    if runtime
                        .block_on(peer.notify_logging_message(message))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        if spawned.is_err() {
            self.forwarding.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_what_an_agent_needs_and_pending_counts_are_noise() {
        assert!(matches!(
            level_of(&Event::LockRetry { attempt: 1, of: 5 }),
            Some(LoggingLevel::Warning)
        ));
        assert!(matches!(
            level_of(&Event::WatcherChanged {
                mode: "degraded".into(),
                reason: "cap".into()
            }),
            Some(LoggingLevel::Warning)
        ));
        assert!(level_of(&Event::PendingChanged { count: 3 }).is_none());
        assert!(rank(LoggingLevel::Error) > rank(LoggingLevel::Warning));
    }
}
