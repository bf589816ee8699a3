//! Looking a queue up: which queues use it as their dead-letter queue.

use aws_sdk_sqs::error::SdkError;
use aws_sdk_sqs::operation::list_dead_letter_source_queues::ListDeadLetterSourceQueuesError;

/// Pages of ListDeadLetterSourceQueues read at most (1,000 queues each).
const MAX_PAGES: usize = 100;

/// The error of a ListDeadLetterSourceQueues call.
pub type ListSourcesError =
    SdkError<ListDeadLetterSourceQueuesError, aws_sdk_sqs::config::http::HttpResponse>;

/// The URLs of the queues whose redrive policy names `dlq_url` as their
/// dead-letter queue: empty when `dlq_url` is nobody's DLQ.
pub async fn dead_letter_sources(
    client: &aws_sdk_sqs::Client,
    dlq_url: &str,
) -> Result<Vec<String>, ListSourcesError> {
    let mut urls = Vec::new();
    let mut next_token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .list_dead_letter_source_queues()
            .queue_url(dlq_url)
            .set_next_token(next_token.take())
            .send()
            .await?;
        urls.extend(page.queue_urls().iter().cloned());
        match page.next_token() {
            Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
            _ => break,
        }
    }
    Ok(urls)
}
