# The Glue jobs the workflow runs, when create_glue_jobs is true (false: jobs of
# these names exist already). Their scripts are yours: upload <name>.py under
# glue_script_s3_prefix before the first run.

locals {
  script_bucket = var.glue_script_s3_prefix == null ? "" : regex("^s3://([^/]+)/", var.glue_script_s3_prefix)[0]
  script_path   = var.glue_script_s3_prefix == null ? "" : trimprefix(var.glue_script_s3_prefix, "s3://${local.script_bucket}/")
}

resource "aws_glue_job" "job" {
  #checkov:skip=CKV_AWS_195:A Glue security configuration (S3/CloudWatch/bookmark encryption with KMS) depends on what your jobs touch; add security_configuration once your scripts write data.
  for_each = toset(var.create_glue_jobs ? var.glue_jobs : [])

  name         = each.key
  role_arn     = aws_iam_role.glue[0].arn
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

  lifecycle {
    precondition {
      condition     = var.glue_script_s3_prefix != null
      error_message = "create_glue_jobs = true needs glue_script_s3_prefix (where the jobs' scripts are); set create_glue_jobs = false to run existing jobs instead."
    }
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
  count              = var.create_glue_jobs ? 1 : 0
  name               = "${var.name}-glue-jobs"
  assume_role_policy = data.aws_iam_policy_document.glue_assume.json
}

# AWS's baseline for Glue job runs (logs, metrics, its own aws-glue-* buckets).
resource "aws_iam_role_policy_attachment" "glue_service" {
  count      = var.create_glue_jobs ? 1 : 0
  role       = aws_iam_role.glue[0].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSGlueServiceRole"
}

data "aws_iam_policy_document" "glue_scripts" {
  statement {
    sid       = "ReadJobScripts"
    actions   = ["s3:GetObject"]
    resources = ["arn:${data.aws_partition.current.partition}:s3:::${local.script_bucket}/${local.script_path}*"]
  }
}

resource "aws_iam_role_policy" "glue_scripts" {
  count  = var.create_glue_jobs ? 1 : 0
  name   = "read-job-scripts"
  role   = aws_iam_role.glue[0].id
  policy = data.aws_iam_policy_document.glue_scripts.json
}

# Deployments made before create_glue_jobs keep their role and policies.
moved {
  from = aws_iam_role.glue
  to   = aws_iam_role.glue[0]
}

moved {
  from = aws_iam_role_policy_attachment.glue_service
  to   = aws_iam_role_policy_attachment.glue_service[0]
}

moved {
  from = aws_iam_role_policy.glue_scripts
  to   = aws_iam_role_policy.glue_scripts[0]
}
