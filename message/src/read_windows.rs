//! How to read a series back from Mackerel at one-minute resolution: Mackerel
//! answers a longer span with coarser, averaged points (the read API's
//! granularity follows the span between `from` and `to`), so a span is read in
//! windows of at most six hours. Shared by the consumer's status reads and the
//! CLI's `verify`.

/// The longest span read in one request.
pub const MAX_WINDOW_SECONDS: i64 = 6 * 3600;

/// `from..=to` (epoch seconds) cut into windows of at most
/// [`MAX_WINDOW_SECONDS`], in order; none when `from > to`.
pub fn read_windows(from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut windows = Vec::new();
    let mut start = from;
    // Bounded by the span: each turn moves `start` on by a whole window.
    while start <= to {
        let end = start.saturating_add(MAX_WINDOW_SECONDS - 1).min(to);
        windows.push((start, end));
        if end == i64::MAX {
            break;
        }
        start = end + 1;
    }
    windows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_span_is_one_window() {
        assert_eq!(read_windows(60, 600), vec![(60, 600)]);
    }

    #[test]
    fn a_day_is_four_windows_that_cover_it_without_overlap() {
        let windows = read_windows(0, 86_399);
        assert_eq!(windows.len(), 4);
        assert_eq!(windows[0], (0, MAX_WINDOW_SECONDS - 1));
        assert_eq!(windows[3].1, 86_399);
        assert!(windows.windows(2).all(|w| w[1].0 == w[0].1 + 1));
    }

    #[test]
    fn an_empty_or_absurd_span_ends() {
        assert!(read_windows(10, 9).is_empty());
        assert_eq!(read_windows(i64::MAX - 5, i64::MAX).len(), 1);
    }
}
