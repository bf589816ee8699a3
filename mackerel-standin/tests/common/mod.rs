//! Starts a stand-in on loopback and talks to it the way a Mackerel client does.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mackerel_standin::{Config, RunningStandIn, StandIn};
use reqwest::Response;
use serde_json::Value;

pub const KEY: &str = "write-key";
pub const READ_ONLY_KEY: &str = "read-only-key";
pub const SERVICE: &str = "ORGANIZATION";

pub fn config() -> Config {
    Config::new()
        .with_api_key(KEY)
        .with_read_only_api_key(READ_ONLY_KEY)
        .with_service(SERVICE)
        .with_fault_seed(7)
}

pub async fn start() -> (RunningStandIn, Client) {
    start_with(config()).await
}

pub async fn start_with(config: Config) -> (RunningStandIn, Client) {
    let standin = StandIn::start(config).await.expect("stand-in starts");
    let client = Client::new(&standin.base_url(), Duration::from_secs(10));
    (standin, client)
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub fn new(base: &str, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("client builds");
        Client {
            http,
            base: base.to_owned(),
        }
    }

    pub async fn post_tsdb(&self, body: Value) -> Response {
        self.post_json(
            &format!("/api/v0/services/{SERVICE}/tsdb"),
            Some(KEY),
            &body,
        )
        .await
    }

    pub async fn try_post_tsdb(&self, body: Value) -> reqwest::Result<Response> {
        self.http
            .post(format!("{}/api/v0/services/{SERVICE}/tsdb", self.base))
            .header("X-Api-Key", KEY)
            .json(&body)
            .send()
            .await
    }

    pub async fn post_json(&self, path: &str, key: Option<&str>, body: &Value) -> Response {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            request = request.header("X-Api-Key", key);
        }
        request.send().await.expect("request answered")
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("X-Api-Key", key);
        }
        request.send().await.expect("request answered")
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path, Some(KEY)).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("JSON body")
    }

    pub async fn create_monitor(&self, monitor: Value) -> Value {
        let response = self
            .post_json("/api/v0/monitors", Some(KEY), &monitor)
            .await;
        assert_eq!(response.status(), 200, "monitor accepted");
        response.json().await.expect("monitor JSON")
    }

    pub async fn open_alerts(&self) -> Vec<Value> {
        let body = self.get_json("/api/v0/alerts").await;
        body["alerts"].as_array().cloned().unwrap_or_default()
    }
}

pub async fn error_message(response: Response) -> String {
    let body: Value = response.json().await.expect("JSON error body");
    body["error"]["message"]
        .as_str()
        .expect("error.message is a string")
        .to_owned()
}
