//! How results reach the operator: a JSON document on stdout for scripts
//! (`--json`), or aligned tables and sentences for people. Progress bars and
//! warnings go to stderr so that stdout stays parseable.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::exit;

/// A command's result: one type that serialises for `--json` and displays
/// for people, so the two can never disagree, and the exit code it deserves.
pub trait Report: serde::Serialize + std::fmt::Display {
    fn exit_code(&self) -> u8 {
        exit::OK
    }
}

/// What a command hands back: the machine-readable report, its human
/// rendering, and the exit code the result deserves, all from one [`Report`].
#[derive(Debug, Clone)]
pub struct Outcome {
    pub json: serde_json::Value,
    pub human: String,
    pub exit_code: u8,
}

impl Outcome {
    pub fn of(report: &impl Report) -> Self {
        Self {
            json: serde_json::to_value(report).unwrap_or_else(
                |error| serde_json::json!({"error": format!("the report does not serialise: {error}")}),
            ),
            human: report.to_string(),
            exit_code: report.exit_code(),
        }
    }
}

/// A plain text table with left-aligned columns.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        self.rows.push(cells);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines of text, columns separated by two spaces.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let mut text = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map(String::as_str).unwrap_or("");
                if i + 1 == columns {
                    text.push_str(cell);
                } else {
                    text.push_str(&format!("{cell:<width$}  "));
                }
            }
            text.trim_end().to_owned()
        };
        let mut out = vec![line(&self.headers)];
        out.extend(self.rows.iter().map(|row| line(row)));
        out.join("\n")
    }
}

/// A progress bar on stderr, hidden in `--json` mode and when stderr is not a terminal.
pub fn progress_bar(length: Option<u64>, show: bool, template: &str) -> ProgressBar {
    let bar = match length {
        Some(length) => ProgressBar::new(length),
        None => ProgressBar::new_spinner(),
    };
    if show {
        bar.set_draw_target(ProgressDrawTarget::stderr());
    } else {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// A warning for the operator on stderr (kept out of `--json` stdout).
pub fn warn(message: &str) {
    eprintln!("warning: {message}");
}

/// A note about what the command is doing, on stderr.
pub fn note(message: &str) {
    eprintln!("{message}");
}

/// Shortens a body for display: at most `max` characters, on one line.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// A duration in seconds as a short human text (`42s`, `5m 3s`, `26h 4m`).
pub fn age_text(seconds: i64) -> String {
    let seconds = seconds.max(0);
    if seconds < 60 {
        format!("{seconds}s")
    } else if seconds < 3600 {
        format!("{}m {}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h {}m", seconds / 3600, (seconds % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_to_the_widest_cell() {
        let mut table = Table::new(&["reason", "count"]);
        table.row(vec!["unknown_service".into(), "3".into()]);
        table.row(vec!["too_old".into(), "120".into()]);
        assert_eq!(
            table.render(),
            "reason           count\nunknown_service  3\ntoo_old          120"
        );
    }

    #[test]
    fn long_bodies_are_cut_on_one_line() {
        assert_eq!(shorten("ab\ncd", 10), "ab cd");
        assert_eq!(shorten("abcdefgh", 5), "abcd…");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age_text(42), "42s");
        assert_eq!(age_text(303), "5m 3s");
        assert_eq!(age_text(26 * 3600 + 240), "26h 4m");
    }
}
