# A complete deployment: the sfn-mackerel pipeline, the Glue jobs, the workflow that
# runs them and reports each job's result, and the Mackerel service and monitors.
# results_via chooses who reports: the workflow's sendMessage states (default), or
# AWS's own EventBridge events through the pipeline's rules, with a workflow that
# sends nothing.

locals {
  via_events = var.results_via == "events"
  # The state machine's name, which its own series (results_via = "events") carry.
  state_machine_name = "${var.name}-glue-workflow"
}

module "pipeline" {
  source = "../../modules/sfn-mackerel-pipeline"

  name                            = var.name
  lambda_zip_path                 = var.lambda_zip_path
  mackerel_api_base               = var.mackerel_api_base
  maximum_batching_window_seconds = var.batching_window_seconds
  # The consumer reports its own figures to the same service; the missing-data
  # monitor watches them.
  pipeline_metrics_service    = module.monitors.service_name
  create_alarm_topic          = var.alarm_email != null
  secret_name                 = var.secret_name
  secret_recovery_window_days = var.secret_recovery_window_days

  # results_via = "events": Glue's events for the example's jobs and this state
  # machine's execution events reach the queue. The Glue series get the prefix
  # the sendMessage states use, so both paths write <metric_prefix>.<job>.failed
  # and the same monitors watch them. The mapping is passed whatever the switches
  # say: with them off it changes nothing.
  glue_job_events        = local.via_events
  glue_job_names         = var.glue_jobs
  workflow_events        = local.via_events
  state_machine_arns     = [aws_sfn_state_machine.workflow.arn]
  event_service          = module.monitors.service_name
  glue_job_metric_prefix = var.metric_prefix
  workflow_metric_prefix = var.workflow_metric_prefix
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == null ? 0 : 1
  topic_arn = module.pipeline.alarm_topic_arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

module "monitors" {
  source = "../../modules/mackerel-job-monitors"

  service_name             = var.mackerel_service
  create_service           = var.create_mackerel_service
  skipped_warning          = var.skipped_warning_monitors
  metric_prefix            = var.metric_prefix
  job_names                = var.glue_jobs
  pipeline_metrics_service = var.mackerel_service
  missing_data_minutes     = var.missing_data_minutes
  # results_via = "events": the workflow's own status, from its execution events.
  workflow_names         = local.via_events ? [local.state_machine_name] : []
  workflow_metric_prefix = var.workflow_metric_prefix
}

locals {
  # templatefile() renders each job's branch, then the workflow around them, in the
  # variant results_via chooses; terraform/tests/render_asl.py does the same for
  # the offline checks.
  workflow_branches = [
    for job in var.glue_jobs : jsondecode(local.via_events ? templatefile("${path.module}/job-branch-events.asl.json.tftpl", {
      job_name                       = job
      partition                      = data.aws_partition.current.partition
      overlap_retry_interval_seconds = var.overlapping_run_retry.interval_seconds
      overlap_retry_max_attempts     = var.overlapping_run_retry.max_attempts
      }) : templatefile("${path.module}/job-branch.asl.json.tftpl", {
      job_name                       = job
      queue_url                      = module.pipeline.queue_url
      service                        = module.monitors.service_name
      metric_prefix                  = var.metric_prefix
      partition                      = data.aws_partition.current.partition
      overlap_retry_interval_seconds = var.overlapping_run_retry.interval_seconds
      overlap_retry_max_attempts     = var.overlapping_run_retry.max_attempts
    }))
  ]
  workflow_definition = local.via_events ? templatefile("${path.module}/workflow-events.asl.json.tftpl", {
    branches = jsonencode(local.workflow_branches)
    }) : templatefile("${path.module}/workflow.asl.json.tftpl", {
    branches = jsonencode(local.workflow_branches)
  })
}

resource "aws_cloudwatch_log_group" "workflow" {
  #checkov:skip=CKV_AWS_158:Execution logs are encrypted by CloudWatch Logs by default and carry job names and error names only; a customer-managed key would need a key policy for the logs service.
  #checkov:skip=CKV_AWS_338:Operational logs of an example workflow; 30 days is enough to investigate a failed run. Raise it to your compliance period.
  name              = "/aws/vendedlogs/states/${var.name}-glue-workflow"
  retention_in_days = 30
}

resource "aws_sfn_state_machine" "workflow" {
  #checkov:skip=CKV_AWS_284:X-Ray tracing would add xray:Put* permissions on "*" to the role and traces no code of ours (Glue and SQS calls are service integrations); the execution history and the ERROR-level log cover failures.
  name       = local.state_machine_name
  role_arn   = aws_iam_role.workflow.arn
  definition = local.workflow_definition

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.workflow.arn}:*"
    include_execution_data = true
    level                  = "ERROR"
  }

  # The jobs when they are created here (the ASL names them; it does not refer to the resources).
  depends_on = [aws_iam_role_policy.workflow, aws_iam_role_policy_attachment.workflow_sends_results, aws_glue_job.job]
}
