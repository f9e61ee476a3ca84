//! The `Storage` contract, on every backend (SQLite, and PostgreSQL when a server is
//! there: see `common/pg.rs`): idempotent days, deletion, suppression by machines and
//! by days seen, retention.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

mod common;

use codelens_core::telemetry::buffer::Row;
use codelens_ingest::{Storage, Suppression, ValidPayload};
use common::{Backend, machine};

fn day_of(machine_id: &str, day: &str, events: &[(&str, u64)]) -> ValidPayload {
    ValidPayload {
        machine_id: machine_id.into(),
        days: vec![(
            day.into(),
            events
                .iter()
                .map(|(name, count)| Row {
                    event_type: "cli_command".into(),
                    event_name: (*name).into(),
                    language: "go".into(),
                    agent: "none".into(),
                    file_count_bucket: "<100".into(),
                    count: *count,
                })
                .collect(),
        )],
    }
}

const EVERYONE: Suppression = Suppression {
    min_machines: 1,
    min_days_seen: 1,
};

fn total(storage: &dyn Storage, rules: Suppression, name: &str) -> (u64, u64) {
    let aggregate = storage.aggregate(rules).unwrap();
    aggregate
        .buckets
        .iter()
        .filter(|b| b.event_name == name)
        .fold((0, 0), |(count, machines), b| {
            (count + b.count, machines.max(b.machines))
        })
}

#[test]
fn a_resent_day_replaces_itself_and_delete_removes_a_machine() {
    for backend in Backend::all() {
        let storage = backend.open();
        let (a, b) = (machine(1), machine(2));
        storage
            .put(
                &day_of(&a, "2024-01-01", &[("sync", 2), ("status", 1)]),
                "2024-01-02",
            )
            .unwrap();
        storage
            .put(&day_of(&a, "2024-01-01", &[("sync", 3)]), "2024-01-02")
            .unwrap();
        assert_eq!(
            total(&*storage, EVERYONE, "sync"),
            (3, 1),
            "{}",
            backend.name()
        );
        assert_eq!(
            total(&*storage, EVERYONE, "status"),
            (0, 0),
            "replaced, not merged"
        );
        storage
            .put(&day_of(&b, "2024-01-01", &[("sync", 5)]), "2024-01-02")
            .unwrap();
        assert_eq!(total(&*storage, EVERYONE, "sync"), (8, 2));
        assert_eq!(storage.delete_machine(&a).unwrap(), 1, "{}", backend.name());
        assert_eq!(total(&*storage, EVERYONE, "sync"), (5, 1));
        assert_eq!(storage.delete_machine(&a).unwrap(), 0);
    }
}

#[test]
fn small_buckets_and_machines_seen_on_one_day_only_are_not_published() {
    for backend in Backend::all() {
        let storage = backend.open();
        let name = backend.name();
        let rules = Suppression {
            min_machines: 3,
            min_days_seen: 2,
        };
        // Four made-up ids, all posting on one day (whatever days they claim): nothing.
        for n in 1..=4 {
            let id = machine(n);
            storage
                .put(&day_of(&id, "2024-03-01", &[("sync", 10)]), "2024-03-05")
                .unwrap();
            storage
                .put(&day_of(&id, "2024-03-02", &[("sync", 10)]), "2024-03-05")
                .unwrap();
        }
        let aggregate = storage.aggregate(rules).unwrap();
        assert!(aggregate.buckets.is_empty(), "{name}: {aggregate:?}");
        // Two of them post again the next day: established, but two are too few.
        for n in 1..=2 {
            storage
                .put(
                    &day_of(&machine(n), "2024-03-05", &[("sync", 1)]),
                    "2024-03-06",
                )
                .unwrap();
        }
        let aggregate = storage.aggregate(rules).unwrap();
        assert!(aggregate.buckets.is_empty(), "{name}: {aggregate:?}");
        assert_eq!(
            aggregate.suppressed, 3,
            "{name}: three buckets of two machines"
        );
        // A third on a later day: the buckets of three established machines appear,
        // the others' counts stay out of them.
        storage
            .put(
                &day_of(&machine(3), "2024-03-06", &[("status", 1)]),
                "2024-03-07",
            )
            .unwrap();
        let aggregate = storage.aggregate(rules).unwrap();
        let days: Vec<(&str, u64, u64)> = aggregate
            .buckets
            .iter()
            .map(|b| (b.day.as_str(), b.count, b.machines))
            .collect();
        assert_eq!(
            days,
            vec![("2024-03-01", 30, 3), ("2024-03-02", 30, 3)],
            "{name}"
        );
        // The same day twice is one day seen.
        storage
            .put(
                &day_of(&machine(9), "2024-03-01", &[("sync", 1)]),
                "2024-03-07",
            )
            .unwrap();
        storage
            .put(
                &day_of(&machine(9), "2024-03-02", &[("sync", 1)]),
                "2024-03-07",
            )
            .unwrap();
        assert_eq!(total(&*storage, rules, "sync").1, 3, "{name}");
        // A threshold past the databases' integers counts no one (not everyone).
        let nobody = Suppression {
            min_machines: 1,
            min_days_seen: u64::MAX,
        };
        assert_eq!(total(&*storage, nobody, "sync"), (0, 0), "{name}");
    }
}

#[test]
fn retention_deletes_old_days_and_machines_not_seen_since() {
    for backend in Backend::all() {
        let storage = backend.open();
        storage
            .put(
                &day_of(&machine(1), "2024-01-01", &[("sync", 1)]),
                "2024-01-02",
            )
            .unwrap();
        storage
            .put(
                &day_of(&machine(2), "2024-06-01", &[("sync", 1)]),
                "2024-06-02",
            )
            .unwrap();
        assert_eq!(
            storage.prune_before("2024-03-01").unwrap(),
            1,
            "{}",
            backend.name()
        );
        assert_eq!(total(&*storage, EVERYONE, "sync"), (1, 1));
        // Machine 1 is gone with its days: posting again it starts from one day seen.
        storage
            .put(
                &day_of(&machine(1), "2024-06-01", &[("sync", 1)]),
                "2024-06-03",
            )
            .unwrap();
        let established = Suppression {
            min_machines: 1,
            min_days_seen: 2,
        };
        assert_eq!(
            total(&*storage, established, "sync"),
            (0, 0),
            "{}",
            backend.name()
        );
    }
}
