//! The human view at `GET /`: services, a line graph per metric (inline SVG),
//! monitors and open alerts, self-refreshing and without external assets.

use std::fmt::Write;

use crate::monitors::Status;
use crate::snapshot::Snapshot;
use crate::store::Point;

const GRAPH_WIDTH: f64 = 640.0;
const GRAPH_HEIGHT: f64 = 160.0;
const GRAPH_PADDING: f64 = 8.0;
/// Graphs show at most this many of a series' newest points.
const MAX_POINTS_DRAWN: usize = 1440;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// `HH:MM` UTC of an epoch time.
fn clock(time: i64) -> String {
    let seconds = time.rem_euclid(86_400);
    format!("{:02}:{:02}", seconds / 3600, (seconds % 3600) / 60)
}

fn status_label(status: Status) -> &'static str {
    match status {
        Status::Ok => "OK",
        Status::Warning => "WARNING",
        Status::Critical => "CRITICAL",
    }
}

/// An SVG line graph of points (oldest first).
pub fn line_graph(points: &[Point]) -> String {
    let points = &points[points.len().saturating_sub(MAX_POINTS_DRAWN)..];
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return String::from("<p>no points</p>");
    };
    let (min, max) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.value), hi.max(p.value))
        });
    let value_span = if max > min { max - min } else { 1.0 };
    let time_span = (last.time - first.time).max(1) as f64;
    let inner_w = GRAPH_WIDTH - 2.0 * GRAPH_PADDING;
    let inner_h = GRAPH_HEIGHT - 2.0 * GRAPH_PADDING;
    let x = |t: i64| GRAPH_PADDING + (t - first.time) as f64 / time_span * inner_w;
    let y = |v: f64| GRAPH_PADDING + inner_h - (v - min) / value_span * inner_h;
    let mut coordinates = String::new();
    for p in points {
        let _ = write!(coordinates, "{:.1},{:.1} ", x(p.time), y(p.value));
    }
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{GRAPH_WIDTH}\" height=\"{GRAPH_HEIGHT}\" \
         viewBox=\"0 0 {GRAPH_WIDTH} {GRAPH_HEIGHT}\" role=\"img\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#fafafa\" stroke=\"#ccc\"/>\
         <polyline fill=\"none\" stroke=\"#2a7ae2\" stroke-width=\"2\" points=\"{}\"/>",
        coordinates.trim_end()
    );
    for p in points {
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"#2a7ae2\"><title>{} {}</title></circle>",
            x(p.time),
            y(p.value),
            clock(p.time),
            escape(&p.value.to_string())
        );
    }
    svg.push_str("</svg>");
    let _ = write!(
        svg,
        "<div class=\"axis\">{} → {} UTC · min {} · max {} · latest {} · {} point(s)</div>",
        clock(first.time),
        clock(last.time),
        escape(&min.to_string()),
        escape(&max.to_string()),
        escape(&last.value.to_string()),
        points.len()
    );
    svg
}

/// The whole page.
pub fn render(snapshot: &Snapshot) -> String {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"5\">\
         <title>Mackerel stand-in</title><style>\
         body{font-family:sans-serif;margin:1.5em;color:#222}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}\
         .CRITICAL{color:#fff;background:#d33}.WARNING{background:#fc3}.OK{background:#6c6}\
         .axis{font-size:.8em;color:#555;margin-bottom:1em}\
         </style></head><body><h1>Mackerel stand-in</h1>\
         <p>What would have reached Mackerel. Refreshes every 5 seconds.</p>",
    );

    let open: Vec<_> = snapshot
        .monitoring
        .alerts()
        .iter()
        .filter(|a| a.is_open())
        .collect();
    let _ = write!(html, "<h2>Open alerts ({})</h2>", open.len());
    if open.is_empty() {
        html.push_str("<p>none</p>");
    } else {
        html.push_str("<table><tr><th>status</th><th>monitor</th><th>value</th><th>message</th><th>opened (UTC)</th></tr>");
        for alert in open {
            let monitor_name = snapshot
                .monitoring
                .monitor(&alert.monitor_id)
                .map(|m| m.name.as_str())
                .unwrap_or(alert.monitor_id.as_str());
            let _ =
                write!(
                html,
                "<tr><td class=\"{s}\">{s}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(monitor_name),
                alert.value.map(|v| escape(&v.to_string())).unwrap_or_default(),
                escape(&alert.message),
                clock(alert.opened_at),
                s = status_label(alert.status),
            );
        }
        html.push_str("</table>");
    }

    let _ = write!(
        html,
        "<h2>Monitors ({})</h2>",
        snapshot.monitoring.monitors().len()
    );
    if snapshot.monitoring.monitors().is_empty() {
        html.push_str("<p>none</p>");
    } else {
        html.push_str(
            "<table><tr><th>status</th><th>name</th><th>service / metric</th><th>rule</th></tr>",
        );
        for monitor in snapshot.monitoring.monitors() {
            let status = snapshot
                .monitoring
                .state(&monitor.id)
                .map(|s| s.status())
                .unwrap_or_default();
            let operator = match monitor.operator {
                crate::validation::Operator::Greater => ">",
                crate::validation::Operator::Less => "<",
            };
            let threshold = |t: Option<f64>| t.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
            let mut rule = format!(
                "avg of latest {} {} warning {} / critical {}",
                monitor.duration,
                operator,
                threshold(monitor.warning),
                threshold(monitor.critical)
            );
            if let Some(m) = monitor.missing_duration_warning {
                let _ = write!(rule, "; no data {m} min: warning");
            }
            if let Some(m) = monitor.missing_duration_critical {
                let _ = write!(rule, "; no data {m} min: critical");
            }
            let _ = write!(
                html,
                "<tr><td class=\"{s}\">{s}</td><td>{}</td><td>{} / {}</td><td>{}</td></tr>",
                escape(&monitor.name),
                escape(&monitor.service),
                escape(&monitor.metric),
                escape(&rule),
                s = status_label(status),
            );
        }
        html.push_str("</table>");
    }

    let _ = write!(html, "<h2>Services ({})</h2>", snapshot.services.len());
    for service in &snapshot.services {
        let _ = write!(html, "<h3>{}</h3>", escape(&service.name));
        if !service.memo.is_empty() {
            let _ = write!(html, "<p>{}</p>", escape(&service.memo));
        }
        if service.metrics.is_empty() {
            html.push_str("<p>no metrics yet</p>");
        }
        for metric in &service.metrics {
            let _ = write!(html, "<h4>{}</h4>", escape(&metric.name));
            html.push_str(&line_graph(&metric.points));
        }
    }
    html.push_str("</body></html>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{MetricSnapshot, ServiceSnapshot};

    #[test]
    fn interpolated_text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn the_page_refreshes_itself_and_loads_nothing_external() {
        let html = render(&Snapshot::default());
        assert!(html.contains("http-equiv=\"refresh\""));
        assert!(!html.contains("src="));
        assert!(!html.contains("<link"));
    }

    #[test]
    fn each_metric_gets_an_svg_line_graph() {
        let snapshot = Snapshot {
            services: vec![ServiceSnapshot {
                name: "ORG".into(),
                memo: String::new(),
                roles: vec![],
                metrics: vec![MetricSnapshot {
                    name: "job.etl.failed".into(),
                    points: vec![
                        Point {
                            time: 60,
                            value: 0.0,
                        },
                        Point {
                            time: 120,
                            value: 1.0,
                        },
                    ],
                }],
            }],
            ..Snapshot::default()
        };
        let html = render(&snapshot);
        assert!(html.contains("job.etl.failed"));
        assert_eq!(html.matches("<polyline").count(), 1);
    }

    #[test]
    fn a_single_point_graph_is_drawn_without_dividing_by_zero() {
        let svg = line_graph(&[Point {
            time: 60,
            value: 5.0,
        }]);
        assert!(!svg.contains("NaN"));
        assert!(!svg.contains("inf"));
    }
}
