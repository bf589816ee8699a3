//! Splitting one service's points into as few tsdb request bodies as possible,
//! each under a byte budget: Mackerel's proxy refuses large bodies and prefers
//! "separated medium requests".

use std::io::Write;

use crate::grouping::Point;

/// One request body and the batch positions of the messages whose values it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// A JSON array of `{"name", "time", "value"}`.
    pub body: Vec<u8>,
    pub sources: Vec<usize>,
    pub values: usize,
}

/// Packs points in order into bodies of at most `max_bytes` (a single point
/// larger than that still gets a body of its own).
pub fn chunk(points: &[Point<'_>], max_bytes: usize) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut body = Vec::with_capacity(max_bytes.min(64 * 1024));
    let mut sources: Vec<usize> = Vec::new();
    let mut values = 0;
    let mut element = Vec::with_capacity(128);
    for point in points {
        element.clear();
        write_point(&mut element, point);
        // `[` or `,` before the element and `]` after it.
        if values > 0 && body.len() + 1 + element.len() + 1 > max_bytes {
            chunks.push(finish(&mut body, &mut sources, &mut values));
        }
        body.push(if values == 0 { b'[' } else { b',' });
        body.extend_from_slice(&element);
        sources.extend_from_slice(&point.sources);
        values += 1;
    }
    if values > 0 {
        chunks.push(finish(&mut body, &mut sources, &mut values));
    }
    chunks
}

fn finish(body: &mut Vec<u8>, sources: &mut Vec<usize>, values: &mut usize) -> Chunk {
    body.push(b']');
    let mut ids = std::mem::take(sources);
    ids.sort_unstable();
    ids.dedup();
    let chunk = Chunk {
        body: std::mem::take(body),
        sources: ids,
        values: *values,
    };
    *values = 0;
    chunk
}

fn write_point(out: &mut Vec<u8>, point: &Point<'_>) {
    out.extend_from_slice(b"{\"name\":");
    // Names are validated to [a-zA-Z0-9._-]+, but escape anyway: the body must stay JSON.
    serde_json::to_writer(&mut *out, point.name).expect("writing to a Vec cannot fail");
    let _ = write!(out, ",\"time\":{},\"value\":", point.time);
    serde_json::to_writer(&mut *out, &point.value).expect("writing to a Vec cannot fail");
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(name: &str, source: usize) -> Point<'_> {
        Point {
            name,
            time: 1_795_981_423,
            value: 1.5,
            sources: vec![source],
        }
    }

    #[test]
    fn a_body_is_the_json_array_mackerel_expects() {
        let chunks = chunk(&[point("a.b", 0), point("c", 1)], 65_536);
        assert_eq!(chunks.len(), 1);
        let body: serde_json::Value = serde_json::from_slice(&chunks[0].body).unwrap();
        assert_eq!(
            body,
            serde_json::json!([
                {"name": "a.b", "time": 1_795_981_423, "value": 1.5},
                {"name": "c", "time": 1_795_981_423, "value": 1.5}
            ])
        );
        assert_eq!(chunks[0].sources, vec![0, 1]);
    }

    #[test]
    fn bodies_stay_under_the_budget_and_keep_every_point() {
        let names: Vec<String> = (0..500).map(|i| format!("job.{i:04}.failed")).collect();
        let points: Vec<Point> = names.iter().enumerate().map(|(i, n)| point(n, i)).collect();
        let chunks = chunk(&points, 2_000);
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.body.len() <= 2_000));
        let total: usize = chunks.iter().map(|c| c.values).sum();
        assert_eq!(total, 500);
        let parsed: usize = chunks
            .iter()
            .map(|c| {
                serde_json::from_slice::<Vec<serde_json::Value>>(&c.body)
                    .unwrap()
                    .len()
            })
            .sum();
        assert_eq!(parsed, 500);
    }

    #[test]
    fn a_message_split_over_two_bodies_is_listed_in_both() {
        let names: Vec<String> = (0..40).map(|i| format!("job.{i:04}.seconds")).collect();
        let points: Vec<Point> = names.iter().map(|n| point(n, 7)).collect();
        let chunks = chunk(&points, 1_000);
        assert!(chunks.len() >= 2);
        assert!(chunks.iter().all(|c| c.sources == vec![7]));
    }

    #[test]
    fn an_oversized_point_gets_a_body_of_its_own() {
        let long = "x".repeat(300);
        let chunks = chunk(&[point("a", 0), point(&long, 1), point("b", 2)], 100);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[1].sources, vec![1]);
    }

    #[test]
    fn no_points_no_requests() {
        assert!(chunk(&[], 1_000).is_empty());
    }
}
