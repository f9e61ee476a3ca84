//! The progress bar `init` and `sync` draw on a terminal, from the engine's counters.

use super::*;

/// The engine's progress counters, drawn as a bar on a terminal by a thread of its own
/// (hidden when quiet or not on a terminal); the bar goes when this is dropped.
pub(crate) struct ProgressView {
    pub(crate) progress: Progress,
    drawing: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

impl ProgressView {
    pub(crate) fn new(quiet: bool) -> ProgressView {
        let progress = Progress::new();
        if quiet || !std::io::stdout().is_terminal() || !std::io::stderr().is_terminal() {
            return ProgressView {
                progress,
                drawing: None,
            };
        }
        let style = ProgressStyle::with_template(
            "{spinner} {msg:10} {bar:30} {human_pos}/{human_len} files  {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::new(0).with_style(style);
        let (stop, stopped) = std::sync::mpsc::channel();
        let counters = progress.clone();
        let thread = std::thread::spawn(move || {
            let tick = std::time::Duration::from_millis(120);
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                bar.set_length(counters.length());
                bar.set_position(counters.position());
                bar.set_message(counters.stage().label());
                bar.tick();
            }
            bar.finish_and_clear();
        });
        ProgressView {
            progress,
            drawing: Some((stop, thread)),
        }
    }

    /// Clears the bar (before printing a summary).
    pub(crate) fn finish(&mut self) {
        if let Some((stop, thread)) = self.drawing.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

impl Drop for ProgressView {
    fn drop(&mut self) {
        self.finish();
    }
}
