//! The SQS event as Lambda's event source mapping hands it to the function
//! (<https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html>): what the
//! consumer reads, and what `sfn-mackerel send --sqs-event` writes for trying
//! the function under `cargo lambda invoke --data-file`. Pure: times are given.

/// The queue an event's records come from.
pub struct EventSource<'a> {
    /// e.g. `arn:aws:sqs:us-east-1:123456789012:results`.
    pub queue_arn: &'a str,
    pub region: &'a str,
}

/// The ARN and region of a queue from its URL
/// (`https://sqs.<region>.amazonaws.com/<account>/<name>`; a local endpoint such
/// as moto's `http://127.0.0.1:5000/<account>/<name>` gives `us-east-1`).
pub fn queue_arn_of(queue_url: &str) -> (String, String) {
    let without_scheme = queue_url
        .split_once("://")
        .map_or(queue_url, |(_, rest)| rest);
    let mut parts = without_scheme.split('/').filter(|part| !part.is_empty());
    let host = parts.next().unwrap_or_default();
    let path: Vec<&str> = parts.collect();
    let region = host
        .strip_prefix("sqs.")
        .and_then(|rest| rest.split('.').next())
        .filter(|region| !region.is_empty())
        .unwrap_or("us-east-1");
    let (account, name) = match path.as_slice() {
        [.., account, name] => (*account, *name),
        [name] => ("123456789012", *name),
        [] => ("123456789012", "results"),
    };
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    (
        format!("arn:{partition}:sqs:{region}:{account}:{name}"),
        region.to_owned(),
    )
}

/// The event for `(message id, body)` records, sent at `sent_ms` and first
/// received at `received_ms` (epoch milliseconds).
pub fn lambda_sqs_event(
    records: &[(String, String)],
    sent_ms: u128,
    received_ms: u128,
    source: &EventSource<'_>,
) -> String {
    let records: Vec<serde_json::Value> = records
        .iter()
        .map(|(id, body)| {
            serde_json::json!({
                "messageId": id,
                "receiptHandle": format!("AQEB{id}"),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": sent_ms.to_string(),
                    "SenderId": "AROAEXAMPLE:states",
                    "ApproximateFirstReceiveTimestamp": received_ms.to_string(),
                },
                "messageAttributes": {},
                "md5OfBody": format!("{:x}", md5_placeholder(body)),
                "eventSource": "aws:sqs",
                "eventSourceARN": source.queue_arn,
                "awsRegion": source.region,
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

/// The consumer never checks `md5OfBody`; a stable stand-in keeps the field's shape.
fn md5_placeholder(body: &str) -> u128 {
    body.bytes().fold(
        0x6c62_272e_07bb_0142_62b8_2175_6295_c58d_u128,
        |hash, byte| {
            (hash ^ u128::from(byte)).wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_url_gives_its_arn_and_region() {
        assert_eq!(
            queue_arn_of(
                "https://sqs.ap-northeast-1.amazonaws.com/123456789012/sfn-mackerel-results"
            ),
            (
                "arn:aws:sqs:ap-northeast-1:123456789012:sfn-mackerel-results".to_owned(),
                "ap-northeast-1".to_owned()
            )
        );
        assert_eq!(
            queue_arn_of("http://127.0.0.1:5000/000000000000/results").0,
            "arn:aws:sqs:us-east-1:000000000000:results"
        );
        assert_eq!(
            queue_arn_of("").0,
            "arn:aws:sqs:us-east-1:123456789012:results"
        );
    }

    #[test]
    fn each_record_carries_its_id_body_and_sent_time() {
        let event = lambda_sqs_event(
            &[("m-1".into(), "{\"a\":1}".into())],
            1_795_981_423_000,
            1_795_981_424_000,
            &EventSource {
                queue_arn: "arn:aws:sqs:us-east-1:123456789012:results",
                region: "us-east-1",
            },
        );
        let parsed: serde_json::Value = serde_json::from_str(&event).unwrap();
        let record = &parsed["Records"][0];
        assert_eq!(record["messageId"], "m-1");
        assert_eq!(record["body"], "{\"a\":1}");
        assert_eq!(record["attributes"]["SentTimestamp"], "1795981423000");
        assert_eq!(record["md5OfBody"].as_str().unwrap().len(), 32);
    }
}
