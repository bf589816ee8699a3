//! Packing one service's points into as few tsdb request bodies as possible,
//! each under a byte budget (Mackerel's proxy refuses large bodies and prefers
//! "separated medium requests"), without ever cutting a unit of messages that
//! must be delivered together (see `grouping`), unless that unit alone exceeds
//! the budget.

use std::io::Write;
use std::ops::Range;

use crate::grouping::{Point, ServicePoints, Unit};

/// One request body and the batch positions of the messages whose values it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// A JSON array of `{"name", "time", "value"}`.
    pub body: Vec<u8>,
    pub sources: Vec<usize>,
    pub values: usize,
    /// The units it carries whole (indices into `ServicePoints::units`); empty
    /// when it carries part of a unit that alone exceeds the budget.
    pub units: Vec<usize>,
}

/// The bytes `[` and `]` add around a lone element.
const ARRAY_OVERHEAD: usize = 2;

/// The encoded size of one point, as it appears in a body.
pub fn point_bytes(point: &Point<'_>) -> usize {
    let mut element = Vec::with_capacity(64);
    write_point(&mut element, point);
    element.len()
}

/// Whether one point can be posted at all under `max_bytes` (alone in its body).
pub fn fits_alone(point: &Point<'_>, max_bytes: usize) -> bool {
    point_bytes(point) + ARRAY_OVERHEAD <= max_bytes
}

/// Packs a service's units, in order, into bodies of at most `max_bytes`. A run
/// of units sharing series stays in one body when it fits in one; a unit never
/// straddles two bodies unless it alone is larger than `max_bytes`.
pub fn pack(service: &ServicePoints<'_>, max_bytes: usize) -> Vec<Chunk> {
    let encoded = Encoded::of(&service.units);
    let mut packer = Packer::new(max_bytes, &encoded, &service.units);
    for group in &service.series_groups {
        let group_bytes: usize = group.clone().map(|u| encoded.unit_bytes(u)).sum();
        if !packer.fits(group_bytes) {
            packer.flush();
        }
        for unit in group.clone() {
            packer.add_unit(unit);
        }
    }
    packer.flush();
    packer.chunks
}

/// One body carrying exactly these whole units (used to split a refused request).
/// The units came from one body within the budget, so any subset fits too.
pub fn body_of_units(units: &[Unit<'_>], chosen: &[usize]) -> Chunk {
    let encoded = Encoded::of(units);
    let mut packer = Packer::new(usize::MAX, &encoded, units);
    for &unit in chosen {
        packer.add_unit(unit);
    }
    packer.flush();
    packer.chunks.pop().unwrap_or_else(|| Chunk {
        body: b"[]".to_vec(),
        sources: Vec::new(),
        values: 0,
        units: Vec::new(),
    })
}

/// Every point encoded once, so packing copies bytes instead of formatting twice.
struct Encoded {
    bytes: Vec<u8>,
    /// Per unit, the byte range of each of its points.
    points: Vec<Vec<Range<usize>>>,
}

impl Encoded {
    fn of(units: &[Unit<'_>]) -> Self {
        let mut bytes = Vec::new();
        let points = units
            .iter()
            .map(|unit| {
                unit.points
                    .iter()
                    .map(|point| {
                        let start = bytes.len();
                        write_point(&mut bytes, point);
                        start..bytes.len()
                    })
                    .collect()
            })
            .collect();
        Self { bytes, points }
    }

    /// Bytes the unit adds to a body: its elements and a separator each.
    fn unit_bytes(&self, unit: usize) -> usize {
        self.points[unit].iter().map(|r| r.len() + 1).sum()
    }
}

struct Packer<'e, 'u, 'a> {
    max_bytes: usize,
    encoded: &'e Encoded,
    units: &'u [Unit<'a>],
    body: Vec<u8>,
    sources: Vec<usize>,
    values: usize,
    whole_units: Vec<usize>,
    partial: bool,
    chunks: Vec<Chunk>,
}

impl<'e, 'u, 'a> Packer<'e, 'u, 'a> {
    fn new(max_bytes: usize, encoded: &'e Encoded, units: &'u [Unit<'a>]) -> Self {
        Self {
            max_bytes,
            encoded,
            units,
            body: Vec::new(),
            sources: Vec::new(),
            values: 0,
            whole_units: Vec::new(),
            partial: false,
            chunks: Vec::new(),
        }
    }

    /// Whether `bytes` more (elements with their `[` or `,`) and the closing
    /// `]` fit the open body.
    fn fits(&self, bytes: usize) -> bool {
        self.body.len().saturating_add(bytes).saturating_add(1) <= self.max_bytes
    }

    fn add_unit(&mut self, unit: usize) {
        let bytes = self.encoded.unit_bytes(unit);
        if !self.fits(bytes) {
            self.flush();
        }
        if self.fits(bytes) {
            for range in &self.encoded.points[unit] {
                self.push_element(range.clone());
            }
            self.sources.extend_from_slice(&self.units[unit].sources);
            self.whole_units.push(unit);
            return;
        }
        // Alone larger than a body: split at point boundaries, in time order;
        // each part lists the messages of the points it carries.
        let points = self.units[unit]
            .points
            .iter()
            .zip(&self.encoded.points[unit]);
        for (point, range) in points {
            if self.values > 0 && !self.fits(range.len() + 1) {
                self.partial = true;
                self.flush();
            }
            self.push_element(range.clone());
            self.sources.extend_from_slice(&point.sources);
        }
        self.partial = true;
        self.flush();
    }

    fn push_element(&mut self, range: Range<usize>) {
        self.body.push(if self.values == 0 { b'[' } else { b',' });
        self.body.extend_from_slice(&self.encoded.bytes[range]);
        self.values += 1;
    }

    fn flush(&mut self) {
        if self.values == 0 {
            return;
        }
        self.body.push(b']');
        let mut sources = std::mem::take(&mut self.sources);
        sources.sort_unstable();
        sources.dedup();
        let units = std::mem::take(&mut self.whole_units);
        self.chunks.push(Chunk {
            body: std::mem::take(&mut self.body),
            sources,
            values: self.values,
            units: if self.partial { Vec::new() } else { units },
        });
        self.values = 0;
        self.partial = false;
    }
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
    use crate::grouping::{group, MergeRule};
    use sfn_mackerel_message::{Decoded, MetricValue};

    const TIME: i64 = 1_795_981_423;

    fn messages(values: &[&[(&str, i64)]]) -> Vec<(usize, Decoded)> {
        values
            .iter()
            .enumerate()
            .map(|(position, values)| {
                (
                    position,
                    Decoded {
                        service: "svc".into(),
                        values: values
                            .iter()
                            .map(|(name, time)| MetricValue {
                                name: (*name).into(),
                                value: 1.5,
                                time: *time,
                            })
                            .collect(),
                        event_id: None,
                    },
                )
            })
            .collect()
    }

    fn parsed(chunk: &Chunk) -> Vec<serde_json::Value> {
        serde_json::from_slice(&chunk.body).unwrap()
    }

    #[test]
    fn a_body_is_the_json_array_mackerel_expects() {
        let batch = messages(&[&[("a.b", TIME)], &[("c", TIME)]]);
        let chunks = pack(&group(&batch, MergeRule::Max)[0], 65_536);
        assert_eq!(chunks.len(), 1);
        let mut body = parsed(&chunks[0]);
        body.sort_by_key(|v| v["name"].as_str().unwrap().to_owned());
        assert_eq!(
            body,
            vec![
                serde_json::json!({"name": "a.b", "time": TIME, "value": 1.5}),
                serde_json::json!({"name": "c", "time": TIME, "value": 1.5}),
            ]
        );
        assert_eq!(chunks[0].sources, vec![0, 1]);
    }

    #[test]
    fn bodies_stay_under_the_budget_and_keep_every_point() {
        let names: Vec<String> = (0..500).map(|i| format!("job.{i:04}.failed")).collect();
        let values: Vec<Vec<(&str, i64)>> =
            names.iter().map(|n| vec![(n.as_str(), TIME)]).collect();
        let refs: Vec<&[(&str, i64)]> = values.iter().map(Vec::as_slice).collect();
        let batch = messages(&refs);
        let chunks = pack(&group(&batch, MergeRule::Max)[0], 2_000);
        assert!(chunks.len() > 1);
        assert!(chunks.iter().all(|c| c.body.len() <= 2_000));
        assert_eq!(chunks.iter().map(|c| c.values).sum::<usize>(), 500);
        assert_eq!(chunks.iter().map(|c| parsed(c).len()).sum::<usize>(), 500);
    }

    #[test]
    fn messages_that_share_a_point_travel_in_one_body() {
        // Ten messages each sharing job.failed@TIME with the next one's other metric.
        let names: Vec<String> = (0..40).map(|i| format!("job.{i:04}.seconds")).collect();
        let mut values: Vec<Vec<(&str, i64)>> = Vec::new();
        for name in &names {
            values.push(vec![("shared.failed", TIME), (name.as_str(), TIME)]);
        }
        let refs: Vec<&[(&str, i64)]> = values.iter().map(Vec::as_slice).collect();
        let batch = messages(&refs);
        let service = &group(&batch, MergeRule::Max)[0];
        assert_eq!(service.units.len(), 1);
        let chunks = pack(service, 4_000);
        assert_eq!(chunks.len(), 1, "the unit fits one body, so it is not cut");
        assert_eq!(chunks[0].units, vec![0]);
    }

    #[test]
    fn a_unit_larger_than_a_body_is_split_and_each_part_lists_its_own_messages() {
        let names: Vec<String> = (0..40).map(|i| format!("job.{i:04}.seconds")).collect();
        let values: Vec<Vec<(&str, i64)>> = names
            .iter()
            .map(|name| vec![(name.as_str(), TIME), ("shared", TIME)])
            .collect();
        let refs: Vec<&[(&str, i64)]> = values.iter().map(Vec::as_slice).collect();
        let batch = messages(&refs);
        let service = &group(&batch, MergeRule::Max)[0];
        assert_eq!(service.units.len(), 1, "every message shares shared@TIME");
        let chunks = pack(service, 1_000);
        assert!(chunks.len() >= 2);
        assert!(chunks
            .iter()
            .all(|c| c.body.len() <= 1_000 && c.units.is_empty()));
        assert!(
            chunks[0].sources.len() < 40,
            "the first part lists only the messages of its own points: {:?}",
            chunks[0].sources
        );
    }

    #[test]
    fn a_subset_of_units_is_encoded_on_its_own() {
        let batch = messages(&[&[("a", TIME)], &[("b", TIME)], &[("c", TIME)]]);
        let service = &group(&batch, MergeRule::Max)[0];
        let chunk = body_of_units(&service.units, &[0, 2]);
        assert_eq!(chunk.units, vec![0, 2]);
        assert_eq!(parsed(&chunk).len(), 2);
    }

    #[test]
    fn a_point_fits_alone_only_within_the_budget() {
        let long = "x".repeat(2_000);
        let point = Point {
            name: &long,
            time: TIME,
            value: 1.0,
            sources: vec![0],
        };
        assert!(!fits_alone(&point, 1_024));
        assert!(fits_alone(&point, 4_096));
    }

    #[test]
    fn no_points_no_requests() {
        let batch: Vec<(usize, Decoded)> = Vec::new();
        assert!(group(&batch, MergeRule::Max).is_empty());
    }
}
