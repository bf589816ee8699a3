//! Posting one service's values: its request bodies in order, a refusal that
//! holds for the whole service (unknown service, refused key, a redirect) applied
//! to the rest without asking again, and a request whose values Mackerel refuses
//! split in halves, unit by unit, until the refused values are found, so one bad
//! value never parks its neighbours. Bounded by the retry policy's deadline:
//! what is still unresolved then goes back to the queue.

use std::collections::VecDeque;

use crate::api_key::KeyStore;
use crate::chunking::{body_of_units, Chunk};
use crate::delivery::{deliver, ChunkOutcome, RetryPolicy, Transport, TryCount};
use crate::grouping::ServicePoints;

/// How one request body ended, with the messages it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct SentChunk {
    pub sources: Vec<usize>,
    pub outcome: ChunkOutcome,
    pub values: usize,
    /// The units it carried whole (see [`Chunk::units`]).
    pub units: Vec<usize>,
}

/// What posting one service did: the final outcome of every body (a split body
/// counts through its halves) and what all tries cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceDelivery {
    pub chunks: Vec<SentChunk>,
    pub count: TryCount,
}

/// Posts `chunks` (the packing of `points`) in order.
pub async fn post_service(
    transport: &impl Transport,
    keys: &KeyStore,
    generation: u64,
    points: &ServicePoints<'_>,
    chunks: Vec<Chunk>,
    policy: &RetryPolicy,
) -> ServiceDelivery {
    let mut delivery = ServiceDelivery::default();
    let mut service_refusal: Option<ChunkOutcome> = None;
    let mut pending: VecDeque<Chunk> = chunks.into();
    // Each split turns a body of n units into two of fewer, so there are at most
    // 2 x units + bodies turns; the bound only guards against a mistake.
    let turns = 2 * points.units.len() + pending.len() + 1;
    for _ in 0..turns {
        let Some(chunk) = pending.pop_front() else {
            break;
        };
        let outcome = match &service_refusal {
            Some(refusal) => refusal.clone(),
            None => {
                let (outcome, count) = deliver(
                    transport,
                    keys,
                    generation,
                    points.service,
                    &chunk.body,
                    policy,
                )
                .await;
                delivery.count.requests += count.requests;
                delivery.count.retries += count.retries;
                outcome
            }
        };
        if matches!(outcome, ChunkOutcome::RefusedContent { .. }) && chunk.units.len() > 1 {
            let (first, second) = chunk.units.split_at(chunk.units.len() / 2);
            pending.push_front(body_of_units(&points.units, second));
            pending.push_front(body_of_units(&points.units, first));
            continue;
        }
        if outcome.holds_for_the_service() {
            service_refusal = Some(outcome.clone());
        }
        delivery.chunks.push(SentChunk {
            sources: chunk.sources,
            values: chunk.values,
            units: chunk.units,
            outcome,
        });
    }
    // Anything left (only after a mistake in the bound) returns to the queue.
    for chunk in pending {
        delivery.chunks.push(SentChunk {
            sources: chunk.sources,
            values: chunk.values,
            units: chunk.units,
            outcome: ChunkOutcome::GaveUp {
                detail: "not posted: the split of a refused request did not finish".to_owned(),
            },
        });
    }
    delivery
}
