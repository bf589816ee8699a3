//! Request and value counters, so a test can assert how many requests a run
//! made and what happened to the values it sent.

use std::collections::BTreeMap;

use axum::http::Method;
use serde::{Deserialize, Serialize};

/// Which endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// `POST /api/v0/services/<svc>/tsdb`.
    TsdbPost,
    /// `GET /api/v0/services`.
    ServicesList,
    /// `POST /api/v0/services`.
    ServiceCreate,
    /// `GET /api/v0/services/<svc>/metric-names`.
    MetricNames,
    /// `GET /api/v0/services/<svc>/metrics`.
    MetricsRead,
    /// `GET /api/v0/monitors`.
    MonitorsList,
    /// `POST /api/v0/monitors`.
    MonitorCreate,
    /// `GET` or `DELETE /api/v0/monitors/<id>`.
    MonitorById,
    /// `GET /api/v0/alerts`.
    AlertsList,
    /// Any other `/api/` path or method.
    OtherApi,
    /// `/_standin/...`.
    Admin,
    /// The HTML page and anything else.
    Page,
}

impl RequestKind {
    /// Classifies a request by method and path.
    pub fn classify(method: &Method, path: &str) -> Self {
        if path.starts_with("/_standin/") || path == "/_standin" {
            return RequestKind::Admin;
        }
        let Some(rest) = path.strip_prefix("/api/v0/") else {
            return if path.starts_with("/api/") {
                RequestKind::OtherApi
            } else {
                RequestKind::Page
            };
        };
        let segments: Vec<&str> = rest.split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("POST", ["services", _, "tsdb"]) => RequestKind::TsdbPost,
            ("GET", ["services"]) => RequestKind::ServicesList,
            ("POST", ["services"]) => RequestKind::ServiceCreate,
            ("GET", ["services", _, "metric-names"]) => RequestKind::MetricNames,
            ("GET", ["services", _, "metrics"]) => RequestKind::MetricsRead,
            ("GET", ["monitors"]) => RequestKind::MonitorsList,
            ("POST", ["monitors"]) => RequestKind::MonitorCreate,
            ("GET" | "DELETE", ["monitors", _]) => RequestKind::MonitorById,
            ("GET", ["alerts"]) => RequestKind::AlertsList,
            _ => RequestKind::OtherApi,
        }
    }

    /// Name used in counters and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::TsdbPost => "tsdb_post",
            RequestKind::ServicesList => "services_list",
            RequestKind::ServiceCreate => "service_create",
            RequestKind::MetricNames => "metric_names",
            RequestKind::MetricsRead => "metrics_read",
            RequestKind::MonitorsList => "monitors_list",
            RequestKind::MonitorCreate => "monitor_create",
            RequestKind::MonitorById => "monitor_by_id",
            RequestKind::AlertsList => "alerts_list",
            RequestKind::OtherApi => "other_api",
            RequestKind::Admin => "admin",
            RequestKind::Page => "page",
        }
    }

    /// Whether the request is for the emulated Mackerel API (counted in totals).
    pub fn is_api(self) -> bool {
        !matches!(self, RequestKind::Admin | RequestKind::Page)
    }
}

/// Counter values, as served by `GET /_standin/counters`. Only API requests
/// (`/api/...`) are counted; the page and admin endpoints are not.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// API requests received (including ones that hung or were faulted).
    pub requests_total: u64,
    /// API responses by HTTP status code.
    pub requests_by_status: BTreeMap<u16, u64>,
    /// API requests by endpoint (see `RequestKind::as_str`).
    pub requests_by_kind: BTreeMap<String, u64>,
    /// `POST .../tsdb` requests received.
    pub tsdb_requests_total: u64,
    /// `POST .../tsdb` responses by HTTP status code.
    pub tsdb_requests_by_status: BTreeMap<u16, u64>,
    /// Requests held by the hang fault.
    pub requests_hung: u64,
    /// Values in successfully validated tsdb posts.
    pub values_received: u64,
    /// Values stored.
    pub values_accepted: u64,
    /// Values older than 24 h, answered 200 and dropped.
    pub values_dropped_too_old: u64,
    /// Values more than 24 h ahead, answered 200 and dropped.
    pub values_dropped_too_far_in_future: u64,
    /// Stored values that replaced an earlier value of the same minute.
    pub values_overwritten: u64,
}

impl Counters {
    /// Counts a request as it arrives.
    pub fn record_request(&mut self, kind: RequestKind) {
        if !kind.is_api() {
            return;
        }
        self.requests_total += 1;
        *self
            .requests_by_kind
            .entry(kind.as_str().to_owned())
            .or_default() += 1;
        if kind == RequestKind::TsdbPost {
            self.tsdb_requests_total += 1;
        }
    }

    /// Counts the status a request was answered with.
    pub fn record_status(&mut self, kind: RequestKind, status: u16) {
        if !kind.is_api() {
            return;
        }
        *self.requests_by_status.entry(status).or_default() += 1;
        if kind == RequestKind::TsdbPost {
            *self.tsdb_requests_by_status.entry(status).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_classified_by_endpoint() {
        assert_eq!(
            RequestKind::classify(&Method::POST, "/api/v0/services/ORG/tsdb"),
            RequestKind::TsdbPost
        );
        assert_eq!(
            RequestKind::classify(&Method::GET, "/api/v0/services/ORG/tsdb"),
            RequestKind::OtherApi
        );
        assert_eq!(
            RequestKind::classify(&Method::GET, "/api/v0/services/ORG/metrics"),
            RequestKind::MetricsRead
        );
        assert_eq!(
            RequestKind::classify(&Method::DELETE, "/api/v0/monitors/abc"),
            RequestKind::MonitorById
        );
        assert_eq!(
            RequestKind::classify(&Method::GET, "/_standin/counters"),
            RequestKind::Admin
        );
        assert_eq!(RequestKind::classify(&Method::GET, "/"), RequestKind::Page);
    }

    #[test]
    fn tsdb_posts_are_counted_in_their_own_totals() {
        let mut counters = Counters::default();
        counters.record_request(RequestKind::TsdbPost);
        counters.record_status(RequestKind::TsdbPost, 503);
        counters.record_request(RequestKind::ServicesList);
        counters.record_status(RequestKind::ServicesList, 200);
        assert_eq!(counters.requests_total, 2);
        assert_eq!(counters.tsdb_requests_total, 1);
        assert_eq!(counters.tsdb_requests_by_status.get(&503), Some(&1));
        assert_eq!(counters.requests_by_status.get(&200), Some(&1));
    }

    #[test]
    fn admin_and_page_requests_are_not_counted() {
        let mut counters = Counters::default();
        counters.record_request(RequestKind::Admin);
        counters.record_status(RequestKind::Page, 200);
        assert_eq!(counters, Counters::default());
    }
}
