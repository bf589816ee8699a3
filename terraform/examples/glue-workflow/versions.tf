terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.80, < 7.0"
    }
    mackerel = {
      source  = "mackerelio-labs/mackerel"
      version = ">= 0.6, < 1.0"
    }
  }
}

provider "aws" {
  region = var.region
}

# Reads MACKEREL_API_KEY from the environment of whoever runs terraform (a key that
# may manage services and monitors). It is not the consumer's key, and it is not
# stored in the state.
provider "mackerel" {
  api_base = var.mackerel_api_base
}
