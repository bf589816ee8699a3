//! The Mackerel API key: kept out of every log and error, fetched from Secrets
//! Manager at cold start, and fetched again once when Mackerel refuses it
//! (the secret may have been rotated while this function stayed warm).

use std::fmt;
use std::sync::Arc;

use reqwest::header::HeaderValue;
use tokio::sync::{Mutex, RwLock};

/// A Mackerel API key, checked to be sendable as an HTTP header value. `Debug`
/// never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    text: Arc<str>,
    header: HeaderValue,
}

impl ApiKey {
    /// Checks and keeps a key (surrounding whitespace removed). A key with a
    /// control character inside (a newline pasted with it, say) cannot go in a
    /// header: refused here, once, instead of failing every request later.
    pub fn new(key: &str) -> Result<Self, KeyError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        let mut header = HeaderValue::from_str(key).map_err(|_| KeyError::NotAHeaderValue)?;
        header.set_sensitive(true);
        Ok(Self {
            text: Arc::from(key),
            header,
        })
    }

    /// The key itself, only for comparisons in tests and fakes.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The `X-Api-Key` header value, marked sensitive so that no log shows it.
    pub fn header_value(&self) -> HeaderValue {
        self.header.clone()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Reads the key out of a secret's string: either the bare key or a JSON object
/// `{"MACKEREL_API_KEY": "..."}`.
pub fn key_from_secret_string(secret: &str) -> Result<ApiKey, KeyError> {
    let trimmed = secret.trim();
    let key = if trimmed.starts_with('{') {
        let object: serde_json::Value =
            serde_json::from_str(trimmed).map_err(|_| KeyError::UnreadableSecret)?;
        object
            .get("MACKEREL_API_KEY")
            .and_then(|v| v.as_str())
            .ok_or(KeyError::UnreadableSecret)?
            .trim()
            .to_owned()
    } else {
        trimmed.to_owned()
    };
    ApiKey::new(&key)
}

/// Why the key could not be had. Never carries the secret's content.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the secret is JSON but has no string field MACKEREL_API_KEY: store the bare key, or {{\"MACKEREL_API_KEY\": \"<key>\"}}")]
    UnreadableSecret,
    #[error("the key is empty: put the key in the secret with `aws secretsmanager put-secret-value` (or set MACKEREL_API_KEY for local runs)")]
    EmptySecret,
    #[error("the key contains a character that cannot be sent in an HTTP header (a newline or another control character, often pasted with it): store the key alone, on one line")]
    NotAHeaderValue,
    #[error("the secret has no string value (binary secrets are not supported): store the key as a string")]
    NotAString,
    #[error("could not read secret {secret_id:?} from Secrets Manager: {cause}. Check that it exists and that the function's role may call secretsmanager:GetSecretValue on it")]
    Fetch { secret_id: String, cause: String },
}

/// Something that can produce the key, again when asked.
pub trait KeyFetcher: Send + Sync {
    fn fetch(&self) -> impl std::future::Future<Output = Result<ApiKey, KeyError>> + Send;
}

/// Fetches the key from Secrets Manager.
pub struct SecretsManagerKey {
    pub client: aws_sdk_secretsmanager::Client,
    pub secret_id: String,
}

impl KeyFetcher for SecretsManagerKey {
    async fn fetch(&self) -> Result<ApiKey, KeyError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .send()
            .await
            .map_err(|error| KeyError::Fetch {
                secret_id: self.secret_id.clone(),
                cause: sfn_mackerel_sqs::error_text::call_failed("GetSecretValue", &error),
            })?;
        let text = output.secret_string().ok_or(KeyError::NotAString)?;
        key_from_secret_string(text)
    }
}

/// A key given directly: fetching again yields the same key.
pub struct FixedKey(pub ApiKey);

impl KeyFetcher for FixedKey {
    async fn fetch(&self) -> Result<ApiKey, KeyError> {
        Ok(self.0.clone())
    }
}

/// The key in use, with a refresh that reaches the source at most once per
/// invocation however many requests were refused at the same time.
pub struct KeyStore {
    current: RwLock<ApiKey>,
    refresh: Mutex<RefreshState>,
    fetcher: Box<dyn DynKeyFetcher>,
}

#[derive(Default)]
struct RefreshState {
    /// The invocation that last refreshed the key.
    generation: u64,
}

impl KeyStore {
    /// Fetches the key once (cold start) and keeps the fetcher for refreshes.
    pub async fn load(fetcher: impl KeyFetcher + 'static) -> Result<Self, KeyError> {
        let key = fetcher.fetch().await?;
        Ok(Self {
            current: RwLock::new(key),
            refresh: Mutex::new(RefreshState::default()),
            fetcher: Box::new(fetcher),
        })
    }

    pub async fn current(&self) -> ApiKey {
        self.current.read().await.clone()
    }

    /// Fetches the key again unless this invocation (`generation`) already did;
    /// returns the key to retry with. A failed refetch keeps the old key.
    pub async fn refresh_once(&self, generation: u64) -> ApiKey {
        let mut state = self.refresh.lock().await;
        if state.generation != generation {
            state.generation = generation;
            match self.fetcher.fetch_boxed().await {
                Ok(key) => *self.current.write().await = key,
                Err(error) => {
                    tracing::warn!(%error, "refetching the Mackerel API key failed; keeping the one in use")
                }
            }
        }
        self.current().await
    }
}

type BoxedKeyFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<ApiKey, KeyError>> + Send + 'a>>;

/// Object-safe form of [`KeyFetcher`], so the store can hold either kind.
trait DynKeyFetcher: Send + Sync {
    fn fetch_boxed(&self) -> BoxedKeyFuture<'_>;
}

impl<T: KeyFetcher> DynKeyFetcher for T {
    fn fetch_boxed(&self) -> BoxedKeyFuture<'_> {
        Box::pin(self.fetch())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_secret_is_the_key() {
        assert_eq!(key_from_secret_string(" abc \n").unwrap().expose(), "abc");
    }

    #[test]
    fn a_json_secret_holds_the_key_under_its_name() {
        let key = key_from_secret_string(r#"{"MACKEREL_API_KEY": "abc"}"#).unwrap();
        assert_eq!(key.expose(), "abc");
    }

    #[test]
    fn json_without_the_field_is_refused_without_echoing_it() {
        let error = key_from_secret_string(r#"{"other": "topsecret"}"#).unwrap_err();
        assert!(!error.to_string().contains("topsecret"));
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert!(matches!(
            key_from_secret_string("  "),
            Err(KeyError::EmptySecret)
        ));
    }

    #[test]
    fn debug_never_shows_the_key() {
        assert_eq!(
            format!("{:?}", ApiKey::new("abc").unwrap()),
            "ApiKey(<redacted>)"
        );
    }

    #[test]
    fn a_key_that_cannot_be_a_header_is_refused_when_it_is_read() {
        assert!(matches!(
            key_from_secret_string("abc\ndef"),
            Err(KeyError::NotAHeaderValue)
        ));
        assert!(matches!(
            ApiKey::new("abc\u{7f}def"),
            Err(KeyError::NotAHeaderValue)
        ));
        assert!(!KeyError::NotAHeaderValue.to_string().contains("abc"));
    }
}
