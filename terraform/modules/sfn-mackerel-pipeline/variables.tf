variable "name" {
  description = "Prefix of every resource name (queues, function, role, secret, alarms)."
  type        = string
  default     = "sfn-mackerel"

  validation {
    # Derived names add up to 14 characters ("<name>-consumer-role") and IAM role
    # names stop at 64; 40 leaves room for a longer suffix later.
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", var.name))
    error_message = "name must be 1 to 40 characters of letters, digits, '-' and '_', starting with a letter or digit."
  }
}

variable "lambda_zip_path" {
  description = "Path to the consumer's deployment package, built with `cargo lambda build --release --arm64 --output-format zip` (target/lambda/sfn-mackerel-consumer/bootstrap.zip)."
  type        = string

  validation {
    condition     = endswith(var.lambda_zip_path, ".zip") && fileexists(var.lambda_zip_path)
    error_message = "lambda_zip_path must name an existing .zip. Build it first: cargo lambda build --release --arm64 --output-format zip (it writes target/lambda/sfn-mackerel-consumer/bootstrap.zip)."
  }
}

variable "function_timeout_seconds" {
  description = "Consumer timeout. Bounds the Mackerel retries of one batch; the queue's visibility timeout is derived from it (6 x timeout + batching window)."
  type        = number
  default     = 60

  validation {
    condition     = var.function_timeout_seconds >= 10 && var.function_timeout_seconds <= 900 && floor(var.function_timeout_seconds) == var.function_timeout_seconds
    error_message = "function_timeout_seconds must be a whole number from 10 (room for one retried Mackerel post) to 900 (Lambda's maximum)."
  }
}

variable "memory_size_mb" {
  description = "Consumer memory in MB; 128 is plenty for batches of small JSON messages."
  type        = number
  default     = 128

  validation {
    condition     = var.memory_size_mb >= 128 && var.memory_size_mb <= 10240
    error_message = "memory_size_mb must be between 128 and 10240 (Lambda's limits)."
  }
}

variable "batch_size" {
  description = "Most messages per invocation. Larger batches mean fewer, larger Mackerel posts (Mackerel asks for few requests per minute): the consumer makes about one request per service per batch. 1000 results of ~200 bytes are ~200 KB, far under Lambda's 6 MB payload; the consumer handles 10,000 in ~30 MB."
  type        = number
  default     = 1000

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000 && floor(var.batch_size) == var.batch_size
    error_message = "batch_size must be a whole number from 1 to 10000 (the SQS event source mapping limit for standard queues)."
  }
}

variable "maximum_batching_window_seconds" {
  description = "How long the poller gathers messages before invoking. Required (>= 1) when batch_size is above 10. Also sets the Mackerel monitors' delay."
  type        = number
  default     = 20

  validation {
    condition     = var.maximum_batching_window_seconds >= 0 && var.maximum_batching_window_seconds <= 300 && floor(var.maximum_batching_window_seconds) == var.maximum_batching_window_seconds
    error_message = "maximum_batching_window_seconds must be a whole number from 0 to 300."
  }
}

variable "maximum_concurrency" {
  description = "Most concurrent consumer invocations for this queue (event source mapping scaling_config). Keeps Mackerel posts few and the function out of throttling."
  type        = number
  default     = 2

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000 && floor(var.maximum_concurrency) == var.maximum_concurrency
    error_message = "maximum_concurrency must be a whole number from 2 to 1000 (the event source mapping's limits)."
  }
}

variable "max_receive_count" {
  description = "Receives before SQS moves a message to the DLQ."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 5 && var.max_receive_count <= 1000 && floor(var.max_receive_count) == var.max_receive_count
    error_message = "max_receive_count must be a whole number from 5 to 1000: AWS recommends at least 5 for Lambda sources, so that a throttled or retried batch does not send good messages to the DLQ."
  }
}

variable "mackerel_api_base" {
  description = "Mackerel API base URL; another endpoint (e.g. https://kcps-mackerel.io) for some organisations."
  type        = string
  default     = "https://api.mackerelio.com"

  validation {
    condition     = can(regex("^https://[^/\\s]+/?$", var.mackerel_api_base))
    error_message = "mackerel_api_base must be an https:// URL with no path, e.g. https://api.mackerelio.com."
  }
}

variable "merge_rule" {
  description = "How the consumer merges values for the same metric in the same minute: max (a failure in the minute wins), last, sum or min."
  type        = string
  default     = "max"

  validation {
    condition     = contains(["max", "last", "sum", "min"], var.merge_rule)
    error_message = "merge_rule must be one of max, last, sum, min."
  }
}

variable "pipeline_metrics_service" {
  description = "Mackerel service for the consumer's own per-batch figures (<prefix>.values_posted, ...), which the missing-data monitor watches. null turns them off."
  type        = string
  default     = null

  validation {
    condition     = var.pipeline_metrics_service == null || can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,62}$", var.pipeline_metrics_service))
    error_message = "pipeline_metrics_service must be a Mackerel service name: 2 to 63 characters of letters, digits, '-' and '_', not starting with '-' or '_'."
  }
}

variable "pipeline_metrics_prefix" {
  description = "Prefix of the consumer's own metric names."
  type        = string
  default     = "sfn_mackerel"

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]+$", var.pipeline_metrics_prefix))
    error_message = "pipeline_metrics_prefix must match [a-zA-Z0-9._-]+ (Mackerel metric names)."
  }
}

variable "extra_environment" {
  description = "More consumer settings, e.g. { MAX_REQUEST_BYTES = \"65536\", MACKEREL_MAX_ATTEMPTS = \"5\", SERVICE_CONCURRENCY = \"4\", MAX_FUTURE_SECONDS = \"600\" }. The variables this module sets win over these."
  type        = map(string)
  default     = {}

  validation {
    condition     = !contains(keys(var.extra_environment), "MACKEREL_API_KEY")
    error_message = "Do not pass MACKEREL_API_KEY: it would be stored in the Terraform state and the function's configuration. Put the key in the module's secret (output secret_arn) with aws secretsmanager put-secret-value."
  }
}

variable "log_level" {
  description = "Consumer application log level (AWS_LAMBDA_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "log_retention_days" {
  description = "Retention of the consumer's log group, in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "secret_name" {
  description = "Name of the Secrets Manager secret holding the Mackerel API key; default \"<name>/mackerel-api-key\"."
  type        = string
  default     = null

  validation {
    condition     = var.secret_name == null || can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", var.secret_name))
    error_message = "secret_name may contain only letters, digits and /_+=.@- (at most 512 characters)."
  }
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once)."
  type        = number
  default     = 7

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "oldest_message_age_alarm_seconds" {
  description = "Alarm when the oldest result has waited this long in the queue."
  type        = number
  default     = 900

  validation {
    condition     = var.oldest_message_age_alarm_seconds >= 60 && var.oldest_message_age_alarm_seconds < 86400
    error_message = "oldest_message_age_alarm_seconds must be from 60 to under 86400: Mackerel discards values older than 24 hours, so alarm well before that."
  }
}

variable "create_alarm_topic" {
  description = "Create an SNS topic (output alarm_topic_arn) that every alarm notifies; subscribe to it yourself."
  type        = bool
  default     = false
}

variable "alarm_actions" {
  description = "ARNs (SNS topics, ...) notified when an alarm fires or clears, in addition to the optional topic."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.alarm_actions : startswith(arn, "arn:")])
    error_message = "alarm_actions must be ARNs (arn:...)."
  }
}

variable "tags" {
  description = "Tags for every resource that takes them."
  type        = map(string)
  default     = {}
}

# --- Results from AWS's own EventBridge events (events.tf) -----------------------

variable "glue_job_events" {
  description = "Deliver Glue Job State Change events to the results queue: each run's end becomes <glue_job_metric_prefix>.<job>.failed (1 for FAILED, TIMEOUT and ERROR, 0 for SUCCEEDED, STOPPED as glue_stopped_as says), at the time of the event, with no workflow edited. Needs event_service or event_services."
  type        = bool
  default     = false
}

variable "glue_job_names" {
  description = "Only these Glue jobs' events (exact names). With glue_job_name_prefixes: a job matching either. Both empty: every job of the account and region. The rule's pattern holds these names, and EventBridge allows 2048 characters per pattern by default: for many jobs, use prefixes."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.glue_job_names : length(name) >= 1 && length(name) <= 255])
    error_message = "glue_job_names must be Glue job names: 1 to 255 characters each."
  }
}

variable "glue_job_name_prefixes" {
  description = "Only the events of Glue jobs whose names start with one of these (an EventBridge prefix match), in addition to glue_job_names."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for prefix in var.glue_job_name_prefixes : length(prefix) >= 1 && length(prefix) <= 255])
    error_message = "glue_job_name_prefixes must be non-empty prefixes of Glue job names (an empty prefix would match every job: leave both lists empty for that)."
  }
}

variable "workflow_events" {
  description = "Deliver Step Functions Execution Status Change events (Standard workflows; RUNNING left out) to the results queue: each execution's end becomes <workflow_metric_prefix>.<state machine>.failed (1 for FAILED, TIMED_OUT and ABORTED, 0 for SUCCEEDED) and .seconds (its duration), at its stop time. Needs event_service or event_services."
  type        = bool
  default     = false
}

variable "state_machine_arns" {
  description = "Only these state machines' executions. Empty: every Standard state machine of the account and region."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.state_machine_arns : can(regex("^arn:[a-z-]+:states:[a-z0-9-]+:[0-9]{12}:stateMachine:[^:]+$", arn))])
    error_message = "state_machine_arns must be state machine ARNs (arn:<partition>:states:<region>:<account>:stateMachine:<name>), not execution or alias ARNs."
  }
}

variable "event_retry_max_age_seconds" {
  description = "How long EventBridge keeps trying to deliver an event to the results queue before it puts it in the DLQ (the target's retry policy). Default an hour: EventBridge's own 24 hours would outlast Mackerel's, which drops values older than 24 hours; after an hour the DLQ alarm fires and leaves most of a day to fix the cause and redrive."
  type        = number
  default     = 3600

  validation {
    condition     = var.event_retry_max_age_seconds >= 60 && var.event_retry_max_age_seconds <= 86400 && floor(var.event_retry_max_age_seconds) == var.event_retry_max_age_seconds
    error_message = "event_retry_max_age_seconds must be a whole number from 60 to 86400 (EventBridge's limits)."
  }
}

variable "event_retry_attempts" {
  description = "Most delivery retries of one event (the target's retry policy) within event_retry_max_age_seconds."
  type        = number
  default     = 185

  validation {
    condition     = var.event_retry_attempts >= 0 && var.event_retry_attempts <= 185 && floor(var.event_retry_attempts) == var.event_retry_attempts
    error_message = "event_retry_attempts must be a whole number from 0 to 185 (EventBridge's limits)."
  }
}

variable "event_service" {
  description = "Mackerel service every event's values go to (the consumer's EVENT_SERVICE). Or event_services for a service per name; not both. null with both switches off: events are not configured."
  type        = string
  default     = null

  validation {
    condition     = var.event_service == null || can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,62}$", var.event_service))
    error_message = "event_service must be a Mackerel service name: 2 to 63 characters of letters, digits, '-' and '_', not starting with '-' or '_'."
  }
}

variable "event_services" {
  description = "A Mackerel service per job or state machine name (the consumer's EVENT_SERVICES): the first entry whose pattern matches the name wins; `*` in names matches any run of characters, e.g. [{ names = \"team-a-*\", service = \"team-a\" }, { names = \"*\", service = \"data\" }]. A name no entry matches is set aside in the DLQ as event_not_covered. Not together with event_service."
  type = list(object({
    names   = string
    service = string
  }))
  default = []

  validation {
    condition     = alltrue([for route in var.event_services : length(route.names) > 0 && can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{1,62}$", route.service))])
    error_message = "Each event_services entry needs a non-empty names pattern (\"*\" for every name) and a Mackerel service name: 2 to 63 characters of letters, digits, '-' and '_', not starting with '-' or '_'."
  }
}

variable "glue_job_metric_prefix" {
  description = "Prefix of the Glue jobs' series (the consumer's EVENT_GLUE_PREFIX): <prefix>.<job>.failed. Use the prefix your workflows' messages use (the example's metric_prefix), so both paths write the same series and the same monitors watch them."
  type        = string
  default     = "glue.job"

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]+$", var.glue_job_metric_prefix))
    error_message = "glue_job_metric_prefix must match [a-zA-Z0-9._-]+ (Mackerel metric names)."
  }
}

variable "workflow_metric_prefix" {
  description = "Prefix of the state machines' series (the consumer's EVENT_WORKFLOW_PREFIX): <prefix>.<state machine>.failed and .seconds. Must differ from glue_job_metric_prefix, so a job and a state machine of the same name never share a series."
  type        = string
  default     = "sfn.workflow"

  validation {
    condition     = can(regex("^[a-zA-Z0-9._-]+$", var.workflow_metric_prefix))
    error_message = "workflow_metric_prefix must match [a-zA-Z0-9._-]+ (Mackerel metric names)."
  }
}

variable "glue_stopped_as" {
  description = "What a Glue run that ended STOPPED reports (the consumer's EVENT_STOPPED_AS): failed (the default: a stopped run did not deliver its data; Step Functions stops a job's run when its execution is aborted or times out) or succeeded, for teams that stop runs on purpose."
  type        = string
  default     = "failed"

  validation {
    condition     = contains(["failed", "succeeded"], var.glue_stopped_as)
    error_message = "glue_stopped_as must be failed or succeeded."
  }
}
