# Least privilege for the consumer, and a policy for the producers (state machines).
# Every statement names its resource; no wildcard resource is needed here.

data "aws_iam_policy_document" "consumer_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    # No aws:SourceAccount / aws:SourceArn condition: AWS documents the execution
    # role's trust policy without one
    # (https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html)
    # and does not say that Lambda or the event source mapping's poller sends
    # either key when it assumes the role; a condition on a key that is not sent
    # denies, and the function could not start. A role cannot be passed across
    # accounts (iam:PassRole), which is what the condition would guard against.
  }
}

resource "aws_iam_role" "consumer" {
  name               = "${local.function_name}-role"
  assume_role_policy = data.aws_iam_policy_document.consumer_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "consumer" {
  statement {
    sid = "DrainResultsQueue"
    # What an SQS event source mapping needs; the consumer never sends to this queue.
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.results.arn]
  }

  statement {
    sid = "ParkBadMessages"
    # SendMessageBatch is authorised as sqs:SendMessage.
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "ReadMackerelApiKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.mackerel_api_key.arn]
  }

  statement {
    sid = "WriteOwnLogs"
    # The log group exists already (lambda.tf), so no logs:CreateLogGroup.
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.consumer.arn}:*"]
  }
}

resource "aws_iam_role_policy" "consumer" {
  name   = "consume-results"
  role   = aws_iam_role.consumer.id
  policy = data.aws_iam_policy_document.consumer.json
}

# What a producer (a Step Functions role, the `sfn-mackerel send` CLI's caller) needs
# to send results: SendMessage on the results queue, nothing else. The queue uses
# SSE-SQS, so no KMS permission is involved.
data "aws_iam_policy_document" "producer" {
  statement {
    sid       = "SendJobResults"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.results.arn]
  }
}

resource "aws_iam_policy" "producer" {
  name        = "${var.name}-send-results"
  description = "Send job results to the ${local.queue_name} queue (sfn-mackerel producers)."
  policy      = data.aws_iam_policy_document.producer.json
  tags        = local.tags
}
