output "state_machine_arn" {
  description = "Start the workflow: aws stepfunctions start-execution --state-machine-arn <this> --name <run> --input '{\"items\": [{...}]}'."
  value       = aws_sfn_state_machine.workflow.arn
}

output "queue_url" {
  description = "Results queue (for `sfn-mackerel send --queue-url`)."
  value       = module.pipeline.queue_url
}

output "dlq_url" {
  description = "Dead-letter queue of results that did not reach Mackerel."
  value       = module.pipeline.dlq_url
}

output "secret_arn" {
  description = "Put the consumer's Mackerel API key here (aws secretsmanager put-secret-value)."
  value       = module.pipeline.secret_arn
}

output "function_name" {
  description = "The consumer Lambda."
  value       = module.pipeline.function_name
}

output "mackerel_service" {
  description = "Where the results appear in Mackerel."
  value       = module.monitors.service_name
}

output "job_monitor_ids" {
  description = "Mackerel failure monitor per job."
  value       = module.monitors.job_monitor_ids
}

output "workflow_monitor_ids" {
  description = "Mackerel failure monitor of the workflow's own status (results_via = \"events\"); empty otherwise."
  value       = module.monitors.workflow_monitor_ids
}

output "event_rule_arns" {
  description = "The pipeline's EventBridge rules (results_via = \"events\"): Glue Job State Change for the example's jobs, and this state machine's Execution Status Change; null when off."
  value = {
    glue_jobs = module.pipeline.glue_job_event_rule_arn
    workflow  = module.pipeline.workflow_event_rule_arn
  }
}
