# Results from AWS's own EventBridge events, with no workflow edited: a rule on
# the default event bus per kind of event (Glue Job State Change, Step Functions
# Execution Status Change), each delivering the whole event to the results
# queue, where the consumer maps it to the series a workflow's sendMessage would
# write (<glue_job_metric_prefix>.<job>.failed, and the state machine's own
# <workflow_metric_prefix>.<name>.failed and .seconds). Off by default;
# glue_job_events and workflow_events switch each kind on.

locals {
  # The patterns are templates (one file each) with ${name} placeholders only,
  # so scripts/local_world.py renders exactly the text Terraform renders and the
  # tests put that pattern into moto's EventBridge. A filter is one placeholder
  # holding a JSON array built here as a string: names as strings, prefixes as
  # {"prefix": ...} objects (an HCL list could only hold both with mixed element
  # types). No filter is [{"exists": true}]: every job, or every Standard state
  # machine, of the account and region. scripts/local_world.py's event_filter()
  # mirrors these expressions; keep the two in step.
  glue_job_filter_items = concat(
    [for name in var.glue_job_names : jsonencode(name)],
    [for prefix in var.glue_job_name_prefixes : jsonencode({ prefix = prefix })],
  )
  glue_job_name_filter       = length(local.glue_job_filter_items) == 0 ? jsonencode([{ exists = true }]) : "[${join(",", local.glue_job_filter_items)}]"
  state_machine_filter_items = [for arn in var.state_machine_arns : jsonencode(arn)]
  state_machine_filter       = length(local.state_machine_filter_items) == 0 ? jsonencode([{ exists = true }]) : "[${join(",", local.state_machine_filter_items)}]"

  # The Glue pattern does not filter on the state: a state AWS adds later still
  # arrives and is set aside in the DLQ with the reason unknown_event_state,
  # where the DLQ alarm shows it, instead of never reaching the pipeline. The
  # workflow pattern leaves out RUNNING only, which posts nothing and would cost
  # a message per execution; any other status, a future one included, arrives.
  # An execution's event carries its input and output (up to 256 KB together):
  # the workflow data the pipeline has no business keeping, up to four SQS
  # requests a message (SQS bills every 64 KiB), and too large to park in the DLQ
  # once the consumer's reason attributes are added. The workflow rule's target
  # therefore rebuilds the event from the fields the consumer and the CLI read
  # (the envelope's id, time, source and detail-type; the detail's ARNs, name,
  # status and dates), a few hundred bytes. Strings are quoted in the template
  # and the two dates left bare, so they stay JSON numbers; the names and ARNs
  # Step Functions allows hold no quote or backslash. Both parts are files, read
  # here and by scripts/local_world.py, so the tests apply the same transformer.
  # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
  workflow_event_input = {
    paths    = jsondecode(file("${path.module}/workflow-events.input-paths.json"))
    template = trimspace(file("${path.module}/workflow-events.input-template.txt"))
  }

  all_event_rules = {
    glue_jobs = {
      on          = var.glue_job_events
      name        = "${var.name}-glue-job-state"
      description = "Glue Job State Change events to ${local.queue_name}, for sfn-mackerel: ${var.glue_job_metric_prefix}.<job>.failed in Mackerel."
      pattern = templatefile("${path.module}/glue-job-events.pattern.json.tftpl", {
        job_name_filter = local.glue_job_name_filter
      })
    }
    workflows = {
      on          = var.workflow_events
      name        = "${var.name}-execution-status"
      description = "Step Functions Execution Status Change events except RUNNING, to ${local.queue_name}, for sfn-mackerel: ${var.workflow_metric_prefix}.<state machine>.failed and .seconds in Mackerel."
      pattern = templatefile("${path.module}/workflow-events.pattern.json.tftpl", {
        state_machine_filter = local.state_machine_filter
      })
    }
  }
  event_rules = { for key, rule in local.all_event_rules : key => rule if rule.on }
  events_on   = var.glue_job_events || var.workflow_events

  # Where the consumer sends each event's values: set when either is given.
  events_mapped = var.event_service != null || length(var.event_services) > 0

  # The queues EventBridge sends to: the results queue, and the DLQ for what it
  # could not deliver there.
  event_target_queues = local.events_on ? {
    results = { url = aws_sqs_queue.results.id, arn = aws_sqs_queue.results.arn }
    dlq     = { url = aws_sqs_queue.dlq.id, arn = aws_sqs_queue.dlq.arn }
  } : {}
}

# Events of AWS services always go to the account's default bus, so no
# event_bus_name: a rule on another bus would see none of them. Rule names stop
# at 64 characters: var.name (at most 40) leaves room for either suffix.
resource "aws_cloudwatch_event_rule" "events" {
  for_each = local.event_rules

  name          = each.value.name
  description   = each.value.description
  event_pattern = each.value.pattern
  tags          = local.tags

  lifecycle {
    precondition {
      condition     = local.events_mapped
      error_message = "glue_job_events or workflow_events is on, but the consumer is not told which Mackerel service the events' values go to: set event_service (one service for every job and state machine), or event_services (a service per name pattern). Without either, every event would be set aside in the DLQ as event_not_covered."
    }
  }
}

resource "aws_cloudwatch_event_target" "events" {
  for_each = aws_cloudwatch_event_rule.events

  rule      = each.value.name
  target_id = "sfn-mackerel-results"
  # The event is the message body: whole for Glue's (the envelope and a
  # one-line message), rebuilt without the execution's input and output for
  # Step Functions' (local.workflow_event_input).
  arn = aws_sqs_queue.results.arn

  dynamic "input_transformer" {
    for_each = each.key == "workflows" ? [local.workflow_event_input] : []
    content {
      input_paths    = input_transformer.value.paths
      input_template = input_transformer.value.template
    }
  }

  # EventBridge's own default keeps retrying for 24 hours, by which time
  # Mackerel, which silently drops values older than 24 hours, would drop the
  # event's value. After an hour (event_retry_max_age_seconds) the event goes to
  # the DLQ instead, where the DLQ alarm fires and the operator has most of a day
  # to fix the cause and redrive it (`sfn-mackerel dlq peek` names it
  # event_delivery_failed). Retry policy and DLQ:
  # https://docs.aws.amazon.com/eventbridge/latest/userguide/rule-dlq.html
  retry_policy {
    maximum_event_age_in_seconds = var.event_retry_max_age_seconds
    maximum_retry_attempts       = var.event_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.dlq.arn
  }

  # Deliveries before the queues' policies exist would be refused.
  depends_on = [aws_sqs_queue_policy.events]
}

# EventBridge sends to an SQS queue, and to a target's DLQ, only when the
# queue's policy allows it: the service principal, sqs:SendMessage, and the
# rules' ARNs as aws:SourceArn, so no other rule (of this account or another)
# can write into the pipeline
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions).
# The queues use SSE-SQS, to which EventBridge can send with no key policy.
# A queue has one policy: if you manage your own policy on these queues, merge
# this statement into it (the queue and rule ARNs are this module's outputs)
# instead of applying both, or each apply replaces the other's.
data "aws_iam_policy_document" "events" {
  for_each = local.event_target_queues

  statement {
    sid       = "EventBridgeRulesOfThisPipeline"
    actions   = ["sqs:SendMessage"]
    resources = [each.value.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for rule in aws_cloudwatch_event_rule.events : rule.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "events" {
  for_each = local.event_target_queues

  queue_url = each.value.url
  policy    = data.aws_iam_policy_document.events[each.key].json
}
