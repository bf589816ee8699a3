# Mackerel side of sfn-mackerel: the service the results land in, one failure
# monitor per job, and a missing-data monitor on the pipeline's own figures.

resource "mackerel_service" "results" {
  count = var.create_service ? 1 : 0
  name  = var.service_name
  memo  = var.service_memo
}

locals {
  # Refer to the service through the resource when it is created here, so the
  # monitors wait for it.
  service_name = var.create_service ? mackerel_service.results[0].name : var.service_name
}

# The graph is <job>.failed, at the job's own time. The monitor watches
# <job>.alert, which the consumer writes when it delivers: 1 when a failure
# arrives (so it is evaluated even when it arrives after newer points), then the
# status of the job's newest run. So the newest point alone decides (duration 1);
# README: "Every failure alerts".
resource "mackerel_monitor" "job_failed" {
  for_each = toset(var.job_names)

  name                  = "${var.metric_prefix}.${each.key} failed"
  memo                  = "The Glue job ${each.key} failed (its workflow sent ${var.metric_prefix}.${each.key}.failed = 1; the graph of that series shows when). The message's \"error\" and \"execution\" fields, in the queue or the workflow's history, tell which run. Closes when a newer run of the job succeeds."
  notification_interval = var.notification_interval

  service_metric {
    service            = local.service_name
    metric             = "${var.metric_prefix}.${each.key}.alert"
    operator           = ">"
    critical           = 0
    duration           = 1
    max_check_attempts = 1
  }
}

# A workflow's own status, from its Execution Status Change events (the pipeline
# module's workflow_events): <workflow prefix>.<state machine>.failed is a status
# like a job's, so the consumer writes its .alert series too and the same rule
# holds: the newest point alone decides.
resource "mackerel_monitor" "workflow_failed" {
  for_each = toset(var.workflow_names)

  name                  = "${var.workflow_metric_prefix}.${each.key} failed"
  memo                  = "An execution of the state machine ${each.key} failed, timed out or was aborted (its Execution Status Change event set ${var.workflow_metric_prefix}.${each.key}.failed = 1; the graph of that series and of .seconds shows when and how long). The execution history says which state failed. Closes when a newer execution succeeds."
  notification_interval = var.notification_interval

  service_metric {
    service            = local.service_name
    metric             = "${var.workflow_metric_prefix}.${each.key}.alert"
    operator           = ">"
    critical           = 0
    duration           = 1
    max_check_attempts = 1
  }
}

# <job>.skipped = 1 says a run did not start because the job's previous run was
# still going (an overlapping execution): worth a warning, never a page.
resource "mackerel_monitor" "job_skipped" {
  for_each = var.skipped_warning ? toset(var.job_names) : toset([])

  name                  = "${var.metric_prefix}.${each.key} skipped"
  memo                  = "A run of the Glue job ${each.key} was skipped: an overlapping workflow execution's run was still going (Glue.ConcurrentRunsExceededException after the workflow's retries). Check how often the workflow starts against how long the job runs."
  notification_interval = var.notification_interval

  service_metric {
    service            = local.service_name
    metric             = "${var.metric_prefix}.${each.key}.skipped"
    operator           = ">"
    warning            = 0
    duration           = 1
    max_check_attempts = 1
  }
}

# The consumer posts <prefix>.values_posted for every batch it handles. No figure
# for missing_data_minutes means results stopped arriving: workflows stopped
# sending, or the queue, the function or the Mackerel key broke. The monitor
# relies only on whether figures arrive, never on their value: concurrent Lambda
# instances each post their own totals for a minute and overwrite each other, so
# a value can show one instance's share of the minute (README: "The pipeline's
# own figures").
resource "mackerel_monitor" "pipeline_silent" {
  count = var.pipeline_metrics_service == null ? 0 : 1

  name                  = "sfn-mackerel: no results for ${var.missing_data_minutes} minutes"
  memo                  = "No batch reached Mackerel for ${var.missing_data_minutes} minutes. Check the workflows' executions, the results queue's age alarm, the DLQ and the consumer's logs."
  notification_interval = var.notification_interval

  service_metric {
    # Through local.service_name when it is the service created above, to wait for it.
    service                   = var.pipeline_metrics_service == var.service_name ? local.service_name : var.pipeline_metrics_service
    metric                    = "${var.pipeline_metrics_prefix}.values_posted"
    operator                  = ">"
    duration                  = 1
    max_check_attempts        = 1
    missing_duration_critical = var.missing_data_minutes
  }
}
