# The results queue, its dead-letter queue, and the policies that tie them together.
# Both policies are separate resources (not inline arguments) so that each queue can
# be created before the other refers to it, and changing one never replaces a queue.

resource "aws_sqs_queue" "results" {
  name                       = local.queue_name
  sqs_managed_sse_enabled    = true
  visibility_timeout_seconds = local.visibility_timeout_seconds
  message_retention_seconds  = local.retention_seconds
  # Long polling on receives made outside the event source mapping (the CLI, redrives).
  receive_wait_time_seconds = 20
  tags                      = local.tags
}

resource "aws_sqs_queue" "dlq" {
  name                      = local.dlq_name
  sqs_managed_sse_enabled   = true
  message_retention_seconds = local.dlq_retention_seconds
  tags                      = local.tags
}

# Messages that failed max_receive_count times move to the DLQ. The consumer also
# parks malformed messages there itself, with a Reason attribute.
resource "aws_sqs_queue_redrive_policy" "results" {
  queue_url = aws_sqs_queue.results.id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

# Only the results queue may use this DLQ.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.results.arn]
  })
}
