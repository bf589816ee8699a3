# The Glue jobs the workflow runs. Their scripts are yours: upload <name>.py under
# glue_script_s3_prefix before the first run.

locals {
  script_bucket = regex("^s3://([^/]+)/", var.glue_script_s3_prefix)[0]
}

resource "aws_glue_job" "job" {
  #checkov:skip=CKV_AWS_195:A Glue security configuration (S3/CloudWatch/bookmark encryption with KMS) depends on what your jobs touch; add security_configuration once your scripts write data.
  for_each = toset(var.glue_jobs)

  name         = each.key
  role_arn     = aws_iam_role.glue.arn
  glue_version = "4.0"
  # The workflow starts one run per job per item and waits for it (Map runs items
  # one at a time), so one concurrent run is enough.
  execution_property {
    max_concurrent_runs = 1
  }
  worker_type       = "G.1X"
  number_of_workers = 2
  timeout           = 60

  command {
    name            = "glueetl"
    script_location = "${var.glue_script_s3_prefix}${each.key}.py"
    python_version  = "3"
  }
}

data "aws_iam_policy_document" "glue_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "glue" {
  name               = "${var.name}-glue-jobs"
  assume_role_policy = data.aws_iam_policy_document.glue_assume.json
}

# AWS's baseline for Glue job runs (logs, metrics, its own aws-glue-* buckets).
resource "aws_iam_role_policy_attachment" "glue_service" {
  role       = aws_iam_role.glue.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSGlueServiceRole"
}

data "aws_iam_policy_document" "glue_scripts" {
  statement {
    sid       = "ReadJobScripts"
    actions   = ["s3:GetObject"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${local.script_bucket}/${trimprefix(var.glue_script_s3_prefix, "s3://${local.script_bucket}/")}*"]
  }
}

resource "aws_iam_role_policy" "glue_scripts" {
  name   = "read-job-scripts"
  role   = aws_iam_role.glue.id
  policy = data.aws_iam_policy_document.glue_scripts.json
}
