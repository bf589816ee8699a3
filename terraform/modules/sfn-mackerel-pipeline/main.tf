# sfn-mackerel pipeline: the queue that Step Functions workflows send job results to,
# the consumer Lambda that posts them to Mackerel, and what keeps it observable.
# Resources are split by concern: sqs.tf, lambda.tf, secret.tf, iam.tf, alarms.tf,
# and events.tf (results from AWS's own EventBridge events, off by default).

locals {
  queue_name     = "${var.name}-results"
  dlq_name       = "${var.name}-results-dlq"
  function_name  = "${var.name}-consumer"
  log_group_name = "/aws/lambda/${local.function_name}"
  secret_name    = coalesce(var.secret_name, "${var.name}/mackerel-api-key")

  # AWS: a queue feeding a Lambda needs a visibility timeout of at least six times
  # the function timeout, plus the batching window (messages wait in the poller
  # while a batch fills). Shorter, and in-flight messages reappear while the first
  # invocation still works on them.
  visibility_timeout_seconds = 6 * var.function_timeout_seconds + var.maximum_batching_window_seconds

  # A message must be able to use all its receives before it expires, or it
  # vanishes instead of reaching the DLQ. Beyond that, Mackerel silently drops
  # values older than 24 hours, so keeping results longer than a day gains
  # nothing: a day, unless the receive attempts need more (capped at SQS's 14 days).
  minimum_retention_seconds = var.max_receive_count * local.visibility_timeout_seconds + 3600
  retention_seconds         = min(1209600, max(86400, local.minimum_retention_seconds))

  # The DLQ keeps a message's original enqueue time, so it must outlive the source.
  dlq_retention_seconds = 1209600

  alarm_actions = concat(var.alarm_actions, aws_sns_topic.alarms[*].arn)

  tags = merge({ "sfn-mackerel:pipeline" = var.name }, var.tags)
}
