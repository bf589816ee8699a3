terraform {
  # Written and checked for Terraform 1.5 and newer (no cross-variable validation,
  # which needs 1.9: that rule is a precondition on the event source mapping).
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.80: `metrics_config` on aws_lambda_event_source_mapping (added in 5.79/5.80);
      # `logging_config`, `scaling_config` and aws_sqs_queue_redrive_policy are older,
      # and so are `retry_policy` and `dead_letter_config` on
      # aws_cloudwatch_event_target and aws_sqs_queue_policy (events.tf), all 3.x.
      # Nothing here depends on a 6.x change, so both major versions are accepted.
      version = ">= 5.80, < 7.0"
    }
  }
}
