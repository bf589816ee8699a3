//! Reading service metrics back from Mackerel (or the stand-in) with a read
//! key: one request per series and time window, a few bounded retries on 429
//! and 5xx, and the key kept out of every message.

use std::time::Duration;

use reqwest::header::HeaderValue;
use serde::Deserialize;

use crate::error::CliError;

/// Tries per request, the first included.
const ATTEMPTS: u32 = 4;
/// The most of one answer that is read: a day of one-minute points is about 60 KB.
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Reads an answer body, refusing one larger than [`MAX_ANSWER_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("it is larger than {MAX_ANSWER_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

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
        // Never follow a redirect: reqwest would send X-Api-Key to the new host.
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
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
                    let bytes = read_bounded(response).await.map_err(|why| {
                        CliError::Unreachable(format!(
                            "Mackerel at {} answered {service}/{name} with an unusable body: {why}",
                            self.base
                        ))
                    })?;
                    let body: MetricsAnswer = serde_json::from_slice(&bytes).map_err(|e| {
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
                        "Mackerel at {} refused the API key ({status}): put a key of this organisation in MACKEREL_API_KEY (a read-only key is enough)",
                        self.base
                    )))
                }
                300..=399 => {
                    let location = response
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .map(|v| crate::output::shorten(&String::from_utf8_lossy(v.as_bytes()), 120))
                        .unwrap_or_else(|| "no Location header".to_owned());
                    return Err(CliError::Unreachable(format!(
                        "Mackerel at {} answered {status} redirecting to {location}; redirects are never followed (the API key would go to that host): set --mackerel-api-base / MACKEREL_API_BASE to the API's own address",
                        self.base
                    )));
                }
                429 | 500..=599 => {
                    last_problem = format!("HTTP {status}");
                    continue;
                }
                other => {
                    let text = String::from_utf8_lossy(
                        &read_bounded(response).await.unwrap_or_default(),
                    )
                    .into_owned();
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
