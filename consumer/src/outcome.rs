//! Which way each message of a batch goes once its requests have ended: posted
//! (delete it), parked (already in the DLQ; delete it) or failed (leave it to
//! come back). Pure, so "every message ends in exactly one place" is testable.

use sfn_mackerel_message::{Rejection, SetAsideReason};

use crate::delivery::ChunkOutcome;

/// What should happen to a message before parking was tried.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition {
    /// All of its values were accepted.
    Posted,
    /// It cannot be posted as it is: park it in the DLQ.
    Park(Rejection),
    /// Some value could not be delivered this time: let SQS deliver it again.
    Retry,
}

/// Where a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Posted,
    Parked(SetAsideReason),
    /// Reported as a batch item failure: it returns after its visibility timeout.
    Failed,
}

impl Fate {
    /// Whether the message leaves the source queue.
    pub fn is_done(self) -> bool {
        !matches!(self, Fate::Failed)
    }
}

/// Combines decode rejections and request outcomes into one disposition per
/// message. A message whose values went out in several requests is only posted
/// if every one of them was delivered; a permanent refusal outweighs a
/// transient one (retrying cannot fix it, and the DLQ keeps the reason).
pub fn dispositions(
    message_count: usize,
    rejected: Vec<(usize, Rejection)>,
    requests: &[(Vec<usize>, ChunkOutcome)],
) -> Vec<Disposition> {
    let mut result = vec![Disposition::Posted; message_count];
    for (position, rejection) in rejected {
        result[position] = Disposition::Park(rejection);
    }
    for (sources, outcome) in requests {
        for &position in sources {
            let slot = &mut result[position];
            match outcome {
                ChunkOutcome::Delivered => {}
                ChunkOutcome::GaveUp { .. } => {
                    if *slot == Disposition::Posted {
                        *slot = Disposition::Retry;
                    }
                }
                refused => {
                    if let Some((reason, detail)) = refused.parking_reason() {
                        if !matches!(slot, Disposition::Park(_)) {
                            *slot = Disposition::Park(Rejection::new(reason, detail));
                        }
                    }
                }
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gave_up() -> ChunkOutcome {
        ChunkOutcome::GaveUp {
            detail: "503".into(),
        }
    }

    fn unknown_service() -> ChunkOutcome {
        ChunkOutcome::Permanent {
            reason: SetAsideReason::UnknownService,
            detail: "404".into(),
        }
    }

    #[test]
    fn delivered_values_mean_posted() {
        let result = dispositions(2, vec![], &[(vec![0, 1], ChunkOutcome::Delivered)]);
        assert_eq!(result, vec![Disposition::Posted, Disposition::Posted]);
    }

    #[test]
    fn a_message_split_over_a_failed_and_a_delivered_request_is_retried() {
        let result = dispositions(
            2,
            vec![],
            &[(vec![0, 1], ChunkOutcome::Delivered), (vec![1], gave_up())],
        );
        assert_eq!(result, vec![Disposition::Posted, Disposition::Retry]);
    }

    #[test]
    fn rejected_messages_are_parked_with_their_reason() {
        let rejection = Rejection::new(SetAsideReason::MalformedJson, "not JSON");
        let result = dispositions(
            2,
            vec![(0, rejection.clone())],
            &[(vec![1], ChunkOutcome::Delivered)],
        );
        assert_eq!(
            result,
            vec![Disposition::Park(rejection), Disposition::Posted]
        );
    }

    #[test]
    fn a_permanent_refusal_outweighs_a_transient_one() {
        let result = dispositions(
            1,
            vec![],
            &[(vec![0], gave_up()), (vec![0], unknown_service())],
        );
        assert!(
            matches!(&result[0], Disposition::Park(r) if r.reason == SetAsideReason::UnknownService)
        );
        let result = dispositions(
            1,
            vec![],
            &[(vec![0], unknown_service()), (vec![0], gave_up())],
        );
        assert!(
            matches!(&result[0], Disposition::Park(r) if r.reason == SetAsideReason::UnknownService)
        );
    }
}
