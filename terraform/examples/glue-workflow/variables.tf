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
  description = "The Glue jobs the workflow runs in parallel. Adding a job is adding its name here: its Glue job, workflow branch and Mackerel monitor follow."
  type        = list(string)
  default     = ["make_rawdata", "make_alarm", "make_order"]

  validation {
    condition     = length(var.glue_jobs) > 0 && length(distinct(var.glue_jobs)) == length(var.glue_jobs) && alltrue([for job in var.glue_jobs : can(regex("^[a-zA-Z0-9_-]{1,60}$", job))])
    error_message = "glue_jobs must be distinct names of 1 to 60 letters, digits, '_' and '-' (they become Glue job, state and metric names)."
  }
}

variable "glue_script_s3_prefix" {
  description = "Where the jobs' scripts are: job <name> runs <prefix><name>.py, e.g. s3://my-bucket/glue-scripts/ for s3://my-bucket/glue-scripts/make_order.py."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(.*/)?$", var.glue_script_s3_prefix))
    error_message = "glue_script_s3_prefix must look like s3://bucket/ or s3://bucket/some/path/ (ending with '/')."
  }
}

variable "lambda_zip_path" {
  description = "The consumer's zip, from `cargo lambda build --release --arm64 --output-format zip` at the repository root."
  type        = string
  default     = "../../../target/lambda/sfn-mackerel-consumer/bootstrap.zip"
}

variable "batching_window_seconds" {
  description = "How long the consumer's event source mapping gathers results before a batch; the failure monitors' duration follows from it."
  type        = number
  default     = 20
}

variable "mackerel_service" {
  description = "Mackerel service the job results go to (created here)."
  type        = string
  default     = "glue-jobs"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,62}$", var.mackerel_service))
    error_message = "mackerel_service must be 2 to 63 characters of letters, digits, '-' and '_', not starting with '-' or '_'."
  }
}

variable "metric_prefix" {
  description = "Metric name prefix: <prefix>.<job>.failed and <prefix>.<job>.seconds."
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
