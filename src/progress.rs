//! Progress bars for `ramtid train`: the core reports stages and work done through
//! [`ramtid_core::progress::Progress`]; these bars draw it on stderr, only when stderr is a
//! terminal, so logs and CI output stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ramtid_core::progress::{Progress, Stage};
use std::io::IsTerminal;

/// One bar, restyled for each stage.
pub struct Bars {
    bar: ProgressBar,
}

impl Bars {
    /// Bars on stderr when it is a terminal; hidden otherwise.
    pub fn on_terminal() -> Bars {
        let bar = ProgressBar::hidden();
        if std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
        Bars { bar }
    }

    /// Clears the bar (the run has ended, well or not).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
}

impl Progress for Bars {
    fn stage(&self, stage: Stage, total: Option<u64>) {
        let (template, message) = match stage {
            Stage::Reading => (
                "{msg:>18} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
                "reading visits",
            ),
            Stage::Fitting => ("{msg:>18} [{bar:30}] {pos}/{len} {elapsed}", "fitting"),
            Stage::Writing => ("{msg:>18} {spinner}", "writing"),
        };
        self.bar.set_style(style(template));
        self.bar.set_message(message);
        self.bar.set_position(0);
        match total {
            Some(n) => self.bar.set_length(n),
            None => self.bar.unset_length(),
        }
    }

    fn advance(&self, done: u64) {
        self.bar.inc(done);
    }
}
