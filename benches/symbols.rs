//! Symbol recall against Universal Ctags, and `init` throughput per language beside
//! `ctags -R`, on real third-party code that the caller points at (nothing of it is
//! in this repository):
//!
//!     cargo bench --bench symbols -- --corpus DIR            # recall and throughput
//!     cargo bench --bench symbols -- --corpus DIR --recall   # recall only
//!
//! DIR is any tree of sources (checkouts of other projects, /usr/include, a Python
//! library directory …). Every file is given the language codelens detects for it;
//! ctags parses the same files forced to the same language, and only ctags' definition
//! kinds are compared (below, per language: no headers, packages, imports, locals or
//! parameters). A ctags tag counts as found when codelens has a symbol of the same
//! name on the same line of the same file. Numbers live here, never in tests.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use codelens::engine::lang::Lang;
use codelens::engine::symbols::SymbolExtractor;

const BIN: &str = env!("CARGO_BIN_EXE_codelens");

/// A language's name in ctags and the ctags kinds that are definitions codelens should
/// find. JavaScript's and TypeScript's variables, constants and properties are left
/// out: codelens indexes a variable there only when it holds a function.
fn ctags_reference(lang: Lang) -> Option<(&'static str, &'static [&'static str])> {
    Some(match lang {
        Lang::C => (
            "C",
            &[
                "macro",
                "enumerator",
                "function",
                "enum",
                "member",
                "struct",
                "typedef",
                "union",
                "variable",
            ],
        ),
        Lang::Cpp => (
            "C++",
            &[
                "class",
                "macro",
                "enumerator",
                "function",
                "enum",
                "member",
                "namespace",
                "struct",
                "typedef",
                "union",
                "variable",
            ],
        ),
        Lang::Java => (
            "Java",
            &[
                "annotation",
                "class",
                "enumConstant",
                "field",
                "enum",
                "interface",
                "method",
            ],
        ),
        Lang::CSharp => (
            "C#",
            &[
                "event",
                "class",
                "enumerator",
                "field",
                "enum",
                "interface",
                "method",
                "namespace",
                "property",
                "struct",
            ],
        ),
        Lang::Ruby => (
            "Ruby",
            &[
                "accessor",
                "constant",
                "singletonMethod",
                "alias",
                "class",
                "method",
                "module",
            ],
        ),
        Lang::Php => (
            "PHP",
            &[
                "class",
                "define",
                "function",
                "interface",
                "namespace",
                "trait",
                "variable",
            ],
        ),
        Lang::Kotlin => (
            "Kotlin",
            &[
                "constant",
                "typealias",
                "class",
                "interface",
                "method",
                "object",
                "variable",
            ],
        ),
        Lang::Shell => ("Sh", &["alias", "function"]),
        Lang::Lua => ("Lua", &["function"]),
        Lang::Rust => (
            "Rust",
            &[
                "macro",
                "method",
                "enum",
                "function",
                "interface",
                "module",
                "struct",
                "typedef",
                "variable",
            ],
        ),
        Lang::Go => (
            "Go",
            &[
                "talias",
                "const",
                "func",
                "interface",
                "struct",
                "type",
                "var",
            ],
        ),
        Lang::Python => ("Python", &["class", "function", "member"]),
        Lang::JavaScript => (
            "JavaScript",
            &[
                "class",
                "function",
                "method",
                "generator",
                "getter",
                "setter",
            ],
        ),
        Lang::TypeScript => (
            "TypeScript",
            &[
                "class",
                "enum",
                "function",
                "interface",
                "method",
                "namespace",
                "alias",
            ],
        ),
        // TSX (ctags has no JSX-aware TypeScript), Swift and Scala (no parser in
        // Universal Ctags): no reference.
        _ => return None,
    })
}

struct SourceFile {
    path: PathBuf,
    /// Relative to the corpus root.
    rel: PathBuf,
    size: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut corpus = None;
    let mut recall_only = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--corpus" => corpus = iter.next().map(PathBuf::from),
            "--recall" => recall_only = true,
            "--bench" => {}
            other => panic!("unknown argument {other}; use --corpus DIR [--recall]"),
        }
    }
    let Some(corpus) =
        corpus.or_else(|| std::env::var_os("CODELENS_SYMBOLS_CORPUS").map(PathBuf::from))
    else {
        println!(
            "symbols bench: no corpus. Point it at third-party sources: \
             cargo bench --bench symbols -- --corpus DIR (or CODELENS_SYMBOLS_CORPUS=DIR)"
        );
        return;
    };
    if !ctags_available() {
        println!("symbols bench: Universal Ctags is not installed (Debian: universal-ctags)");
        return;
    }
    println!(
        "codelens symbols bench · {} · {}",
        env!("CARGO_PKG_VERSION"),
        ctags_version()
    );
    let mut by_lang: BTreeMap<Lang, Vec<SourceFile>> = BTreeMap::new();
    walk(&corpus, &corpus, &mut by_lang);
    by_lang.retain(|lang, _| lang.has_symbols());

    println!("\nrecall against ctags (definition kinds; found = same name, file and line)");
    println!(
        "{:<11} {:>6} {:>8} {:>8} {:>8} {:>7}",
        "language", "files", "ctags", "found", "recall", "ours"
    );
    let mut all_misses = Vec::new();
    for (lang, files) in &by_lang {
        let ours = extract_all(*lang, files);
        let Some((ctags_lang, kinds)) = ctags_reference(*lang) else {
            println!(
                "{:<11} {:>6} {:>8} {:>8} {:>8} {:>7}",
                lang.name(),
                files.len(),
                "—",
                "—",
                "no ref",
                ours.len()
            );
            continue;
        };
        let tags = ctags_tags(&corpus, ctags_lang, kinds, files);
        let found: Vec<bool> = tags
            .iter()
            .map(|t| ours.contains(&(t.rel.clone(), t.name.clone(), t.line)))
            .collect();
        let hits = found.iter().filter(|f| **f).count();
        let recall = if tags.is_empty() {
            1.0
        } else {
            hits as f64 / tags.len() as f64
        };
        println!(
            "{:<11} {:>6} {:>8} {:>8} {:>8.3} {:>7}{}",
            lang.name(),
            files.len(),
            tags.len(),
            hits,
            recall,
            ours.len(),
            if recall >= 0.95 { "" } else { "  < 0.95" }
        );
        let misses: Vec<&Tag> = tags
            .iter()
            .zip(&found)
            .filter(|(_, f)| !**f)
            .map(|(t, _)| t)
            .collect();
        all_misses.push((*lang, misses.into_iter().cloned().collect::<Vec<Tag>>()));
    }
    // Every miss, for a closer look: CODELENS_BENCH_MISSES=FILE.
    if let Some(path) = std::env::var_os("CODELENS_BENCH_MISSES") {
        let mut out = std::fs::File::create(path).unwrap();
        for (lang, misses) in &all_misses {
            for t in misses {
                writeln!(
                    out,
                    "{}\t{}\t{}:{}\t{}",
                    lang.name(),
                    t.kind,
                    t.rel.display(),
                    t.line,
                    t.name
                )
                .unwrap();
            }
        }
    }
    println!("\nworst misses (by ctags kind, with examples)");
    for (lang, misses) in &all_misses {
        if misses.is_empty() {
            continue;
        }
        let mut by_kind: BTreeMap<&str, Vec<&Tag>> = BTreeMap::new();
        for miss in misses {
            by_kind.entry(&miss.kind).or_default().push(miss);
        }
        let mut kinds: Vec<_> = by_kind.into_iter().collect();
        kinds.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        for (kind, tags) in kinds.iter().take(3) {
            let examples: Vec<String> = tags
                .iter()
                .take(3)
                .map(|t| format!("{}:{} {}", t.rel.display(), t.line, t.name))
                .collect();
            println!(
                "  {:<10} {:>5} × {:<15} e.g. {}",
                lang.name(),
                tags.len(),
                kind,
                examples.join(", ")
            );
        }
    }
    if recall_only {
        return;
    }
    throughput(&by_lang);
}

/// Every regular file below `dir` (no `.git`, no symlinks), by detected language.
fn walk(root: &Path, dir: &Path, by_lang: &mut BTreeMap<Lang, Vec<SourceFile>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && entry.file_name() != ".git" {
            walk(root, &path, by_lang);
        } else if kind.is_file() {
            let Ok(content) = std::fs::read(&path) else {
                continue;
            };
            let name = entry.file_name();
            let lang = Lang::detect_with_content(name.as_encoded_bytes(), &content);
            by_lang.entry(lang).or_default().push(SourceFile {
                rel: path.strip_prefix(root).unwrap().to_path_buf(),
                path,
                size: content.len() as u64,
            });
        }
    }
}

fn extract_all(lang: Lang, files: &[SourceFile]) -> HashSet<(PathBuf, String, u32)> {
    let mut extractor = SymbolExtractor::new();
    let mut ours = HashSet::new();
    for file in files {
        let content = std::fs::read(&file.path).unwrap();
        for symbol in extractor.extract(lang, &content) {
            ours.insert((file.rel.clone(), symbol.name, symbol.line));
        }
    }
    ours
}

#[derive(Clone, Debug)]
struct Tag {
    rel: PathBuf,
    name: String,
    line: u32,
    kind: String,
}

/// ctags' definitions in `files`, parsed as `ctags_lang`, of the given kinds.
fn ctags_tags(corpus: &Path, ctags_lang: &str, kinds: &[&str], files: &[SourceFile]) -> Vec<Tag> {
    let list = std::env::temp_dir().join(format!("codelens-symbols-bench-{}", std::process::id()));
    let mut listing = std::fs::File::create(&list).unwrap();
    for file in files {
        writeln!(listing, "{}", file.rel.display()).unwrap();
    }
    drop(listing);
    let output = Command::new("ctags")
        .current_dir(corpus)
        .args([
            "--output-format=json",
            "--fields=+nK",
            &format!("--language-force={ctags_lang}"),
            "-f",
            "-",
            "-L",
        ])
        .arg(&list)
        .stderr(Stdio::null())
        .output()
        .expect("ctags runs");
    let _ = std::fs::remove_file(&list);
    let mut tags = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let field = |name: &str| value[name].as_str().unwrap_or_default().to_string();
        let kind = field("kind");
        let name = field("name");
        // Anonymous structs, functions and classes get made-up names (`__anon…`,
        // `AnonymousFunction…`, Kotlin's `<lambda>`): nothing to find.
        let made_up =
            name.starts_with("__anon") || name.starts_with("Anonymous") || name == "<lambda>";
        // A variable inside a function is a local, not a definition (some ctags
        // parsers, Kotlin's, tag them all the same).
        let local = matches!(kind.as_str(), "variable" | "constant" | "member" | "field")
            && matches!(
                field("scopeKind").as_str(),
                "method" | "function" | "func" | "singletonMethod" | "getter" | "setter"
            );
        if field("_type") != "tag" || !kinds.contains(&kind.as_str()) || made_up || local {
            continue;
        }
        if is_noise(
            ctags_lang,
            &kind,
            &name,
            &field("pattern"),
            &field("scopeKind"),
        ) {
            continue;
        }
        // Lua's ctags names a function by its whole path (`M.new`, `obj:m`, `.__gc`);
        // codelens by its name, with the table as container.
        // and C++'s operators with a space (`operator []`).
        let name = match ctags_lang {
            "Lua" => name
                .rsplit(['.', ':'])
                .next()
                .unwrap_or_default()
                .to_string(),
            "C++" => name.replace("operator ", "operator"),
            _ => name,
        };
        tags.push(Tag {
            rel: PathBuf::from(field("path")),
            name,
            line: value["line"].as_u64().unwrap_or(0) as u32,
            kind,
        });
    }
    tags
}

/// Tags that are ctags' misreadings rather than definitions, left out of the reference
/// (each rule is a pattern seen in the misses, checked by hand):
/// - a name that is no identifier (`tags=`, `<close>`, `1]`, `{__gc`): a parse slip,
///   except for Ruby (`name=` is a real method) and C++ operators;
/// - JavaScript "classes" on a line without `class`: object literals (`const a = {`);
/// - PHP variables on an indented line that declares no property (no `public`,
///   `private`, `protected`, `var`, `static`): assignments inside closures and methods;
/// - Kotlin methods on a line without `fun` and properties on one without `val`/`var`:
///   lambda parameters (`{ sink ->`) and locals;
/// - Lua functions passed as an argument (`x = f(function () … end)`): x is the call's
///   result.
fn is_noise(ctags_lang: &str, kind: &str, name: &str, pattern: &str, scope_kind: &str) -> bool {
    let identifier_like = !name.contains(['=', '<', '>', '[', ']', '{', '}', '(', ')', ' ']);
    let line = pattern.trim_start_matches("/^");
    match ctags_lang {
        "Ruby" => false,
        "C++" if name.starts_with("operator") => false,
        "JavaScript" if kind == "class" && !line.contains("class") => true,
        "PHP" if kind == "variable" => {
            let declared = ["public ", "private ", "protected ", "var ", "static "]
                .iter()
                .any(|word| line.contains(word));
            line.starts_with([' ', '\t']) && !declared && scope_kind != "function"
        }
        // A Kotlin method is declared with `fun`, a property with `val`/`var`: other
        // lines are lambda parameters (`{ sink ->`) and locals.
        "Kotlin" if kind == "method" => !line.contains("fun "),
        "Kotlin" if kind == "constant" || kind == "variable" => {
            !(line.contains("val ") || line.contains("var "))
        }
        // `x = f(function () … end)`: the function is an argument, x the call's result.
        "Lua" => {
            let value = line.split_once('=').map_or("", |(_, v)| v);
            let before_function = value.split("function").next().unwrap_or("");
            !identifier_like || before_function.contains('(')
        }
        _ => !identifier_like,
    }
}

/// `codelens init` beside `ctags -R` on each language's files (copied to a directory
/// of their own), interleaved, the median of three runs each.
fn throughput(by_lang: &BTreeMap<Lang, Vec<SourceFile>>) {
    // Outside any git repository (the target directory is inside this one, whose
    // root `init` would index instead).
    let work = std::env::temp_dir().join(format!(
        "codelens-symbols-throughput-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&work);
    println!(
        "\ninit throughput per language (median of 3, interleaved with ctags -R on the same files)"
    );
    println!(
        "{:<11} {:>6} {:>8} {:>10} {:>10} {:>9} {:>10} {:>10} {:>7}",
        "language", "files", "MB", "init", "files/s", "MB/s", "ctags -R", "MB/s", "ratio"
    );
    let all = work.join("all");
    for (lang, files) in by_lang {
        let dir = work.join(lang.name());
        for file in files {
            for target in [dir.join(&file.rel), all.join(&file.rel)] {
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::copy(&file.path, &target).unwrap();
            }
        }
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        let (ours, ctags) = measure(&dir);
        print_row(lang.name(), files.len(), bytes, ours, ctags);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let (ours, ctags) = measure(&all);
    let files: usize = by_lang.values().map(Vec::len).sum();
    let bytes: u64 = by_lang.values().flatten().map(|f| f.size).sum();
    print_row("all", files, bytes, ours, ctags);
    let _ = std::fs::remove_dir_all(&work);
}

fn measure(dir: &Path) -> (Duration, Duration) {
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for _ in 0..3 {
        let _ = std::fs::remove_dir_all(dir.join(".codelens"));
        ours.push(run(dir, BIN, &["init", "-q"]));
        theirs.push(run(dir, "ctags", &["-R", "-f", "/dev/null", "."]));
    }
    ours.sort();
    theirs.sort();
    let _ = std::fs::remove_dir_all(dir.join(".codelens"));
    (ours[1], theirs[1])
}

fn print_row(name: &str, files: usize, bytes: u64, ours: Duration, ctags: Duration) {
    let mb = bytes as f64 / 1e6;
    let rate = |d: Duration| files as f64 / d.as_secs_f64();
    println!(
        "{:<11} {:>6} {:>8.1} {:>8.0}ms {:>10.0} {:>9.1} {:>8.0}ms {:>10.1} {:>6.2}×",
        name,
        files,
        mb,
        ours.as_secs_f64() * 1e3,
        rate(ours),
        mb / ours.as_secs_f64(),
        ctags.as_secs_f64() * 1e3,
        mb / ctags.as_secs_f64(),
        ours.as_secs_f64() / ctags.as_secs_f64()
    );
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        status.success(),
        "{program} {args:?} failed in {}",
        dir.display()
    );
    started.elapsed()
}

fn ctags_available() -> bool {
    Command::new("ctags")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Universal Ctags"))
}

fn ctags_version() -> String {
    Command::new("ctags")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default()
}
