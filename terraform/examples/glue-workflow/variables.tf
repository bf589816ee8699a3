variable "region" {
  description = "AWS region of the pipeline and the workflow."
  type        = string
  default     = "ap-northeast-1"
}

variable "name" {
  description = "Prefix of the pipeline's resource names."
  type        = string
  default     = "sfn-mackerel"
}

variable "glue_jobs" {
  description = "The Glue jobs the workflow runs in parallel, by their real names (the metric names use them, as Glue's own events do). Adding a job is adding its name here: its workflow branch and Mackerel monitor follow, and its Glue job too when create_glue_jobs is true."
  type        = list(string)
  default     = ["make_rawdata", "make_alarm", "make_order"]

  validation {
    condition     = length(var.glue_jobs) > 0 && length(distinct(var.glue_jobs)) == length(var.glue_jobs) && alltrue([for job in var.glue_jobs : can(regex("^[a-zA-Z0-9_-]{1,60}$", job))])
    error_message = "glue_jobs must be distinct names of 1 to 60 letters, digits, '_' and '-' (they become state and metric names)."
  }
}

variable "create_glue_jobs" {
  description = "Create the Glue jobs named in glue_jobs (with a role that reads their scripts). false runs jobs that exist already under those names, which is how to apply next to an account's own jobs: the example creates nothing Glue then."
  type        = bool
  default     = true
}

variable "glue_script_s3_prefix" {
  description = "Where the created jobs' scripts are: job <name> runs <prefix><name>.py, e.g. s3://my-bucket/glue-scripts/ for s3://my-bucket/glue-scripts/make_order.py. Required when create_glue_jobs is true."
  type        = string
  default     = null

  validation {
    condition     = var.glue_script_s3_prefix == null || can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(.*/)?$", var.glue_script_s3_prefix))
    error_message = "glue_script_s3_prefix must look like s3://bucket/ or s3://bucket/some/path/ (ending with '/')."
  }
}

variable "overlapping_run_retry" {
  description = "When a job's run is still going from an overlapping execution (Glue.ConcurrentRunsExceededException), how often the workflow tries again before it reports <prefix>.<job>.skipped = 1 (never failed: the job did not run). The waits are up to interval_seconds, then doubled each time (full jitter: a random part of each)."
  type = object({
    interval_seconds = number
    max_attempts     = number
  })
  default = {
    interval_seconds = 60
    max_attempts     = 3
  }

  validation {
    condition     = var.overlapping_run_retry.interval_seconds >= 1 && floor(var.overlapping_run_retry.interval_seconds) == var.overlapping_run_retry.interval_seconds && var.overlapping_run_retry.max_attempts >= 0 && var.overlapping_run_retry.max_attempts <= 10 && floor(var.overlapping_run_retry.max_attempts) == var.overlapping_run_retry.max_attempts
    error_message = "overlapping_run_retry needs a whole interval_seconds >= 1 and a whole max_attempts from 0 to 10 (Step Functions' Retry fields)."
  }
}

variable "results_via" {
  description = "How each job's result reaches the pipeline: \"sendMessage\" (the workflow sends it: failed, seconds and skipped per job) or \"events\" (the workflow sends nothing; Glue's Job State Change events give <metric_prefix>.<job>.failed, and the execution's own Status Change events <workflow_metric_prefix>.<state machine>.failed and .seconds, through the pipeline's EventBridge rules). See terraform/README.md, \"Reporting through events\"."
  type        = string
  default     = "sendMessage"

  validation {
    condition     = contains(["sendMessage", "events"], var.results_via)
    error_message = "results_via must be \"sendMessage\" or \"events\"."
  }
}

variable "workflow_metric_prefix" {
  description = "Prefix of the workflow's own series from its Execution Status Change events (results_via = \"events\"): <prefix>.<state machine>.failed and .seconds. Must differ from metric_prefix."
  type        = string
  default     = "prd.sfn.workflow"

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]+$", var.workflow_metric_prefix))
    error_message = "workflow_metric_prefix must match [a-zA-Z0-9._-]+ (Mackerel metric names)."
  }
}

variable "lambda_zip_path" {
  description = "The consumer's zip, from `cargo lambda build --release --arm64 --output-format zip` at the repository root."
  type        = string
  default     = "../../../target/lambda/sfn-mackerel-consumer/bootstrap.zip"
}

variable "batching_window_seconds" {
  description = "How long the consumer's event source mapping gathers results before a batch (fewer, larger posts to Mackerel)."
  type        = number
  default     = 20
}

variable "create_mackerel_service" {
  description = "Create the Mackerel service named mackerel_service. false (the default) uses one that exists already, so applying next to an organisation's services changes none of them; posting never creates a service, so create it first (here, or in Mackerel's console)."
  type        = bool
  default     = false
}

variable "skipped_warning_monitors" {
  description = "Also create a warning monitor per job on <prefix>.<job>.skipped (a run skipped because an overlapping execution's run was still going)."
  type        = bool
  default     = false
}

variable "mackerel_service" {
  description = "Mackerel service the job results go to (see create_mackerel_service)."
  type        = string
  default     = "glue-jobs"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,62}$", var.mackerel_service))
    error_message = "mackerel_service must be 2 to 63 characters of letters, digits, '-' and '_', not starting with '-' or '_'."
  }
}

variable "metric_prefix" {
  description = "Metric name prefix: <prefix>.<job>.failed and <prefix>.<job>.seconds (results_via = \"events\": <prefix>.<job>.failed, the same series)."
  type        = string
  default     = "prd.glue.job"

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]+$", var.metric_prefix))
    error_message = "metric_prefix must match [a-zA-Z0-9._-]+ (Mackerel metric names)."
  }
}

variable "mackerel_api_base" {
  description = "Mackerel API base URL, for both the provider and the consumer."
  type        = string
  default     = "https://api.mackerelio.com"
}

variable "missing_data_minutes" {
  description = "Critical when no result reached Mackerel for this long; above the workflow's normal interval (1500 = a daily run plus an hour)."
  type        = number
  default     = 1500
}

variable "alarm_email" {
  description = "Email subscribed to the CloudWatch alarms' topic (confirm the subscription mail); null for none."
  type        = string
  default     = null
}

variable "secret_name" {
  description = "Name of the Secrets Manager secret for the Mackerel API key (null: \"<name>/mackerel-api-key\"). After a destroy, a secret of the same name is only scheduled for deletion for secret_recovery_window_days: to apply again within them, restore it (aws secretsmanager restore-secret) or choose another name."
  type        = string
  default     = null
}

variable "secret_recovery_window_days" {
  description = "Days a destroyed secret can still be restored (0 deletes it at once, so that the same name can be applied again right away)."
  type        = number
  default     = 7
}
