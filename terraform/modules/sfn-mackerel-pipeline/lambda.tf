# The consumer function, its log group, and the event source mapping that feeds it.

resource "aws_cloudwatch_log_group" "consumer" {
  #checkov:skip=CKV_AWS_158:Logs are encrypted by CloudWatch Logs by default; they hold message ids, counts and error reasons, never the API key. A customer-managed key would need a key policy for the logs service.
  #checkov:skip=CKV_AWS_338:These are operational logs of a metrics forwarder; retention is a variable (default 30 days) so operators pick their own compliance period.
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_lambda_function" "consumer" {
  #checkov:skip=CKV_AWS_115:Concurrency is capped by the event source mapping's scaling_config.maximum_concurrency; reserved concurrency alone makes the SQS pollers outrun the function, throttles batches and pushes good messages to the DLQ (README: "Why maximum_concurrency").
  #checkov:skip=CKV_AWS_116:A Lambda DLQ applies to asynchronous invocations; SQS event source mappings invoke synchronously. Failed messages go to the queue's DLQ (redrive policy) and the consumer parks bad ones there itself.
  #checkov:skip=CKV_AWS_117:The function calls the public Mackerel API; inside a VPC it would need a NAT gateway and gains nothing, as it reaches no private resource.
  #checkov:skip=CKV_AWS_173:The environment holds no secret (the API key stays in Secrets Manager, referenced by id), so a customer-managed key for it protects nothing.
  #checkov:skip=CKV_AWS_272:The zip is built by cargo lambda in the user's pipeline; code signing needs an AWS Signer profile that this module cannot assume exists.
  #checkov:skip=CKV_AWS_50:The consumer emits no X-Ray segments; tracing would only add xray:Put* permissions on "*" (those actions cannot be scoped to a resource).
  function_name = local.function_name
  description   = "Posts job results from ${local.queue_name} to Mackerel service metrics."
  role          = aws_iam_role.consumer.arn

  # Built with `cargo lambda build --release --arm64 --output-format zip`
  # (target/lambda/sfn-mackerel-consumer/bootstrap.zip).
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = ["arm64"]
  timeout          = var.function_timeout_seconds
  memory_size      = var.memory_size_mb

  logging_config {
    log_format            = "JSON"
    log_group             = aws_cloudwatch_log_group.consumer.name
    application_log_level = var.log_level
    system_log_level      = "WARN"
  }

  environment {
    variables = merge(
      var.extra_environment,
      {
        MACKEREL_API_KEY_SECRET_ID = aws_secretsmanager_secret.mackerel_api_key.arn
        MACKEREL_API_BASE          = var.mackerel_api_base
        DLQ_URL                    = aws_sqs_queue.dlq.url
        MERGE_RULE                 = var.merge_rule
      },
      var.pipeline_metrics_service == null ? {} : {
        PIPELINE_METRICS_SERVICE = var.pipeline_metrics_service
        PIPELINE_METRICS_PREFIX  = var.pipeline_metrics_prefix
      },
      # How EventBridge events map to series (events.tf), set whenever a service
      # for them is given: with a switch off the settings change nothing, and an
      # event that arrives anyway (a rule of your own) is mapped, not parked.
      var.event_service == null ? {} : { EVENT_SERVICE = var.event_service },
      length(var.event_services) == 0 ? {} : { EVENT_SERVICES = jsonencode(var.event_services) },
      local.events_mapped ? {
        EVENT_GLUE_PREFIX     = var.glue_job_metric_prefix
        EVENT_WORKFLOW_PREFIX = var.workflow_metric_prefix
        EVENT_STOPPED_AS      = var.glue_stopped_as
      } : {},
    )
  }

  tags = local.tags

  # The consumer refuses both at its cold start; a plan should say so first.
  # (Terraform 1.5 has no cross-variable validation: preconditions instead.)
  lifecycle {
    precondition {
      condition     = var.event_service == null || length(var.event_services) == 0
      error_message = "Set event_service (one Mackerel service for every event) or event_services (a service per name pattern), not both."
    }
    # The consumer's rule (message/src/events.rs, prefixes_overlap): an escaped name
    # may begin with ".2f", so neither "<prefix>." may begin the other.
    precondition {
      condition     = !startswith("${var.glue_job_metric_prefix}.", "${var.workflow_metric_prefix}.") && !startswith("${var.workflow_metric_prefix}.", "${var.glue_job_metric_prefix}.")
      error_message = "glue_job_metric_prefix and workflow_metric_prefix must differ, and neither may be the other followed by a dot and more (x and x.y would let Glue job y/z and state machine 2fz write one series): change workflow_metric_prefix (e.g. prd.sfn.workflow)."
    }
  }

  # The role must be able to write logs before the first invocation.
  depends_on = [aws_iam_role_policy.consumer]
}

resource "aws_lambda_event_source_mapping" "results" {
  event_source_arn                   = aws_sqs_queue.results.arn
  function_name                      = aws_lambda_function.consumer.arn
  batch_size                         = var.batch_size
  maximum_batching_window_in_seconds = var.maximum_batching_window_seconds

  # The consumer returns the ids of the messages it could not deliver; only those
  # come back. Without this, the response is ignored and every message is deleted.
  function_response_types = ["ReportBatchItemFailures"]

  # Caps how many batches run at once. The pollers scale down to this instead of
  # invoking into a throttle, so throttling never burns receive counts.
  scaling_config {
    maximum_concurrency = var.maximum_concurrency
  }

  # Polled / invoked / failed / deleted / dropped event counts in CloudWatch.
  metrics_config {
    metrics = ["EventCount"]
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = var.batch_size <= 10 || var.maximum_batching_window_seconds >= 1
      error_message = "batch_size above 10 needs maximum_batching_window_seconds of at least 1 (an SQS event source mapping rule): raise the window or lower the batch size."
    }
  }

  # Creating the mapping checks that the role may receive from the queue.
  depends_on = [aws_iam_role_policy.consumer]
}
