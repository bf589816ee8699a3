//! The naming rules Mackerel enforces on services and metrics, checked before
//! posting so one bad name cannot make Mackerel refuse a whole request.

/// Mackerel's service-name rule: 2 to 63 of `A-Za-z0-9_-`, not starting with `-` or `_`.
pub fn check_service_name(name: &str) -> Result<(), String> {
    let len = name.len();
    if !(2..=63).contains(&len) {
        return Err(format!(
            "service name {name:?} has {len} characters; Mackerel allows 2 to 63"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "service name {name:?} contains {bad:?}; Mackerel allows only A-Z, a-z, 0-9, '_' and '-'"
        ));
    }
    if name.starts_with(['-', '_']) {
        return Err(format!(
            "service name {name:?} starts with '-' or '_', which Mackerel refuses"
        ));
    }
    Ok(())
}

/// Mackerel's metric-name rule for service metrics: `[a-zA-Z0-9._-]+`.
pub fn check_metric_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("metric name is empty".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "metric name {name:?} contains {bad:?}; Mackerel allows only A-Z, a-z, 0-9, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_mackerel_accepts() {
        for name in ["ORGANIZATION", "ab", "prd-data_2", &"a".repeat(63)] {
            assert_eq!(check_service_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn service_names_mackerel_refuses() {
        for name in ["", "a", "-ab", "_ab", "a b", "a.b", "ä1", &"a".repeat(64)] {
            assert!(check_service_name(name).is_err(), "{name}");
        }
    }

    #[test]
    fn metric_names_mackerel_accepts() {
        for name in ["prd.glue.job.make_order.failed", "a", "A-b_c.9"] {
            assert_eq!(check_metric_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn metric_names_mackerel_refuses() {
        for name in ["", "a b", "a/b", "a:b", "é", "a*"] {
            assert!(check_metric_name(name).is_err(), "{name}");
        }
    }
}
