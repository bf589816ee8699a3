# The workflow's role: run and watch the named Glue jobs, send results to the
# pipeline's queue (the module's producer policy; only with results_via =
# "sendMessage": the events variant sends nothing), write its own execution logs.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "workflow_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "workflow" {
  name               = "${var.name}-glue-workflow"
  assume_role_policy = data.aws_iam_policy_document.workflow_assume.json
}

data "aws_iam_policy_document" "workflow" {
  statement {
    sid = "RunGlueJobs"
    # startJobRun.sync starts the run, polls it, and stops it when the execution
    # is stopped or times out.
    actions   = ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]
    # By name, so existing jobs (create_glue_jobs = false) are covered too.
    resources = formatlist("arn:%s:glue:%s:%s:job/%s", data.aws_partition.current.partition, var.region, data.aws_caller_identity.current.account_id, var.glue_jobs)
  }

  statement {
    sid = "DeliverExecutionLogs"
    # CloudWatch Logs delivery for Step Functions: these actions take no resource
    # ARN, so AWS documents "*" for them.
    actions = [
      "logs:CreateLogDelivery",
      "logs:GetLogDelivery",
      "logs:UpdateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:DescribeResourcePolicies",
      "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "workflow" {
  name   = "run-glue-jobs"
  role   = aws_iam_role.workflow.id
  policy = data.aws_iam_policy_document.workflow.json
}

resource "aws_iam_role_policy_attachment" "workflow_sends_results" {
  count      = local.via_events ? 0 : 1
  role       = aws_iam_role.workflow.name
  policy_arn = module.pipeline.producer_policy_arn
}

# Deployments made before results_via keep their attachment.
moved {
  from = aws_iam_role_policy_attachment.workflow_sends_results
  to   = aws_iam_role_policy_attachment.workflow_sends_results[0]
}
