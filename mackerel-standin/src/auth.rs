//! Which API keys may read and which may also write, like Mackerel's
//! organisation keys; a missing, unknown or read-only key cannot post.

use std::collections::HashSet;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Read only.
    ReadOnly,
}

/// Why a request was refused with 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Forbidden {
    /// No `X-Api-Key` header.
    #[error("X-Api-Key header is missing: send an API key of the organization")]
    MissingKey,
    /// The key is not one of the organisation's.
    #[error("the API key is not valid for this organization")]
    UnknownKey,
    /// The key cannot write.
    #[error("the API key is read-only: use a key with write permission to post")]
    ReadOnlyKey,
}

/// The organisation's keys.
#[derive(Debug, Clone, Default)]
pub struct ApiKeys {
    read_write: HashSet<String>,
    read_only: HashSet<String>,
}

impl ApiKeys {
    /// Builds the key set; a key listed as both is read-write.
    pub fn new(read_write: &[String], read_only: &[String]) -> Self {
        ApiKeys {
            read_write: read_write.iter().cloned().collect(),
            read_only: read_only
                .iter()
                .filter(|k| !read_write.contains(k))
                .cloned()
                .collect(),
        }
    }

    /// The access a presented key grants.
    pub fn access(&self, key: Option<&str>) -> Result<Access, Forbidden> {
        let key = key.ok_or(Forbidden::MissingKey)?;
        if self.read_write.contains(key) {
            Ok(Access::ReadWrite)
        } else if self.read_only.contains(key) {
            Ok(Access::ReadOnly)
        } else {
            Err(Forbidden::UnknownKey)
        }
    }

    /// Requires a key that may read.
    pub fn authorize_read(&self, key: Option<&str>) -> Result<(), Forbidden> {
        self.access(key).map(|_| ())
    }

    /// Requires a key that may write.
    pub fn authorize_write(&self, key: Option<&str>) -> Result<(), Forbidden> {
        match self.access(key)? {
            Access::ReadWrite => Ok(()),
            Access::ReadOnly => Err(Forbidden::ReadOnlyKey),
        }
    }

    /// Whether the key belongs to the organisation.
    pub fn is_known(&self, key: &str) -> bool {
        self.read_write.contains(key) || self.read_only.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ApiKeys {
        ApiKeys::new(&["rw".to_owned()], &["ro".to_owned()])
    }

    #[test]
    fn a_read_write_key_may_post() {
        assert_eq!(keys().authorize_write(Some("rw")), Ok(()));
    }

    #[test]
    fn a_read_only_key_may_read_but_not_post() {
        assert_eq!(keys().authorize_read(Some("ro")), Ok(()));
        assert_eq!(
            keys().authorize_write(Some("ro")),
            Err(Forbidden::ReadOnlyKey)
        );
    }

    #[test]
    fn a_missing_or_unknown_key_is_forbidden() {
        assert_eq!(keys().authorize_read(None), Err(Forbidden::MissingKey));
        assert_eq!(
            keys().authorize_read(Some("other")),
            Err(Forbidden::UnknownKey)
        );
    }
}
