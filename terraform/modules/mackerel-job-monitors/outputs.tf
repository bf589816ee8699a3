output "service_name" {
  description = "The Mackerel service the results are posted to."
  value       = local.service_name
}

output "job_monitor_ids" {
  description = "Failure monitor id per job."
  value       = { for job, monitor in mackerel_monitor.job_failed : job => monitor.id }
}

output "workflow_monitor_ids" {
  description = "Failure monitor id per state machine in workflow_names."
  value       = { for name, monitor in mackerel_monitor.workflow_failed : name => monitor.id }
}

output "missing_data_monitor_id" {
  description = "Id of the missing-data monitor, or null when pipeline_metrics_service is null."
  value       = one(mackerel_monitor.pipeline_silent[*].id)
}
