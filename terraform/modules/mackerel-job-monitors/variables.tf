variable "service_name" {
  description = "Mackerel service the job results are posted to (the messages' \"service\")."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,62}$", var.service_name))
    error_message = "service_name must be 2 to 63 characters of letters, digits, '-' and '_', not starting with '-' or '_' (Mackerel's rule)."
  }
}

variable "create_service" {
  description = "Create the Mackerel service here. false when it exists already (posting never creates it)."
  type        = bool
  default     = true
}

variable "service_memo" {
  description = "Memo of the created service."
  type        = string
  default     = "Per-job results of Step Functions workflows, posted by sfn-mackerel."
}

variable "metric_prefix" {
  description = "Metric name prefix; a job's metrics are <prefix>.<job>.failed and <prefix>.<job>.seconds."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]+$", var.metric_prefix))
    error_message = "metric_prefix must match [a-zA-Z0-9._-]+ (Mackerel metric names)."
  }
}

variable "job_names" {
  description = "Jobs to monitor, one critical monitor each on <prefix>.<job>.failed."
  type        = list(string)

  validation {
    condition     = length(var.job_names) > 0 && alltrue([for job in var.job_names : can(regex("^[a-zA-Z0-9._-]+$", job))])
    error_message = "job_names must be a non-empty list of names matching [a-zA-Z0-9._-]+ (they become part of metric names)."
  }
}

variable "workflow_names" {
  description = "State machines to monitor, one critical monitor each on <workflow_metric_prefix>.<name>.alert: the series the consumer writes from their Execution Status Change events (the pipeline module's workflow_events). Names as they appear in the series: letters, digits, '_' and '-' stay as they are; the consumer escapes any other character (see the main README, \"Names\")."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.workflow_names : can(regex("^[a-zA-Z0-9._-]+$", name))])
    error_message = "workflow_names must be names matching [a-zA-Z0-9._-]+ as the series spell them (a state machine named with other characters appears escaped: '.' and two hex digits per byte)."
  }
}

variable "workflow_metric_prefix" {
  description = "The pipeline module's workflow_metric_prefix (the consumer's EVENT_WORKFLOW_PREFIX): the workflows' series are <prefix>.<state machine>.failed."
  type        = string
  default     = "sfn.workflow"

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]+$", var.workflow_metric_prefix))
    error_message = "workflow_metric_prefix must match [a-zA-Z0-9._-]+ (Mackerel metric names)."
  }
}

variable "skipped_warning" {
  description = "Also create a warning monitor per job on <metric_prefix>.<job>.skipped > 0: a run the workflow skipped because an overlapping execution's run of the job was still going."
  type        = bool
  default     = false
}

variable "notification_interval" {
  description = "Minutes between repeated notifications while an alert stays open; 0 notifies once."
  type        = number
  default     = 0

  validation {
    condition     = var.notification_interval == 0 || var.notification_interval >= 10
    error_message = "notification_interval must be 0 (notify once) or at least 10 minutes."
  }
}

variable "pipeline_metrics_service" {
  description = "Service the consumer posts its own figures to (its PIPELINE_METRICS_SERVICE). null: no missing-data monitor."
  type        = string
  default     = null

  validation {
    condition     = var.pipeline_metrics_service == null || can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,62}$", var.pipeline_metrics_service))
    error_message = "pipeline_metrics_service must be a Mackerel service name (2 to 63 of letters, digits, '-' and '_'), or null."
  }
}

variable "pipeline_metrics_prefix" {
  description = "The consumer's PIPELINE_METRICS_PREFIX."
  type        = string
  default     = "sfn_mackerel"

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]+$", var.pipeline_metrics_prefix))
    error_message = "pipeline_metrics_prefix must match [a-zA-Z0-9._-]+."
  }
}

variable "missing_data_minutes" {
  description = "Critical when the pipeline posted no figures for this long. The consumer only runs when results arrive, so set it above the longest normal gap between workflow runs (e.g. 1500 for a daily workflow)."
  type        = number
  default     = 1500

  validation {
    condition     = var.missing_data_minutes >= 10 && var.missing_data_minutes <= 10080 && var.missing_data_minutes % 10 == 0
    error_message = "missing_data_minutes must be a multiple of 10 from 10 to 10080 (one week), as Mackerel's interruption monitoring requires."
  }
}
