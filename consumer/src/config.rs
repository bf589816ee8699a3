//! The consumer's settings, read from the environment once at cold start. A
//! missing or contradictory setting stops the cold start with a sentence that
//! says which variable to set, instead of failing every batch later.

use std::collections::HashMap;
use std::time::Duration;

use sfn_mackerel_message::timestamp::DEFAULT_MAX_FUTURE_SECONDS;

use sfn_mackerel_message::events::{prefixes_overlap, EventMapping, ServiceRoute, StoppedAs};
use sfn_mackerel_message::names::{check_metric_name, check_service_name};
use sfn_mackerel_message::MergeRule;

/// Where the Mackerel API key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A Secrets Manager secret id or ARN (the deployed setting).
    Secret(String),
    /// The key itself, for local runs. Kept out of `Debug` output on purpose.
    Direct(crate::api_key::ApiKey),
}

/// Everything the consumer needs to know, with the defaults documented in the README.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub key_source: KeySource,
    /// Without a trailing slash, e.g. `https://api.mackerelio.com`.
    pub api_base: String,
    /// The queue that set-aside messages are sent to.
    pub dlq_url: String,
    pub merge_rule: MergeRule,
    /// Upper bound of one tsdb request body, well under what Mackerel's proxy refuses.
    pub max_request_bytes: usize,
    /// Tries per request, the first included.
    pub max_attempts: u32,
    /// How many services are posted at the same time.
    pub service_concurrency: usize,
    /// How long one request may take before it counts as a timeout.
    pub request_timeout: Duration,
    /// The first backoff step; later steps double up to `backoff_cap`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Time kept free before the invocation's deadline for parking messages and answering.
    pub deadline_margin: Duration,
    /// How far in the future a value may be stamped (clock skew allowance).
    pub max_future_seconds: i64,
    /// Where the pipeline's own figures go, if anywhere.
    pub pipeline_metrics: Option<PipelineMetricsTarget>,
    /// Whether job statuses (`<job>.failed`) get their alert series
    /// (`<job>.alert`) and the reads that keep it right (README: "Every failure
    /// alerts"). Off, every series is posted as it comes, as before.
    pub status_alerts: bool,
    /// How EventBridge events (Glue job and workflow status changes) become
    /// values: README "Results from EventBridge events".
    pub events: EventMapping,
}

/// The service and name prefix for the pipeline's own per-batch figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineMetricsTarget {
    pub service: String,
    pub prefix: String,
}

pub const DEFAULT_API_BASE: &str = "https://api.mackerelio.com";

/// A setting that prevents the consumer from starting, phrased for the operator.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("no Mackerel API key configured: set MACKEREL_API_KEY_SECRET_ID to the Secrets Manager secret holding it (or MACKEREL_API_KEY for local runs)")]
    NoApiKey,
    #[error("both MACKEREL_API_KEY_SECRET_ID and MACKEREL_API_KEY are set: keep only one (the secret in AWS, the direct key locally)")]
    TwoApiKeys,
    #[error("MACKEREL_API_KEY cannot be used: {0}")]
    UnusableKey(String),
    #[error("DLQ_URL is not set: set it to the URL of the dead-letter queue where set-aside messages go")]
    NoDlqUrl,
    #[error("{name}={value:?} is not valid: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: String,
    },
}

impl Settings {
    /// Reads the settings from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(&std::env::vars().collect())
    }

    /// Reads the settings from a map of variables (pure, for tests).
    pub fn from_vars(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            vars.get(name)
                .map(|value| value.trim())
                .filter(|value| !value.is_empty())
        };

        let key_source = match (get("MACKEREL_API_KEY_SECRET_ID"), get("MACKEREL_API_KEY")) {
            (Some(_), Some(_)) => return Err(ConfigError::TwoApiKeys),
            (Some(secret), None) => KeySource::Secret(secret.to_owned()),
            (None, Some(key)) => KeySource::Direct(
                crate::api_key::ApiKey::new(key)
                    .map_err(|why| ConfigError::UnusableKey(why.to_string()))?,
            ),
            (None, None) => return Err(ConfigError::NoApiKey),
        };
        let api_base = get("MACKEREL_API_BASE")
            .unwrap_or(DEFAULT_API_BASE)
            .trim_end_matches('/')
            .to_owned();
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
            return Err(ConfigError::Invalid {
                name: "MACKEREL_API_BASE",
                value: api_base,
                expected: format!("an http(s) URL such as {DEFAULT_API_BASE}"),
            });
        }
        let dlq_url = get("DLQ_URL").ok_or(ConfigError::NoDlqUrl)?.to_owned();
        let merge_rule = match get("MERGE_RULE") {
            None => MergeRule::Max,
            Some(text) => MergeRule::from_name(text).ok_or_else(|| ConfigError::Invalid {
                name: "MERGE_RULE",
                value: text.to_owned(),
                expected: format!("one of {}", MergeRule::NAMES.join(", ")),
            })?,
        };
        let pipeline_metrics = match get("PIPELINE_METRICS_SERVICE") {
            None => None,
            Some(service) => {
                let prefix = get("PIPELINE_METRICS_PREFIX").unwrap_or("sfn_mackerel");
                check_service_name(service).map_err(|why| ConfigError::Invalid {
                    name: "PIPELINE_METRICS_SERVICE",
                    value: service.to_owned(),
                    expected: why,
                })?;
                check_metric_name(prefix).map_err(|why| ConfigError::Invalid {
                    name: "PIPELINE_METRICS_PREFIX",
                    value: prefix.to_owned(),
                    expected: why,
                })?;
                Some(PipelineMetricsTarget {
                    service: service.to_owned(),
                    prefix: prefix.to_owned(),
                })
            }
        };

        let status_alerts = match get("STATUS_ALERTS") {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "STATUS_ALERTS",
                    value: other.to_owned(),
                    expected: "on (the default: every job failure opens its alert) or off (no <job>.alert series, no reads)".to_owned(),
                })
            }
        };

        Ok(Settings {
            key_source,
            api_base,
            dlq_url,
            merge_rule,
            max_request_bytes: number(get, "MAX_REQUEST_BYTES", 65_536, 1_024, 1_000_000)?,
            max_attempts: number(get, "MACKEREL_MAX_ATTEMPTS", 5, 1, 20)?,
            service_concurrency: number(get, "SERVICE_CONCURRENCY", 4, 1, 64)?,
            request_timeout: Duration::from_millis(number(
                get,
                "MACKEREL_TIMEOUT_MS",
                10_000,
                100,
                120_000,
            )?),
            backoff_base: Duration::from_millis(number(get, "BACKOFF_BASE_MS", 200, 1, 60_000)?),
            backoff_cap: Duration::from_millis(number(get, "BACKOFF_CAP_MS", 10_000, 1, 300_000)?),
            deadline_margin: Duration::from_millis(number(
                get,
                "DEADLINE_MARGIN_MS",
                3_000,
                0,
                60_000,
            )?),
            max_future_seconds: number(
                get,
                "MAX_FUTURE_SECONDS",
                DEFAULT_MAX_FUTURE_SECONDS,
                0,
                86_400,
            )?,
            pipeline_metrics,
            status_alerts,
            events: event_mapping(get)?,
        })
    }
}

/// `EVENT_SERVICE` (every event's values to one service) or `EVENT_SERVICES`
/// (a JSON array of `{"names": "<pattern>", "service": "<service>"}`, the first
/// match wins), the two prefixes and what a stopped Glue run reports.
fn event_mapping<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<EventMapping, ConfigError> {
    let (services, services_from) = match (get("EVENT_SERVICE"), get("EVENT_SERVICES")) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid {
                name: "EVENT_SERVICES",
                value: "(set together with EVENT_SERVICE)".to_owned(),
                expected: "keep only one: EVENT_SERVICE for one service, EVENT_SERVICES for a map"
                    .to_owned(),
            })
        }
        (Some(service), None) => (
            vec![ServiceRoute {
                names: "*".to_owned(),
                service: service.to_owned(),
            }],
            "EVENT_SERVICE",
        ),
        (None, Some(text)) => (service_routes(text)?, "EVENT_SERVICES"),
        (None, None) => (Vec::new(), "EVENT_SERVICE"),
    };
    for route in &services {
        check_service_name(&route.service).map_err(|why| ConfigError::Invalid {
            name: services_from,
            value: route.service.clone(),
            expected: why,
        })?;
    }
    let prefix = |name: &'static str, default: &str| -> Result<String, ConfigError> {
        let value = get(name).unwrap_or(default);
        check_metric_name(value).map_err(|why| ConfigError::Invalid {
            name,
            value: value.to_owned(),
            expected: why,
        })?;
        Ok(value.to_owned())
    };
    let defaults = EventMapping::default();
    let stopped_as = match get("EVENT_STOPPED_AS") {
        None => defaults.stopped_as,
        Some(text) => StoppedAs::from_name(text).ok_or_else(|| ConfigError::Invalid {
            name: "EVENT_STOPPED_AS",
            value: text.to_owned(),
            expected: "failed (the default: a stopped Glue run did not do its work) or succeeded"
                .to_owned(),
        })?,
    };
    let glue_prefix = prefix("EVENT_GLUE_PREFIX", &defaults.glue_prefix)?;
    let workflow_prefix = prefix("EVENT_WORKFLOW_PREFIX", &defaults.workflow_prefix)?;
    if prefixes_overlap(&glue_prefix, &workflow_prefix) {
        return Err(ConfigError::Invalid {
            name: "EVENT_WORKFLOW_PREFIX",
            value: workflow_prefix,
            expected: format!("a prefix that neither equals EVENT_GLUE_PREFIX ({glue_prefix}) nor begins it or with it followed by a dot, so a Glue job and a state machine never write one series (e.g. prd.glue.job and prd.sfn.workflow)"),
        });
    }
    Ok(EventMapping {
        glue_prefix,
        workflow_prefix,
        services,
        stopped_as,
    })
}

fn service_routes(text: &str) -> Result<Vec<ServiceRoute>, ConfigError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Route {
        names: String,
        service: String,
    }
    let invalid = |expected: String| ConfigError::Invalid {
        name: "EVENT_SERVICES",
        value: text.chars().take(200).collect(),
        expected,
    };
    let routes: Vec<Route> = serde_json::from_str(text).map_err(|error| {
        invalid(format!(
            "a JSON array such as [{{\"names\": \"team-a-*\", \"service\": \"team-a\"}}] ({error})"
        ))
    })?;
    if routes.is_empty() || routes.iter().any(|route| route.names.is_empty()) {
        return Err(invalid(
            "at least one entry, each with a non-empty \"names\" pattern (\"*\" for every name)"
                .to_owned(),
        ));
    }
    Ok(routes
        .into_iter()
        .map(|route| ServiceRoute {
            names: route.names,
            service: route.service,
        })
        .collect())
}

fn number<'a, T>(
    get: impl Fn(&str) -> Option<&'a str>,
    name: &'static str,
    default: T,
    min: T,
    max: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(text) = get(name) else {
        return Ok(default);
    };
    match text.parse::<T>() {
        Ok(value) if value >= min && value <= max => Ok(value),
        _ => Err(ConfigError::Invalid {
            name,
            value: text.to_owned(),
            expected: format!("a whole number from {min} to {max} (default {default})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_secret_and_a_dlq_are_enough() {
        let settings = Settings::from_vars(&vars(&[
            ("MACKEREL_API_KEY_SECRET_ID", "mackerel/api-key"),
            ("DLQ_URL", "https://sqs/q-dlq"),
        ]))
        .unwrap();
        assert_eq!(
            settings.key_source,
            KeySource::Secret("mackerel/api-key".into())
        );
        assert_eq!(settings.api_base, DEFAULT_API_BASE);
        assert_eq!(settings.merge_rule, MergeRule::Max);
        assert_eq!(settings.max_request_bytes, 65_536);
        assert_eq!(settings.pipeline_metrics, None);
        assert!(settings.status_alerts);
    }

    fn with_events(pairs: &[(&str, &str)]) -> Result<EventMapping, ConfigError> {
        let mut all = vec![("MACKEREL_API_KEY", "k"), ("DLQ_URL", "u")];
        all.extend_from_slice(pairs);
        Settings::from_vars(&vars(&all)).map(|settings| settings.events)
    }

    #[test]
    fn events_go_nowhere_until_a_service_is_named() {
        let unset = with_events(&[]).unwrap();
        assert!(unset.services.is_empty());
        assert_eq!(unset.glue_prefix, "glue.job");
        assert_eq!(unset.workflow_prefix, "sfn.workflow");
        assert_eq!(unset.stopped_as, StoppedAs::Failed);
        let one = with_events(&[
            ("EVENT_SERVICE", "glue-jobs"),
            ("EVENT_GLUE_PREFIX", "prd.glue.job"),
            ("EVENT_STOPPED_AS", "succeeded"),
        ])
        .unwrap();
        assert_eq!(
            one.services,
            vec![ServiceRoute {
                names: "*".into(),
                service: "glue-jobs".into()
            }]
        );
        assert_eq!(one.glue_prefix, "prd.glue.job");
        assert_eq!(one.stopped_as, StoppedAs::Succeeded);
    }

    #[test]
    fn a_service_map_keeps_its_order_and_refuses_what_it_cannot_use() {
        let map = with_events(&[(
            "EVENT_SERVICES",
            r#"[{"names": "team-a-*", "service": "team-a"}, {"names": "*", "service": "rest"}]"#,
        )])
        .unwrap();
        assert_eq!(map.services.len(), 2);
        assert_eq!(map.services[0].service, "team-a");
        for (pairs, variable) in [
            (
                vec![("EVENT_SERVICES", "team-a-*=team-a")],
                "EVENT_SERVICES",
            ),
            (vec![("EVENT_SERVICES", "[]")], "EVENT_SERVICES"),
            (
                vec![("EVENT_SERVICES", r#"[{"names": "", "service": "a"}]"#)],
                "EVENT_SERVICES",
            ),
            (
                vec![("EVENT_SERVICES", r#"[{"name": "*", "service": "a"}]"#)],
                "EVENT_SERVICES",
            ),
            (
                vec![("EVENT_SERVICE", "a"), ("EVENT_SERVICES", "[]")],
                "EVENT_SERVICES",
            ),
            (vec![("EVENT_SERVICE", "bad service!")], "EVENT_SERVICE"),
            (vec![("EVENT_GLUE_PREFIX", "glue job")], "EVENT_GLUE_PREFIX"),
            (
                vec![("EVENT_WORKFLOW_PREFIX", "a/b")],
                "EVENT_WORKFLOW_PREFIX",
            ),
            (vec![("EVENT_STOPPED_AS", "ignored")], "EVENT_STOPPED_AS"),
            (
                vec![
                    ("EVENT_GLUE_PREFIX", "jobs"),
                    ("EVENT_WORKFLOW_PREFIX", "jobs"),
                ],
                "EVENT_WORKFLOW_PREFIX",
            ),
            (
                vec![
                    ("EVENT_GLUE_PREFIX", "jobs"),
                    ("EVENT_WORKFLOW_PREFIX", "jobs.sfn"),
                ],
                "EVENT_WORKFLOW_PREFIX",
            ),
            (
                vec![(
                    "EVENT_SERVICES",
                    r#"[{"names": "*", "service": "bad service!"}]"#,
                )],
                "EVENT_SERVICES",
            ),
        ] {
            let error = with_events(&pairs).unwrap_err().to_string();
            assert!(error.starts_with(variable), "{pairs:?}: {error}");
        }
    }

    #[test]
    fn status_alerts_can_be_turned_off_and_nothing_else_is_guessed() {
        let with = |value: &str| {
            Settings::from_vars(&vars(&[
                ("MACKEREL_API_KEY", "k"),
                ("DLQ_URL", "u"),
                ("STATUS_ALERTS", value),
            ]))
        };
        assert!(!with("off").unwrap().status_alerts);
        assert!(with("on").unwrap().status_alerts);
        let refused = with("no").unwrap_err().to_string();
        assert!(
            refused.starts_with("STATUS_ALERTS=\"no\" is not valid: on"),
            "{refused}"
        );
    }

    #[test]
    fn no_key_says_which_variable_to_set() {
        let error = Settings::from_vars(&vars(&[("DLQ_URL", "u")])).unwrap_err();
        assert_eq!(error, ConfigError::NoApiKey);
        assert!(error.to_string().contains("MACKEREL_API_KEY_SECRET_ID"));
    }

    #[test]
    fn two_keys_are_contradictory() {
        let error = Settings::from_vars(&vars(&[
            ("MACKEREL_API_KEY_SECRET_ID", "s"),
            ("MACKEREL_API_KEY", "k"),
            ("DLQ_URL", "u"),
        ]))
        .unwrap_err();
        assert_eq!(error, ConfigError::TwoApiKeys);
    }

    #[test]
    fn no_dlq_is_refused() {
        let error = Settings::from_vars(&vars(&[("MACKEREL_API_KEY", "k")])).unwrap_err();
        assert_eq!(error, ConfigError::NoDlqUrl);
    }

    #[test]
    fn bad_numbers_and_rules_name_the_variable_and_the_range() {
        let error = Settings::from_vars(&vars(&[
            ("MACKEREL_API_KEY", "k"),
            ("DLQ_URL", "u"),
            ("MAX_REQUEST_BYTES", "lots"),
        ]))
        .unwrap_err();
        assert!(error.to_string().contains("MAX_REQUEST_BYTES"), "{error}");
        assert!(error.to_string().contains("1024 to 1000000"), "{error}");

        let error = Settings::from_vars(&vars(&[
            ("MACKEREL_API_KEY", "k"),
            ("DLQ_URL", "u"),
            ("MERGE_RULE", "avg"),
        ]))
        .unwrap_err();
        assert!(error.to_string().contains("max, min, last, sum"), "{error}");
    }

    #[test]
    fn api_base_loses_its_trailing_slash() {
        let settings = Settings::from_vars(&vars(&[
            ("MACKEREL_API_KEY", "k"),
            ("DLQ_URL", "u"),
            ("MACKEREL_API_BASE", "http://127.0.0.1:9/"),
        ]))
        .unwrap();
        assert_eq!(settings.api_base, "http://127.0.0.1:9");
    }

    #[test]
    fn pipeline_metrics_are_on_when_a_service_is_named() {
        let settings = Settings::from_vars(&vars(&[
            ("MACKEREL_API_KEY", "k"),
            ("DLQ_URL", "u"),
            ("PIPELINE_METRICS_SERVICE", "ORGANIZATION"),
        ]))
        .unwrap();
        assert_eq!(
            settings.pipeline_metrics,
            Some(PipelineMetricsTarget {
                service: "ORGANIZATION".into(),
                prefix: "sfn_mackerel".into()
            })
        );
    }

    #[test]
    fn a_key_that_cannot_be_a_header_stops_the_cold_start_without_echoing_it() {
        let error = Settings::from_vars(&vars(&[
            ("MACKEREL_API_KEY", "secret\nkey"),
            ("DLQ_URL", "u"),
        ]))
        .unwrap_err();
        assert!(matches!(error, ConfigError::UnusableKey(_)));
        assert!(error.to_string().contains("MACKEREL_API_KEY"), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[test]
    fn the_direct_key_never_shows_in_debug_output() {
        let settings = Settings::from_vars(&vars(&[
            ("MACKEREL_API_KEY", "secret-key-123"),
            ("DLQ_URL", "u"),
        ]))
        .unwrap();
        assert!(!format!("{settings:?}").contains("secret-key-123"));
    }
}
