//! The codelens benchmark harness: builds synthetic trees of real-looking source and
//! prints codelens's figures beside a reference tool measured in the same run.
//!
//!     cargo bench --bench perf                         # 10k and 100k files, every case
//!     cargo bench --bench perf -- --sizes 10000 --cases index --keep   # keep the tree
//!     CODELENS_BENCH_BASELINE=/path/to/older/codelens cargo bench --bench perf -- --cases baseline,mcp
//!                                                      # this build against an older one
//!
//! To add a case: write `fn my_case(ctx: &Ctx) -> Vec<Row>` and list it in `CASES`.
//! Numbers live here, never in tests.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_codelens");

/// One benchmark case: a name for `--cases` and the function producing its rows.
struct Case {
    name: &'static str,
    run: fn(&Ctx) -> Vec<Row>,
}

const CASES: &[Case] = &[
    Case {
        name: "index",
        run: index_case,
    },
    Case {
        name: "catchup",
        run: catchup_case,
    },
    Case {
        name: "worktree",
        run: worktree_case,
    },
    Case {
        name: "watcher",
        run: watcher_case,
    },
    Case {
        name: "mcp",
        run: mcp_case,
    },
    Case {
        name: "baseline",
        run: baseline_case,
    },
];

/// Everything a case may use: the generated tree and how to run things in it.
struct Ctx {
    tree: PathBuf,
    files: usize,
    /// Relative paths of the generated source files, in generation order.
    sources: Vec<String>,
}

/// One printed line: codelens's figure beside the reference's.
struct Row {
    case: String,
    ours: Measured,
    reference_name: String,
    reference: Option<Measured>,
    target: &'static str,
}

#[derive(Clone, Copy)]
struct Measured {
    wall: Duration,
    /// Peak RSS of a child process; `None` for work measured inside this process.
    max_rss_kb: Option<u64>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sizes = vec![10_000usize, 100_000];
    let mut cases: Option<Vec<String>> = None;
    let mut keep = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--sizes" => {
                sizes = iter
                    .next()
                    .expect("--sizes N,M")
                    .split(',')
                    .map(|s| s.parse().expect("a number"))
                    .collect()
            }
            "--cases" => {
                cases = Some(
                    iter.next()
                        .expect("--cases a,b")
                        .split(',')
                        .map(str::to_string)
                        .collect(),
                )
            }
            "--keep" => keep = true,
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown argument {other}; use --sizes N,M and --cases NAME,…"),
        }
    }
    let selected: Vec<&Case> = CASES
        .iter()
        .filter(|c| {
            cases
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == c.name))
        })
        .collect();

    println!(
        "codelens benchmark · {} · {} cores · {}",
        env!("CARGO_PKG_VERSION"),
        cores(),
        tool_versions()
    );
    for files in sizes {
        let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("bench-{files}"));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let started = Instant::now();
        let (sources, bytes) = generate_tree(&work, files);
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["add", "-A"]);
        git(
            &work,
            &[
                "-c",
                "user.name=bench",
                "-c",
                "user.email=bench@example.com",
                "commit",
                "-q",
                "-m",
                "tree",
            ],
        );
        println!(
            "\ntree: {} files · {:.1} MB of source · committed to git · prepared in {:.1} s",
            sources.len(),
            bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
        println!(
            "{:<34} {:>17}   {:<16} {:>17}   {:>7}  target",
            "case", "codelens", "reference", "", "ratio"
        );
        let ctx = Ctx {
            tree: work.clone(),
            files,
            sources,
        };
        for case in &selected {
            for row in (case.run)(&ctx) {
                print_row(&row);
            }
        }
        if keep {
            println!("tree kept at {}", work.display());
        } else {
            let _ = std::fs::remove_dir_all(&work);
        }
    }
}

fn print_row(row: &Row) {
    let fmt = |m: &Measured| match m.max_rss_kb {
        Some(kb) => format!("{:>9} {:>5} MB", human(m.wall), kb / 1024),
        None => format!("{:>9} {:>8}", human(m.wall), "in-proc"),
    };
    let (reference, ratio) = match &row.reference {
        Some(r) => (
            fmt(r),
            format!(
                "{:.2}×",
                row.ours.wall.as_secs_f64() / r.wall.as_secs_f64().max(1e-9)
            ),
        ),
        None => ("not installed".to_string(), "–".to_string()),
    };
    println!(
        "{:<34} {}   {:<16} {}   {:>7}  {}",
        row.case,
        fmt(&row.ours),
        row.reference_name,
        reference,
        ratio,
        row.target
    );
    let _ = std::io::stdout().flush();
}

fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

// ---------------------------------------------------------------------------------------
// Cases

/// `init` beside `ctags -R`; no-change and 1 %-changed `sync` beside `git status`.
fn index_case(ctx: &Ctx) -> Vec<Row> {
    let mut rows = Vec::new();
    // Three runs each at every size: a single run at 100k files varied by ±25 %.
    let init_runs = 3;

    let ours = median_of(init_runs, || run(&ctx.tree, BIN, &["init", "-q"]));
    let ctags_out =
        std::env::temp_dir().join(format!("codelens-bench-tags-{}", std::process::id()));
    let ctags_out_arg = ctags_out.to_string_lossy().into_owned();
    let reference = which("ctags").then(|| {
        median_of(init_runs, || {
            run(&ctx.tree, "ctags", &["-R", "-f", &ctags_out_arg, "."])
        })
    });
    let _ = std::fs::remove_file(&ctags_out);
    rows.push(Row {
        case: "init (full index)".into(),
        ours,
        reference_name: "ctags -R".into(),
        reference,
        target: "< 1.0× ctags; RSS < 150 MB",
    });

    // Warm both sides once: git refreshes its index on the first status, and files
    // written within the racy window of init are re-verified once by codelens.
    run(&ctx.tree, "git", &["status", "--porcelain"]);
    run(&ctx.tree, BIN, &["sync", "-q"]);
    let git_status = median_of(5, || run(&ctx.tree, "git", &["status", "--porcelain"]));
    let ours = median_of(5, || run(&ctx.tree, BIN, &["sync", "-q"]));
    rows.push(Row {
        case: "sync, no change".into(),
        ours,
        reference_name: "git status".into(),
        reference: Some(git_status),
        target: "≤ 1.0× git status; RSS < 150 MB",
    });

    // 1 % of files rewritten; each round touches a different slice of the tree.
    let changed = (ctx.sources.len() / 100).max(1);
    let mut ours_runs = Vec::new();
    let mut git_runs = Vec::new();
    for round in 0..3 {
        for rel in ctx
            .sources
            .iter()
            .skip(round * changed * 7 + 3)
            .step_by(7)
            .take(changed)
        {
            append_comment(&ctx.tree.join(rel), &format!("edited in round {round}"));
        }
        git_runs.push(run(&ctx.tree, "git", &["status", "--porcelain"]));
        ours_runs.push(run(&ctx.tree, BIN, &["sync", "-q"]));
        // Commit so the next round's git status starts from a clean index again.
        git(
            &ctx.tree,
            &[
                "-c",
                "user.name=bench",
                "-c",
                "user.email=b@example.com",
                "commit",
                "-qam",
                "round",
            ],
        );
    }
    rows.push(Row {
        case: format!("sync, 1% changed ({changed} files)"),
        ours: median(ours_runs),
        reference_name: "git status".into(),
        reference: Some(median(git_runs)),
        target: "≤ 1.5× git status; RSS < 150 MB",
    });
    rows
}

/// This build against an older binary (`CODELENS_BENCH_BASELINE`), on the same tree in
/// the same run, with runs interleaved so that drift in the machine hits both alike:
/// `init` and no-change `sync`, each beside its reference (`ctags -R`, `git status`).
fn baseline_case(ctx: &Ctx) -> Vec<Row> {
    let Ok(baseline) = std::env::var("CODELENS_BENCH_BASELINE") else {
        println!("baseline: set CODELENS_BENCH_BASELINE to an older codelens binary");
        return Vec::new();
    };
    let mut rows = Vec::new();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    // Each from no index: an older build refuses to replace an index of a newer schema.
    let no_index = || {
        let _ = std::fs::remove_dir_all(ctx.tree.join(".codelens"));
    };
    for _ in 0..5 {
        no_index();
        ours.push(run(&ctx.tree, BIN, &["init", "-q"]));
        no_index();
        theirs.push(run(&ctx.tree, &baseline, &["init", "-q"]));
    }
    let ctags_out =
        std::env::temp_dir().join(format!("codelens-bench-tags-{}", std::process::id()));
    let ctags_out_arg = ctags_out.to_string_lossy().into_owned();
    let ctags = which("ctags").then(|| {
        median_of(3, || {
            run(&ctx.tree, "ctags", &["-R", "-f", &ctags_out_arg, "."])
        })
    });
    let _ = std::fs::remove_file(&ctags_out);
    let (ours, theirs) = (median(ours), median(theirs));
    rows.push(Row {
        case: "init: this build".into(),
        ours,
        reference_name: "ctags -R".into(),
        reference: ctags,
        target: "< 1.0× ctags",
    });
    rows.push(Row {
        case: "init: this build vs baseline".into(),
        ours,
        reference_name: "baseline".into(),
        reference: Some(theirs),
        target: "≤ 1.05× baseline",
    });
    // Both binaries read the one index (same schema); both warm first.
    run(&ctx.tree, "git", &["status", "--porcelain"]);
    run(&ctx.tree, BIN, &["init", "-q"]);
    run(&ctx.tree, BIN, &["sync", "-q"]);
    let same_schema = Command::new(&baseline)
        .args(["sync", "-q"])
        .current_dir(&ctx.tree)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !same_schema {
        println!(
            "baseline: it cannot read this build's index (another schema version): no sync rows"
        );
        return rows;
    }
    let (mut ours, mut theirs, mut git) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..15 {
        git.push(run(&ctx.tree, "git", &["status", "--porcelain"]));
        ours.push(run(&ctx.tree, BIN, &["sync", "-q"]));
        theirs.push(run(&ctx.tree, &baseline, &["sync", "-q"]));
    }
    let (ours, theirs) = (median(ours), median(theirs));
    rows.push(Row {
        case: "sync, no change: this build".into(),
        ours,
        reference_name: "git status".into(),
        reference: Some(median(git)),
        target: "≤ 1.0× git status",
    });
    rows.push(Row {
        case: "sync, no change: vs baseline".into(),
        ours,
        reference_name: "baseline".into(),
        reference: Some(theirs),
        target: "≤ 1.05× baseline",
    });
    rows
}

/// The engine's start-up catch-up, in this process through the library API: with no
/// change and with 1 % of files changed, beside `git status` on the same tree, and the
/// time from `Engine::start` to the first answer a query may give (catch-up done).
fn catchup_case(ctx: &Ctx) -> Vec<Row> {
    use codelens::engine::project::Project;
    use codelens::engine::{Catchup, Engine, EngineOptions};

    run(&ctx.tree, BIN, &["init", "-q"]);
    run(&ctx.tree, BIN, &["sync", "-q"]);
    run(&ctx.tree, "git", &["status", "--porcelain"]);
    let options = EngineOptions {
        catchup_timeout: Duration::from_secs(600),
        ..EngineOptions::default()
    };
    let catch_up = || {
        let started = Instant::now();
        let engine = Engine::start(
            Project::at(ctx.tree.canonicalize().unwrap()),
            options.clone(),
        )
        .unwrap();
        let snapshot = engine.wait_for_catchup();
        let first_answer = started.elapsed();
        assert!(
            matches!(snapshot.catchup, Catchup::Done { .. }),
            "{:?}",
            snapshot.catchup
        );
        engine
            .wait_until(Duration::from_secs(600), |s| s.pending.is_empty())
            .expect("re-indexed");
        (first_answer, started.elapsed())
    };
    let in_process = |wall| Measured {
        wall,
        max_rss_kb: None,
    };

    let git_status = median_of(5, || run(&ctx.tree, "git", &["status", "--porcelain"]));
    let no_change: Vec<Measured> = (0..5).map(|_| in_process(catch_up().1)).collect();
    let mut rows = vec![Row {
        case: "catch-up, no change".into(),
        ours: median(no_change),
        reference_name: "git status".into(),
        reference: Some(git_status),
        target: "≤ 1.0× git status",
    }];

    let changed = (ctx.sources.len() / 100).max(1);
    let (mut first_answers, mut totals, mut git_runs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        for rel in ctx
            .sources
            .iter()
            .skip(round * changed * 7 + 5)
            .step_by(7)
            .take(changed)
        {
            let what = format!("edited while no engine ran, round {round}");
            append_comment(&ctx.tree.join(rel), &what);
        }
        git_runs.push(run(&ctx.tree, "git", &["status", "--porcelain"]));
        let (first, total) = catch_up();
        first_answers.push(in_process(first));
        totals.push(in_process(total));
        git(
            &ctx.tree,
            &[
                "-c",
                "user.name=bench",
                "-c",
                "user.email=b@example.com",
                "commit",
                "-qam",
                "round",
            ],
        );
    }
    let git_changed = median(git_runs);
    rows.push(Row {
        case: format!("catch-up, 1% changed ({changed}): found"),
        ours: median(first_answers),
        reference_name: "git status".into(),
        reference: Some(git_changed),
        target: "≤ 1.5× git status (start → first answer)",
    });
    rows.push(Row {
        case: format!("catch-up, 1% changed ({changed}): indexed"),
        ours: median(totals),
        reference_name: "git status".into(),
        reference: Some(git_changed),
        target: "(start → index equals tree)",
    });
    rows
}

/// `init -i` in a linked worktree that differs from the main checkout in 1 % of files
/// (seeded from the main checkout's index), beside a fresh `init` of the same worktree.
fn worktree_case(ctx: &Ctx) -> Vec<Row> {
    run(&ctx.tree, BIN, &["init", "-q"]);
    let wt_name = "bench-worktree";
    git(
        &ctx.tree,
        &["worktree", "add", "-q", "-b", "bench-feature", wt_name],
    );
    let wt = ctx.tree.join(wt_name);
    let changed = (ctx.sources.len() / 100).max(1);
    for rel in ctx.sources.iter().skip(11).step_by(97).take(changed) {
        append_comment(&wt.join(rel), "changed on the feature branch");
    }
    let seeded = median_of(3, || run(&wt, BIN, &["init", "-i", "-q"]));
    // The same worktree built from scratch: no main checkout index to seed from.
    let main_index = ctx.tree.join(".codelens");
    let aside = ctx.tree.join(".codelens-aside");
    std::fs::rename(&main_index, &aside).unwrap();
    let fresh = median_of(if ctx.files > 50_000 { 1 } else { 3 }, || {
        run(&wt, BIN, &["init", "-q"])
    });
    std::fs::rename(&aside, &main_index).unwrap();
    git(&ctx.tree, &["worktree", "remove", "--force", wt_name]);
    vec![Row {
        case: format!("init -i in a worktree, 1% differs ({changed})"),
        ours: seeded,
        reference_name: "fresh init".into(),
        reference: Some(fresh),
        target: "≤ 0.2× fresh init",
    }]
}

/// What one watching engine measured (see [`watch_with`]).
struct WatchRun {
    strategy: &'static str,
    /// `Engine::start` → the first snapshot whose watcher is armed (native).
    to_watching: Duration,
    /// `Engine::start` → catch-up done with nothing pending.
    to_caught_up: Duration,
    cookie: Vec<Duration>,
    to_pending: Vec<Duration>,
    to_indexed: Vec<Duration>,
    /// CPU over the idle period, scaled to one minute.
    idle_cpu_per_minute: Duration,
    /// The engine's own count (`status --json`'s `watcher.descriptors`).
    descriptors: usize,
    /// inotify watches the whole process holds, from `/proc/self/fdinfo`.
    kernel_watches: usize,
    open_fds: usize,
    watched_dirs: usize,
    mode: String,
}

/// The watching engine, in this process, under each watch strategy in turn (the same
/// tree, one engine at a time): start → watching, the cookie round trip (a query
/// making sure it has seen every event), edit → pending and edit → re-indexed (minus
/// the debounce) over 200 edits, CPU while idle, and the descriptors it holds.
/// `per-directory` (Linux's default) is measured against the watcher issue's targets;
/// `recursive` against `per-directory` measured in the same run.
fn watcher_case(ctx: &Ctx) -> Vec<Row> {
    run(&ctx.tree, BIN, &["init", "-q"]);
    let runs = [
        watch_with(ctx, "per-directory"),
        watch_with(ctx, "recursive"),
    ];
    for r in &runs {
        println!(
            "  watcher {}: {} · {} descriptors held (engine's count) · {} inotify watches in the process (kernel's) \
             for {} directories of the index · {} open descriptors · start → watching {} · start → caught up {}",
            r.strategy,
            r.mode,
            r.descriptors,
            r.kernel_watches,
            r.watched_dirs,
            r.open_fds,
            human(r.to_watching),
            human(r.to_caught_up)
        );
    }
    let in_process = |wall| Measured {
        wall,
        max_rss_kb: None,
    };
    let target = |ms: u64| Some(in_process(Duration::from_millis(ms)));
    type Metric = (
        &'static str,
        fn(&WatchRun) -> Duration,
        Option<u64>,
        &'static str,
    );
    let metrics: [Metric; 8] = [
        ("start → watching", |r| r.to_watching, None, ""),
        ("start → caught up", |r| r.to_caught_up, None, ""),
        (
            "cookie round trip p99",
            |r| percentile(&r.cookie, 99),
            Some(20),
            "p99 ≤ 20 ms",
        ),
        (
            "edit → pending p50",
            |r| percentile(&r.to_pending, 50),
            Some(50),
            "",
        ),
        (
            "edit → pending p99",
            |r| percentile(&r.to_pending, 99),
            Some(50),
            "p99 < 50 ms",
        ),
        (
            "re-index − debounce p50",
            |r| percentile(&r.to_indexed, 50),
            Some(100),
            "",
        ),
        (
            "re-index − debounce p99",
            |r| percentile(&r.to_indexed, 99),
            Some(100),
            "p99 < 100 ms",
        ),
        (
            "idle CPU per minute",
            |r| r.idle_cpu_per_minute,
            Some(100),
            "< 0.1 s CPU per 60 s",
        ),
    ];
    let [per_directory, recursive] = &runs;
    let mut rows = Vec::new();
    for (name, value, target_ms, goal) in metrics {
        rows.push(Row {
            case: format!("[per-dir] {name}"),
            ours: in_process(value(per_directory)),
            reference_name: if target_ms.is_some() { "target" } else { "–" }.into(),
            reference: target_ms.and_then(target),
            target: goal,
        });
        rows.push(Row {
            case: format!("[recursive] {name}"),
            ours: in_process(value(recursive)),
            reference_name: "per-directory".into(),
            reference: Some(in_process(value(per_directory))),
            target: goal,
        });
    }
    rows
}

/// One engine watching `ctx.tree` with `CODELENS_WATCH_STRATEGY=strategy`, measured,
/// then dropped (its watches with it).
fn watch_with(ctx: &Ctx, strategy: &'static str) -> WatchRun {
    use codelens::config::Config;
    use codelens::engine::project::Project;
    use codelens::engine::watcher::WatchMode;
    use codelens::engine::{Catchup, Engine, EngineOptions};

    const DEBOUNCE_MS: u64 = 100;
    let idle_secs: u64 = std::env::var("CODELENS_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let config = Config::from_lookup(|name| match name {
        "CODELENS_WATCH_DEBOUNCE_MS" => Some(DEBOUNCE_MS.to_string()),
        "CODELENS_WATCH_STRATEGY" => Some(strategy.to_string()),
        _ => None,
    });
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let started = Instant::now();
    let engine = Engine::start(
        Project::at(ctx.tree.canonicalize().unwrap()),
        EngineOptions::from_config(&config),
    )
    .unwrap();
    engine
        .wait_until(Duration::from_secs(600), |s| {
            s.watcher.mode == WatchMode::Native
        })
        .expect("watching");
    let to_watching = started.elapsed();
    engine
        .wait_until(Duration::from_secs(600), |s| {
            matches!(s.catchup, Catchup::Done { .. }) && s.pending.is_empty()
        })
        .expect("caught up");
    let to_caught_up = started.elapsed();
    let kernel_watches = inotify_watches();
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);

    let mut cookie = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        assert!(engine.settle(Duration::from_secs(10)));
        cookie.push(t.elapsed());
    }
    let (mut to_pending, mut to_indexed) = (Vec::new(), Vec::new());
    for (i, rel) in ctx
        .sources
        .iter()
        .step_by(ctx.sources.len() / 200)
        .take(200)
        .enumerate()
    {
        let path = ctx.tree.join(rel);
        let mut content = std::fs::read_to_string(&path).unwrap();
        content.push_str(&format!("\n// watched edit {i} ({strategy})\n"));
        let t = Instant::now();
        std::fs::write(&path, content).unwrap();
        engine
            .wait_until(Duration::from_secs(10), |s| {
                s.pending.iter().any(|p| &p.path == rel)
            })
            .expect("pending");
        to_pending.push(t.elapsed());
        engine
            .wait_until(Duration::from_secs(30), |s| s.pending.is_empty())
            .expect("re-indexed");
        to_indexed.push(
            t.elapsed()
                .saturating_sub(Duration::from_millis(DEBOUNCE_MS)),
        );
    }

    let cpu_before = process_cpu();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let idle_cpu = process_cpu().saturating_sub(cpu_before);
    let snapshot = engine.snapshot();
    assert_eq!(snapshot.watcher.strategy.name(), strategy);
    WatchRun {
        strategy,
        to_watching,
        to_caught_up,
        cookie,
        to_pending,
        to_indexed,
        idle_cpu_per_minute: idle_cpu.mul_f64(60.0 / idle_secs.max(1) as f64),
        descriptors: snapshot.watcher.descriptors,
        kernel_watches,
        open_fds,
        watched_dirs: snapshot.watcher.watched_dirs,
        mode: format!(
            "{} ({})",
            snapshot.watcher.mode_name(),
            snapshot.watcher.reason
        ),
    }
}

/// `codelens --mcp` as a child process spoken to over stdio: spawn → first answered
/// `tools/call` (warm index, no changes), then p50/p99 of 1,000 calls of each read tool.
/// A `codelens --mcp` child driven over its stdio, one request at a time.
struct McpSession {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    next_id: u64,
}

impl McpSession {
    fn spawn(bin: &str, tree: &Path) -> McpSession {
        let mut child = Command::new(bin)
            .arg("--mcp")
            .current_dir(tree)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("codelens --mcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        McpSession {
            child,
            stdin,
            stdout,
            next_id: 0,
        }
    }

    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        use std::io::BufRead;
        self.next_id += 1;
        let request = serde_json::json!({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params});
        writeln!(self.stdin, "{request}").unwrap();
        self.stdin.flush().unwrap();
        loop {
            let mut line = String::new();
            assert!(
                self.stdout.read_line(&mut line).unwrap() > 0,
                "server closed stdout"
            );
            let message: serde_json::Value = serde_json::from_str(&line).expect("JSON-RPC");
            if message["id"] == serde_json::json!(self.next_id) {
                return message;
            }
        }
    }

    fn initialize(&mut self) {
        self.call(
            "initialize",
            serde_json::json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}),
        );
    }

    fn tool(&mut self, name: &str, arguments: &serde_json::Value) -> serde_json::Value {
        let answer = self.call(
            "tools/call",
            serde_json::json!({"name": name, "arguments": arguments}),
        );
        assert!(answer["result"]["isError"] != true, "{answer}");
        answer
    }

    fn close(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

fn mcp_case(ctx: &Ctx) -> Vec<Row> {
    run(&ctx.tree, BIN, &["init", "-q"]);
    let started = Instant::now();
    let mut ours = McpSession::spawn(BIN, &ctx.tree);
    ours.initialize();
    let initialized = started.elapsed();
    ours.tool(
        "search_symbols",
        &serde_json::json!({"query": "index", "limit": 10}),
    );
    let first_answer = started.elapsed();

    let outline_path = ctx
        .sources
        .iter()
        .find(|p| p.ends_with(".rs"))
        .cloned()
        .unwrap_or_default();
    let mut rows = vec![Row {
        case: "spawn → initialize answered".into(),
        ours: Measured {
            wall: initialized,
            max_rss_kb: None,
        },
        reference_name: "target".into(),
        reference: Some(Measured {
            wall: Duration::from_millis(200),
            max_rss_kb: None,
        }),
        target: "< 200 ms",
    }];
    rows.push(Row {
        case: "spawn → first tools/call answered".into(),
        ours: Measured {
            wall: first_answer,
            max_rss_kb: None,
        },
        reference_name: "–".into(),
        reference: None,
        target: "(warm index, no changes)",
    });
    // An older build (CODELENS_BENCH_BASELINE) answers the same calls on the same
    // index, in blocks interleaved with ours so that drift in the machine hits both.
    let mut baseline = std::env::var("CODELENS_BENCH_BASELINE").ok().map(|bin| {
        let mut session = McpSession::spawn(&bin, &ctx.tree);
        session.initialize();
        session
    });
    let queries = [
        (
            "search_symbols",
            serde_json::json!({"query": "store_entry", "limit": 20}),
        ),
        ("file_outline", serde_json::json!({"path": outline_path})),
        (
            "find_files",
            serde_json::json!({"pattern": "pkg01/**/*.ts", "limit": 20}),
        ),
    ];
    for (name, args) in &queries {
        let (mut samples, mut baseline_samples) = (Vec::new(), Vec::new());
        for _block in 0..10 {
            for (session, samples) in std::iter::once((&mut ours, &mut samples))
                .chain(baseline.as_mut().map(|b| (b, &mut baseline_samples)))
            {
                for _ in 0..100 {
                    let t = Instant::now();
                    session.tool(name, args);
                    samples.push(t.elapsed());
                }
            }
        }
        for p in [50, 99] {
            let at = |samples: &[Duration]| Measured {
                wall: percentile(samples, p),
                max_rss_kb: None,
            };
            rows.push(Row {
                case: format!("{name} p{p} (1,000 calls)"),
                ours: at(&samples),
                reference_name: "target".into(),
                reference: Some(Measured {
                    wall: Duration::from_millis(5),
                    max_rss_kb: None,
                }),
                target: if p == 99 { "p99 < 5 ms" } else { "" },
            });
            if !baseline_samples.is_empty() {
                rows.push(Row {
                    case: format!("{name} p{p}: this build vs baseline"),
                    ours: at(&samples),
                    reference_name: "baseline".into(),
                    reference: Some(at(&baseline_samples)),
                    target: "",
                });
            }
        }
    }
    if let Some(baseline) = baseline {
        baseline.close();
    }
    // search_text beside git grep on the same pattern (median of 5 each).
    // A pattern that matches nothing: both sides read every file.
    let pattern = "zq_never_matches_zq";
    let mut searches = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        ours.tool(
            "search_text",
            &serde_json::json!({"pattern": pattern, "limit": 500}),
        );
        searches.push(Measured {
            wall: t.elapsed(),
            max_rss_kb: None,
        });
    }
    // git grep exits 1 when nothing matches.
    let script = format!("git grep -n {pattern}; test $? -le 1");
    let git_grep = median_of(5, || run(&ctx.tree, "sh", &["-c", &script]));
    rows.push(Row {
        case: format!("search_text {pattern:?}"),
        ours: median(searches),
        reference_name: "git grep".into(),
        reference: Some(git_grep),
        target: "≤ 1.0× git grep",
    });
    ours.close();
    rows
}

fn percentile(samples: &[Duration], p: usize) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() * p) / 100).min(sorted.len() - 1)]
}

/// User + system CPU time of this process so far.
fn process_cpu() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: fills a local out-parameter.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// inotify watches this process holds (one `inotify wd:` line per watch in fdinfo).
fn inotify_watches() -> usize {
    let Ok(fds) = std::fs::read_dir("/proc/self/fdinfo") else {
        return 0;
    };
    fds.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .map(|info| {
            info.lines()
                .filter(|l| l.starts_with("inotify wd:"))
                .count()
        })
        .sum()
}

// ---------------------------------------------------------------------------------------
// Measuring

/// Runs a command to completion, returning its wall time and peak resident set size.
/// The child is reaped by `wait4` (which also yields its rusage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run(dir: &Path, program: &str, args: &[&str]) -> Measured {
    // Flush dirty pages (a just-committed tree, the previous run's index) first, so no
    // run pays for another's write-back.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let started = Instant::now();
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with valid pointers to locals.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(waited, pid, "wait4 failed for {program}");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{program} {args:?} failed ({status})"
    );
    Measured {
        wall,
        max_rss_kb: Some(usage.ru_maxrss as u64),
    }
}

fn median_of(runs: usize, mut f: impl FnMut() -> Measured) -> Measured {
    median((0..runs).map(|_| f()).collect())
}

fn median(mut runs: Vec<Measured>) -> Measured {
    runs.sort_by_key(|m| m.wall);
    let max_rss_kb = runs.iter().filter_map(|m| m.max_rss_kb).max();
    Measured {
        wall: runs[runs.len() / 2].wall,
        max_rss_kb,
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

fn which(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn tool_versions() -> String {
    let first_line = |program: &str| -> String {
        Command::new(program)
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.lines().next().map(str::to_string))
            .unwrap_or_else(|| format!("{program}: not installed"))
    };
    format!("{} · {}", first_line("git"), first_line("ctags"))
}

// ---------------------------------------------------------------------------------------
// Synthetic trees

/// A small deterministic generator (xorshift64*), so every run builds the same tree.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const WORDS: &[&str] = &[
    "index", "store", "file", "path", "cache", "entry", "event", "queue", "token", "buffer",
    "symbol", "parser", "session", "client", "server", "config", "record", "batch", "stream",
    "reader", "writer", "state", "node", "graph",
];

fn ident(rng: &mut Rng, parts: usize) -> Vec<&'static str> {
    (0..parts).map(|_| rng.pick(WORDS)).collect()
}

fn snake(rng: &mut Rng) -> String {
    let n = 2 + rng.below(2) as usize;
    ident(rng, n).join("_")
}

fn camel(rng: &mut Rng) -> String {
    let n = 2 + rng.below(2) as usize;
    ident(rng, n)
        .iter()
        .map(|w| format!("{}{}", &w[..1].to_uppercase(), &w[1..]))
        .collect()
}

/// Appends a line comment in the file's own syntax: an edit a developer would make, not
/// a syntax error (whose recovery would cost the parser extra and git nothing).
fn append_comment(path: &Path, text: &str) {
    let mut content = std::fs::read_to_string(path).unwrap();
    let line = match path.extension().and_then(|e| e.to_str()) {
        Some("py") => format!("\n# {text}\n"),
        Some("md") => format!("\n<!-- {text} -->\n"),
        _ => format!("\n// {text}\n"),
    };
    content.push_str(&line);
    std::fs::write(path, content).unwrap();
}

/// Writes `files` source files (≈ 40 % TypeScript, 20 % Rust, 20 % Python, 15 % Go,
/// 5 % Markdown) in directories of about 20, plus ignored build output. Returns the
/// relative paths of the sources and their total size.
fn generate_tree(root: &Path, files: usize) -> (Vec<String>, u64) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ files as u64);
    std::fs::write(root.join(".gitignore"), "node_modules/\ntarget/\n*.log\n").unwrap();
    let mut sources = Vec::with_capacity(files);
    let mut bytes = 0u64;
    for i in 0..files {
        // About 20 files per directory, as in real projects.
        let dir_index = i / 20;
        let dir = format!("pkg{:02}/mod{dir_index:04}", dir_index % 17);
        let (ext, body) = match rng.below(20) {
            0..=7 => ("ts", typescript_file(&mut rng)),
            8..=11 => ("rs", rust_file(&mut rng)),
            12..=15 => ("py", python_file(&mut rng)),
            16..=18 => ("go", go_file(&mut rng)),
            _ => ("md", markdown_file(&mut rng)),
        };
        let rel = format!("{dir}/{}_{i}.{ext}", rng.pick(WORDS));
        let path = root.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &body).unwrap();
        bytes += body.len() as u64;
        sources.push(rel);
    }
    // Ignored build output that neither codelens nor git may look into.
    for i in 0..files / 100 {
        let path = root.join(format!("node_modules/dep{}/index{i}.js", i % 10));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "module.exports = function ignored() {};\n").unwrap();
    }
    (sources, bytes)
}

fn rust_file(rng: &mut Rng) -> String {
    let mut s = String::from("use std::collections::HashMap;\nuse std::path::PathBuf;\n\n");
    for _ in 0..1 + rng.below(3) {
        let ty = camel(rng);
        s += &format!(
            "/// A {} kept in memory.\n#[derive(Debug, Clone, Default)]\npub struct {ty} {{\n",
            rng.pick(WORDS)
        );
        for _ in 0..2 + rng.below(4) {
            s += &format!("    pub {}: Option<String>,\n", snake(rng));
        }
        s += &format!("    entries: HashMap<String, PathBuf>,\n}}\n\nimpl {ty} {{\n");
        for _ in 0..2 + rng.below(5) {
            let f = snake(rng);
            s += &format!(
                "    pub fn {f}(&mut self, key: &str) -> Option<&PathBuf> {{\n        if key.is_empty() {{\n            return None;\n        }}\n        let value = self.entries.get(key)?;\n        Some(value)\n    }}\n\n"
            );
        }
        s += "}\n\n";
    }
    for _ in 0..rng.below(3) {
        s += &format!(
            "pub fn {}(input: &[u8]) -> usize {{\n    input.iter().filter(|b| **b == b'\\n').count()\n}}\n\n",
            snake(rng)
        );
    }
    s
}

fn python_file(rng: &mut Rng) -> String {
    let mut s = String::from("import os\nfrom dataclasses import dataclass\n\n\n");
    for _ in 0..1 + rng.below(3) {
        s += &format!(
            "@dataclass\nclass {}:\n    \"\"\"A {} record.\"\"\"\n\n    name: str = \"\"\n\n",
            camel(rng),
            rng.pick(WORDS)
        );
        for _ in 0..2 + rng.below(5) {
            s += &format!(
                "    def {}(self, path: str) -> bool:\n        if not path:\n            return False\n        return os.path.exists(os.path.join(self.name, path))\n\n",
                snake(rng)
            );
        }
        s += "\n";
    }
    for _ in 0..rng.below(4) {
        s += &format!(
            "def {}(items):\n    total = 0\n    for item in items:\n        total += len(item)\n    return total\n\n\n",
            snake(rng)
        );
    }
    s
}

fn typescript_file(rng: &mut Rng) -> String {
    let mut s = String::from("import { readFile } from \"fs/promises\";\n\n");
    let iface = camel(rng);
    s += &format!(
        "export interface {iface} {{\n  id: string;\n  size: number;\n  tags?: string[];\n}}\n\n"
    );
    for _ in 0..1 + rng.below(2) {
        s += &format!(
            "export class {} {{\n  private items: Map<string, {iface}> = new Map();\n\n",
            camel(rng)
        );
        for _ in 0..2 + rng.below(5) {
            s += &format!(
                "  {}(key: string): {iface} | undefined {{\n    if (!key) {{\n      return undefined;\n    }}\n    return this.items.get(key);\n  }}\n\n",
                snake(rng).replace('_', "")
            );
        }
        s += "}\n\n";
    }
    for _ in 0..1 + rng.below(3) {
        s += &format!(
            "export async function {}(path: string): Promise<number> {{\n  const text = await readFile(path, \"utf8\");\n  return text.split(\"\\n\").length;\n}}\n\n",
            snake(rng).replace('_', "")
        );
    }
    s += &format!(
        "export const {} = (a: number, b: number): number => a + b;\n",
        snake(rng).replace('_', "")
    );
    s
}

fn go_file(rng: &mut Rng) -> String {
    let ty = camel(rng);
    let mut s = format!(
        "package {}\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\n",
        rng.pick(WORDS)
    );
    s += &format!("// {ty} holds state.\ntype {ty} struct {{\n\tName string\n\tSize int\n}}\n\n");
    for _ in 0..2 + rng.below(5) {
        s += &format!(
            "func (r *{ty}) {}(path string) error {{\n\tif path == \"\" {{\n\t\treturn fmt.Errorf(\"empty path\")\n\t}}\n\t_, err := os.Stat(path)\n\treturn err\n}}\n\n",
            camel(rng)
        );
    }
    s += &format!("func New{ty}() *{ty} {{\n\treturn &{ty}{{}}\n}}\n");
    s
}

fn markdown_file(rng: &mut Rng) -> String {
    let mut s = format!("# The {} {}\n\n", rng.pick(WORDS), rng.pick(WORDS));
    for _ in 0..3 + rng.below(6) {
        s += &format!(
            "The {} reads each {} from the {} and writes it back.\n",
            rng.pick(WORDS),
            rng.pick(WORDS),
            rng.pick(WORDS)
        );
    }
    s
}
