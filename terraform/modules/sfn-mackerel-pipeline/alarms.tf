# CloudWatch alarms for the AWS half of the pipeline. Mackerel's own monitors
# (modules/mackerel-job-monitors) watch the other half: values that stop arriving.

resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed aws/sns key; encryption needs a customer-managed key whose policy admits cloudwatch.amazonaws.com. Pass your own encrypted topic through alarm_actions instead when you need one.
  count = var.create_alarm_topic ? 1 : 0
  name  = "${var.name}-alarms"
  tags  = local.tags
}

# Anything in the DLQ is a result that did not reach Mackerel.
resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Job results are parked in ${local.dlq_name}: they did not reach Mackerel. `sfn-mackerel dlq peek` says why (the Reason attribute, or ERROR_CODE for an event EventBridge could not deliver); fix, then redrive to ${local.queue_name}."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  # SQS stops publishing a queue's metrics when nothing has touched it for about
  # six hours, even while it holds messages. "ignore" keeps the alarm's last
  # state through such gaps: an alarm raised for parked messages stays raised
  # while they sit there ageing towards Mackerel's 24 hours, instead of turning
  # OK ("notBreaching") and telling the operator all is well. "breaching" would
  # fire on an empty, idle DLQ every six hours.
  treat_missing_data = "ignore"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions
  tags               = local.tags
}

# Results waiting too long: the consumer is failing, throttled or disabled.
resource "aws_cloudwatch_metric_alarm" "oldest_result_age" {
  alarm_name          = "${var.name}-results-too-old"
  alarm_description   = "The oldest job result in ${local.queue_name} has waited more than ${var.oldest_message_age_alarm_seconds}s. Check the ${local.function_name} function and its event source mapping. Mackerel drops values older than 24 hours."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.results.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  datapoints_to_alarm = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.oldest_message_age_alarm_seconds
  # As for the DLQ: a results queue that nothing polls (the mapping disabled)
  # still holds its messages when SQS stops reporting it; keep the last state.
  treat_missing_data = "ignore"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

# An error here is a whole failed batch (returned error, panic, timeout): every
# message of it comes back and uses up a receive.
resource "aws_cloudwatch_metric_alarm" "function_errors" {
  alarm_name          = "${var.name}-consumer-errors"
  alarm_description   = "The ${local.function_name} function failed whole batches. See its log group ${local.log_group_name}."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.consumer.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}
