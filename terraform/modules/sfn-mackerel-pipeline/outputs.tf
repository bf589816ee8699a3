output "queue_url" {
  description = "URL of the results queue: the QueueUrl producers send to."
  value       = aws_sqs_queue.results.url
}

output "queue_arn" {
  description = "ARN of the results queue."
  value       = aws_sqs_queue.results.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue (parked results)."
  value       = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "function_name" {
  description = "Name of the consumer Lambda."
  value       = aws_lambda_function.consumer.function_name
}

output "function_arn" {
  description = "ARN of the consumer Lambda."
  value       = aws_lambda_function.consumer.arn
}

output "log_group_name" {
  description = "The consumer's log group."
  value       = aws_cloudwatch_log_group.consumer.name
}

output "secret_arn" {
  description = "Secret to put the Mackerel API key into (aws secretsmanager put-secret-value --secret-id <this>)."
  value       = aws_secretsmanager_secret.mackerel_api_key.arn
}

output "producer_policy_arn" {
  description = "Managed policy to attach to a state machine's role (or any producer): sqs:SendMessage on the results queue."
  value       = aws_iam_policy.producer.arn
}

output "producer_policy_json" {
  description = "The same permission as a policy document, for an inline policy."
  value       = data.aws_iam_policy_document.producer.json
}

output "alarm_topic_arn" {
  description = "The alarms' SNS topic, when create_alarm_topic is true; null otherwise."
  value       = one(aws_sns_topic.alarms[*].arn)
}

output "visibility_timeout_seconds" {
  description = "The results queue's visibility timeout, derived from the function timeout and batching window."
  value       = local.visibility_timeout_seconds
}

output "glue_job_event_rule_arn" {
  description = "The EventBridge rule delivering Glue Job State Change events to the results queue; null when glue_job_events is off."
  value       = try(aws_cloudwatch_event_rule.events["glue_jobs"].arn, null)
}

output "workflow_event_rule_arn" {
  description = "The EventBridge rule delivering Step Functions Execution Status Change events to the results queue; null when workflow_events is off."
  value       = try(aws_cloudwatch_event_rule.events["workflows"].arn, null)
}
