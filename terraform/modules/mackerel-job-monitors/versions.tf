terraform {
  required_version = ">= 1.5"

  required_providers {
    mackerel = {
      source = "mackerelio-labs/mackerel"
      # 0.6 or newer: service_metric monitors with missing_duration_* (interruption alerts).
      version = ">= 0.6, < 1.0"
    }
  }
}
