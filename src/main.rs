//! The `codelens` binary: see `cli/`.
#![allow(clippy::disallowed_methods)] // clippy.toml's containment rule is for the engine

mod cli;

/// tree-sitter and the walker allocate many small, short-lived objects on several
/// threads; mimalloc handles that pattern markedly faster than glibc's malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
