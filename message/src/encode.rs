//! Building message bodies the way a workflow's sendMessage task does, for the
//! operator CLI and the tests (the Step Functions definition builds the same JSON).

use serde::Serialize;

/// A format v1 message ready to serialize as an SQS body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutgoingMessage {
    pub service: String,
    /// RFC 3339; omitted means "when the message was first sent to SQS".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    pub metrics: Vec<OutgoingMetric>,
}

/// One value of an [`OutgoingMessage`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutgoingMetric {
    pub name: String,
    pub value: f64,
    /// RFC 3339; overrides the message's time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

impl OutgoingMessage {
    /// A message carrying one value.
    pub fn single(service: &str, name: &str, value: f64, time: Option<String>) -> Self {
        Self {
            service: service.to_owned(),
            time,
            metrics: vec![OutgoingMetric {
                name: name.to_owned(),
                value,
                time: None,
            }],
        }
    }

    /// The JSON body.
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).expect("a message of strings and finite numbers serializes")
    }
}
