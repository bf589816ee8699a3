//! Reading service metrics back from Mackerel (or the stand-in) with a read
//! key: one request per series and time window, a few bounded retries on 429
//! and 5xx, and the key kept out of every message.

use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;

use crate::error::CliError;

/// Tries per request, the first included.
const ATTEMPTS: u32 = 4;

/// A client of Mackerel's read API.
pub struct MackerelReader {
    client: reqwest::Client,
    base: String,
    key: HeaderValue,
}

impl std::fmt::Debug for MackerelReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MackerelReader")
            .field("base", &self.base)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct MetricsAnswer {
    metrics: Vec<PointAnswer>,
}

#[derive(Deserialize)]
struct PointAnswer {
    time: i64,
    value: f64,
}

impl MackerelReader {
    /// `base` like `https://api.mackerelio.com`; the key is used only in a sensitive header.
    pub fn new(base: &str, key: &str) -> Result<Self, CliError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(CliError::usage(format!(
                "--mackerel-api-base {base:?} is not an http(s) URL; e.g. https://api.mackerelio.com"
            )));
        }
        let mut key = HeaderValue::from_str(key.trim()).map_err(|_| {
            CliError::usage("the Mackerel API key contains characters that cannot go in a header")
        })?;
        key.set_sensitive(true);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("sfn-mackerel-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client, base, key })
    }

    /// The points of one series between `from` and `to` (epoch seconds, inclusive);
    /// `None` when Mackerel says the service or the metric does not exist (404).
    pub async fn series(
        &self,
        service: &str,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<Option<Vec<(i64, f64)>>, CliError> {
        let url = format!("{}/api/v0/services/{service}/metrics", self.base);
        let mut last_problem = String::new();
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt - 2))).await;
            }
            let answer = self
                .client
                .get(&url)
                .header("X-Api-Key", self.key.clone())
                .query(&[
                    ("name", name.to_owned()),
                    ("from", from.to_string()),
                    ("to", to.to_string()),
                ])
                .send()
                .await;
            let response = match answer {
                Ok(response) => response,
                Err(error) => {
                    last_problem = format!("{error}");
                    if error.is_connect() {
                        break;
                    }
                    continue;
                }
            };
            let status = response.status().as_u16();
            match status {
                200 => {
                    let body: MetricsAnswer = response.json().await.map_err(|e| {
                        CliError::Unreachable(format!(
                            "Mackerel at {} answered {service}/{name} with an unexpected body: {e}",
                            self.base
                        ))
                    })?;
                    return Ok(Some(body.metrics.into_iter().map(|p| (p.time, p.value)).collect()));
                }
                404 => return Ok(None),
                401 | 403 => {
                    return Err(CliError::Refused(format!(
                        "Mackerel at {} refused the API key ({status}): pass a key of this organisation with --mackerel-api-key or MACKEREL_API_KEY (a read-only key is enough)",
                        self.base
                    )))
                }
                429 | 500..=599 => {
                    last_problem = format!("HTTP {status}");
                    continue;
                }
                other => {
                    let text = response.text().await.unwrap_or_default();
                    return Err(CliError::Unreachable(format!(
                        "Mackerel at {} answered {other} for {service}/{name}: {}",
                        self.base,
                        crate::output::shorten(&text, 200)
                    )));
                }
            }
        }
        Err(CliError::Unreachable(format!(
            "could not read {service}/{name} from Mackerel at {}: {last_problem}. Check --mackerel-api-base / MACKEREL_API_BASE and the network",
            self.base
        )))
    }
}
