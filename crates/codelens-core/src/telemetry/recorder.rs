//! The process-global recorder: one fixed array of atomic counters indexed by
//! (event name, language, agent, file-count bucket). Recording is a relaxed load when
//! telemetry is off and a relaxed add when it is on: no allocation, no lock, no system
//! call (`benches/telemetry.rs` measures it). Flushing takes the counts out and adds
//! them to the day's buffer, on another thread or at exit.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering::Relaxed};

use super::buffer::Row;
use super::schema::{Agent, EventName, EventType, FileCountBucket, Language};

const SLOTS: usize = EventName::COUNT * Language::COUNT * Agent::COUNT * FileCountBucket::COUNT;

/// Whether anything is counted. Set only by a telemetry session whose consent says on.
static ENABLED: AtomicBool = AtomicBool::new(false);
static LANGUAGE: AtomicU8 = AtomicU8::new(Language::None as u8);
static AGENT: AtomicU8 = AtomicU8::new(Agent::None as u8);
static BUCKET: AtomicU8 = AtomicU8::new(FileCountBucket::Unknown as u8);
/// About 100 KB of zeroed static memory; pages never touched are never paged in.
static COUNTS: [AtomicU32; SLOTS] = [const { AtomicU32::new(0) }; SLOTS];

fn slot(name: EventName, language: u8, agent: u8, bucket: u8) -> usize {
    // The stored context bytes come only from the enums' own discriminants, but a
    // clamp keeps a bad one from ever indexing out of bounds (no panic path).
    let language = (language as usize).min(Language::COUNT - 1);
    let agent = (agent as usize).min(Agent::COUNT - 1);
    let bucket = (bucket as usize).min(FileCountBucket::COUNT - 1);
    ((name as usize * Language::COUNT + language) * Agent::COUNT + agent) * FileCountBucket::COUNT
        + bucket
}

/// Counts one event. Does nothing observable when telemetry is off. `event_type` must be
/// the name's own type (`EventName::event_type`); a mismatch is dropped, not recorded.
#[inline]
pub fn record(event_type: EventType, name: EventName) {
    if !ENABLED.load(Relaxed) || event_type != name.event_type() {
        return;
    }
    let index = slot(
        name,
        LANGUAGE.load(Relaxed),
        AGENT.load(Relaxed),
        BUCKET.load(Relaxed),
    );
    COUNTS[index].fetch_add(1, Relaxed);
}

/// Counts one event of its own type: `record_event(EventName::SearchSymbols)`.
#[inline]
pub fn record_event(name: EventName) {
    record(name.event_type(), name);
}

/// The MCP client's self-reported name, mapped onto the fixed list (the raw name is
/// not kept).
pub fn set_agent(client_name: &str) {
    if ENABLED.load(Relaxed) {
        AGENT.store(Agent::from_client_name(client_name) as u8, Relaxed);
    }
}

/// The indexed project's shape: its dominant language and file count bucket.
pub fn set_project(languages: &BTreeMap<String, u64>, files: u64) {
    if !ENABLED.load(Relaxed) {
        return;
    }
    LANGUAGE.store(dominant_language(languages) as u8, Relaxed);
    BUCKET.store(FileCountBucket::of(files) as u8, Relaxed);
}

/// The language with the most files, preferring programming languages over markup,
/// data and plain text (a Rust project with many Markdown files is a Rust project).
pub fn dominant_language(languages: &BTreeMap<String, u64>) -> Language {
    let secondary = |l: Language| {
        matches!(
            l,
            Language::Markdown
                | Language::Json
                | Language::Toml
                | Language::Yaml
                | Language::Text
                | Language::Html
                | Language::Css
        )
    };
    languages
        .iter()
        .filter(|(_, n)| **n > 0)
        .filter_map(|(name, n)| Language::parse(name).map(|l| (l, *n)))
        .max_by_key(|(l, n)| (!secondary(*l), *n, std::cmp::Reverse(*l)))
        .map_or(Language::None, |(l, _)| l)
}

pub fn is_enabled() -> bool {
    ENABLED.load(Relaxed)
}

pub(crate) fn set_enabled(on: bool) {
    ENABLED.store(on, Relaxed);
    if !on {
        // Off is off: counts taken so far are dropped, never written.
        let _ = take();
    }
}

/// Takes every non-zero count out of the counters (each exactly once, even with
/// recorders running concurrently: `swap` hands each increment to one taker).
pub(crate) fn take() -> Vec<Row> {
    let mut rows = Vec::new();
    for (index, counter) in COUNTS.iter().enumerate() {
        // A load first: untouched counters stay untouched (and their pages unmapped).
        if counter.load(Relaxed) == 0 {
            continue;
        }
        let count = counter.swap(0, Relaxed);
        if count == 0 {
            continue;
        }
        let bucket = index % FileCountBucket::COUNT;
        let rest = index / FileCountBucket::COUNT;
        let agent = rest % Agent::COUNT;
        let rest = rest / Agent::COUNT;
        let language = rest % Language::COUNT;
        let name = rest / Language::COUNT;
        let name = EventName::ALL[name];
        rows.push(Row {
            event_type: name.event_type().as_str().into(),
            event_name: name.as_str().into(),
            language: Language::ALL[language].as_str().into(),
            agent: Agent::ALL[agent].as_str().into(),
            file_count_bucket: FileCountBucket::ALL[bucket].as_str().into(),
            count: u64::from(count),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_through_take() {
        // The only unit test touching the global counters, so parallel tests cannot race.
        set_enabled(true);
        AGENT.store(Agent::Zed as u8, Relaxed);
        LANGUAGE.store(Language::Go as u8, Relaxed);
        BUCKET.store(FileCountBucket::Thousands as u8, Relaxed);
        record(EventType::McpTool, EventName::SearchText);
        record_event(EventName::SearchText);
        record(EventType::CliCommand, EventName::SearchText); // wrong type: dropped
        let rows = take();
        set_enabled(false);
        record_event(EventName::Init); // off: nothing
        assert_eq!(
            rows,
            vec![Row {
                event_type: "mcp_tool".into(),
                event_name: "search_text".into(),
                language: "go".into(),
                agent: "zed".into(),
                file_count_bucket: "1k-10k".into(),
                count: 2,
            }]
        );
        assert!(take().is_empty());
    }

    #[test]
    fn dominant_language_prefers_code() {
        let langs: BTreeMap<String, u64> = [
            ("markdown", 50),
            ("rust", 10),
            ("python", 3),
            ("klingon", 99),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        assert_eq!(dominant_language(&langs), Language::Rust);
        let docs: BTreeMap<String, u64> = [("markdown".to_string(), 5)].into();
        assert_eq!(dominant_language(&docs), Language::Markdown);
        assert_eq!(dominant_language(&BTreeMap::new()), Language::None);
    }
}
