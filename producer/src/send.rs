//! `send`: one job result on the queue, built and validated the way the
//! consumer will read it, so a smoke test after a deploy tests the real path.

use std::fmt;
use std::io::Read;

use serde::Serialize;
use serde_json::json;
use sfn_mackerel_message::sqs_event::{lambda_sqs_event, queue_arn_of, EventSource};
use sfn_mackerel_message::timestamp::{format_epoch, parse_time, DEFAULT_MAX_FUTURE_SECONDS};
use sfn_mackerel_message::{decode, DecodeContext, Decoded, OutgoingMessage, TimeWindow};

use crate::aws::{sqs_error, Sqs};
use crate::cli::SendArgs;
use crate::clock::now_seconds;
use crate::error::CliError;
use crate::output::{Outcome, Report, Table};

/// Builds the body from the flags or reads it from the file / stdin. A value
/// from the flags is stamped `now` (epoch seconds) unless `--time` says when:
/// an explicit time survives any redrive, whatever SQS stamps a copy with.
pub fn body_from_args(args: &SendArgs, now: i64) -> Result<String, CliError> {
    if let Some(path) = &args.file {
        let mut text = String::new();
        if path.as_os_str() == "-" {
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| CliError::usage(format!("cannot read the body from stdin: {e}")))?;
        } else {
            text = std::fs::read_to_string(path).map_err(|e| {
                CliError::usage(format!("cannot read the body from {}: {e}", path.display()))
            })?;
        }
        let text = text.trim().to_owned();
        if text.is_empty() {
            return Err(CliError::usage(
                "the body is empty: put one JSON message in the file",
            ));
        }
        return Ok(text);
    }
    let (Some(service), Some(name), Some(value)) = (&args.service, &args.name, args.value) else {
        return Err(CliError::usage(
            "give --service, --name and --value, or a body with --file",
        ));
    };
    if !value.is_finite() {
        return Err(CliError::usage("--value must be a finite number"));
    }
    let time = match &args.time {
        None => Some(format_epoch(now)),
        Some(text) => {
            let as_json = match text.parse::<i64>() {
                Ok(seconds) => json!(seconds),
                Err(_) => json!(text),
            };
            let seconds =
                parse_time(&as_json).map_err(|why| CliError::usage(format!("--time: {why}")))?;
            Some(if text.parse::<i64>().is_ok() {
                format_epoch(seconds)
            } else {
                text.clone()
            })
        }
    };
    Ok(OutgoingMessage::single(service, name, value, time).to_body())
}

/// Decodes the body as the consumer would if SQS received it now.
pub fn validate(body: &str, now: i64) -> Result<Decoded, sfn_mackerel_message::Rejection> {
    decode(
        body,
        &DecodeContext {
            sent_at: Some(now),
            window: TimeWindow::around(now, DEFAULT_MAX_FUTURE_SECONDS),
        },
    )
}

/// Runs `send`.
pub async fn run(sqs: &Sqs, args: &SendArgs) -> Result<Outcome, CliError> {
    let now = now_seconds();
    let body = body_from_args(args, now)?;
    let decoded = match validate(&body, now) {
        Ok(decoded) => Some(decoded),
        Err(rejection) if args.allow_invalid => {
            crate::output::warn(&format!(
                "the consumer will set this message aside as {}: {} (sending anyway: --allow-invalid)",
                rejection.reason, rejection.detail
            ));
            None
        }
        Err(rejection) => {
            return Err(CliError::usage(format!(
                "the consumer would set this message aside as {}: {}. Fix the body, or pass --allow-invalid to send it anyway",
                rejection.reason, rejection.detail
            )))
        }
    };
    if args.sqs_event {
        let (queue_arn, region) = queue_arn_of(&args.queue_url);
        let now_ms = u128::try_from(now).unwrap_or_default() * 1000;
        let event = lambda_sqs_event(
            &[(format!("sfn-mackerel-send-{now}"), body.clone())],
            now_ms,
            now_ms,
            &EventSource {
                queue_arn: &queue_arn,
                region: &region,
            },
        );
        let mut report = SendReport::of(args, body, decoded.as_ref(), None);
        report.sqs_event = Some(event);
        return Ok(Outcome::of(&report));
    }
    let message_id = if args.dry_run {
        None
    } else {
        let output = sqs
            .client
            .send_message()
            .queue_url(&args.queue_url)
            .message_body(&body)
            .send()
            .await
            .map_err(|e| sqs_error(sqs, e, "sending the message", &args.queue_url))?;
        Some(output.message_id().unwrap_or_default().to_owned())
    };
    Ok(Outcome::of(&SendReport::of(
        args,
        body,
        decoded.as_ref(),
        message_id,
    )))
}

/// One value of a sent message, as the consumer will read it.
#[derive(Debug, Clone, Serialize)]
pub struct SentValue {
    pub service: String,
    pub name: String,
    pub value: f64,
    /// Epoch seconds.
    pub time: i64,
}

/// What `send` sent, or would send.
#[derive(Debug, Clone, Serialize)]
pub struct SendReport {
    pub command: &'static str,
    pub dry_run: bool,
    pub queue_url: String,
    pub message_id: Option<String>,
    pub body: String,
    pub valid: bool,
    pub values: Vec<SentValue>,
    /// With `--sqs-event`: the event, printed alone (nothing was sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqs_event: Option<String>,
}

impl SendReport {
    pub fn of(
        args: &SendArgs,
        body: String,
        decoded: Option<&Decoded>,
        message_id: Option<String>,
    ) -> Self {
        let values = decoded
            .iter()
            .flat_map(|d| {
                d.values.iter().map(move |v| SentValue {
                    service: d.service.clone(),
                    name: v.name.clone(),
                    value: v.value,
                    time: v.time,
                })
            })
            .collect();
        Self {
            command: "send",
            dry_run: args.dry_run,
            queue_url: args.queue_url.clone(),
            message_id,
            body,
            valid: decoded.is_some(),
            values,
            sqs_event: None,
        }
    }
}

impl fmt::Display for SendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(event) = &self.sqs_event {
            // Alone, so that `> event.json` writes a file cargo lambda can read.
            return writeln!(f, "{event}");
        }
        match &self.message_id {
            Some(id) => writeln!(f, "sent message {id} to {}", self.queue_url)?,
            None => writeln!(f, "dry run: nothing sent")?,
        }
        writeln!(f, "body: {}", self.body)?;
        if !self.values.is_empty() {
            let mut table = Table::new(&["service", "name", "value", "time"]);
            for v in &self.values {
                table.row(vec![
                    v.service.clone(),
                    v.name.clone(),
                    v.value.to_string(),
                    format_epoch(v.time),
                ]);
            }
            write!(f, "{}", table.render())?;
        }
        Ok(())
    }
}

impl Report for SendReport {}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SendArgs {
        SendArgs {
            queue_url: "http://q".into(),
            service: Some("ORG".into()),
            name: Some("glue.job.a.failed".into()),
            value: Some(1.0),
            time: None,
            file: None,
            allow_invalid: false,
            dry_run: false,
            sqs_event: false,
        }
    }

    const NOW: i64 = 1_795_981_423;

    #[test]
    fn flags_build_the_workflow_body_stamped_now() {
        assert_eq!(
            body_from_args(&args(), NOW).unwrap(),
            r#"{"service":"ORG","time":"2026-11-29T19:43:43Z","metrics":[{"name":"glue.job.a.failed","value":1.0}]}"#
        );
    }

    #[test]
    fn epoch_times_are_sent_as_rfc3339() {
        let body = body_from_args(
            &SendArgs {
                time: Some("1795981423".into()),
                ..args()
            },
            NOW + 3_600,
        )
        .unwrap();
        assert!(body.contains(r#""time":"2026-11-29T19:43:43Z""#), "{body}");
    }

    #[test]
    fn a_bad_time_is_a_usage_error() {
        let error = body_from_args(
            &SendArgs {
                time: Some("yesterday".into()),
                ..args()
            },
            NOW,
        )
        .unwrap_err();
        assert!(error.to_string().starts_with("--time:"), "{error}");
    }

    #[test]
    fn validation_is_the_consumers() {
        let now = NOW;
        assert!(validate(&body_from_args(&args(), now).unwrap(), now).is_ok());
        let rejection = validate(r#"{"service":"ORG","name":"a b","value":1}"#, now).unwrap_err();
        assert_eq!(rejection.reason.code(), "invalid_metric_name");
    }
}
