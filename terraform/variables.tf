variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "eu-west-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions are named <prefix>-<function>)."
  type        = string
  default     = "bazaar"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name_prefix))
    error_message = "name_prefix must be 2-31 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "jwt_secret_parameter_name" {
  description = "Name of an existing SSM SecureString parameter (starting with \"/\") holding the JWT signing secret. Encrypted with the AWS-managed aws/ssm key; a customer-managed key would also need kms:Decrypt for the functions."
  type        = string
  default     = "/bazaar/jwt-secret"

  validation {
    condition     = startswith(var.jwt_secret_parameter_name, "/")
    error_message = "jwt_secret_parameter_name must be a full parameter path starting with \"/\"."
  }
}

variable "jwt_issuer" {
  description = "The \"iss\" claim that tokens are issued with and verified against."
  type        = string
  default     = "bazaar"
}

variable "jwt_audience" {
  description = "The \"aud\" claim that tokens are issued with and verified against."
  type        = string
  default     = "bazaar-api"
}

variable "email_from" {
  description = "The sender of notification e-mail (\"Name <address>\" or a bare address). Its address or domain must be an identity verified in Amazon SES in var.region beforehand (e.g. `aws sesv2 create-email-identity --email-identity no-reply@example.com`); while the account is in the SES sandbox, recipients must be verified too."
  type        = string
  default     = "Bazaar <no-reply@example.com>"

  validation {
    condition     = can(regex("@", var.email_from))
    error_message = "email_from must contain an e-mail address."
  }
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps the functions' and the API's logs."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of the values CloudWatch Logs accepts."
  }
}

variable "lambda_package_dir" {
  description = "Directory of the packages built by `cargo lambda build --release --arm64 --output-format zip` (one <name>/bootstrap.zip per function). A relative path is taken from this module's directory."
  type        = string
  default     = "../target/lambda"
}

variable "table_deletion_protection" {
  description = "Turn on DynamoDB deletion protection for the table (recommended in production)."
  type        = bool
  default     = false
}

variable "api_throttling_burst_limit" {
  description = "Burst limit of every route of the HTTP API's $default stage."
  type        = number
  default     = 100
}

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second of every route of the HTTP API's $default stage."
  type        = number
  default     = 50
}

variable "alarm_email" {
  description = "Optional e-mail address subscribed to the alarm topic (null for none)."
  type        = string
  default     = null
}

variable "sms_countries" {
  description = "Calling-code prefixes SMS may be sent to, comma-separated (e.g. \"+98,+1\"); empty allows every country. Set it: SMS to unexpected countries are a classic fraud."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(\\+[1-9][0-9]{0,5}(,\\+[1-9][0-9]{0,5})*)?$", var.sms_countries))
    error_message = "sms_countries must list calling-code prefixes like +98,+1."
  }
}

variable "write_shards" {
  description = "Shards of each shop-wide partition (outbox, reservation deadlines, admin lists, subscribers), the same for every function. About 9 outbox writes per order: 32 suit about 1,700 orders/s, 256 about 10,000 (README, \"Partition heat\"). Raise it, never lower it: items in dropped shards would no longer be read."
  type        = number
  default     = 32

  validation {
    condition     = var.write_shards >= 1 && var.write_shards <= 256 && floor(var.write_shards) == var.write_shards
    error_message = "write_shards must be a whole number from 1 to 256."
  }
}

variable "invoice_series" {
  description = "Invoice number series, each gap-free with its own counter; above 1 numbers read 2026-S03-000042. One series takes at most about 500 paid orders/s."
  type        = number
  default     = 1

  validation {
    condition     = var.invoice_series >= 1 && var.invoice_series <= 99 && floor(var.invoice_series) == var.invoice_series
    error_message = "invoice_series must be a whole number from 1 to 99."
  }
}

variable "api_5xx_rate_threshold" {
  description = "Share of server errors (percent of requests, per 5 minutes) above which the api-5xx-rate and <function>-5xx-rate alarms fire."
  type        = number
  default     = 5
}

variable "api_p99_latency_threshold_ms" {
  description = "p99 latency of a route (milliseconds, per 5 minutes) above which its <function>-p99-latency alarm fires."
  type        = number
  default     = 2000
}

variable "rate_alarm_min_samples" {
  description = "Fewest requests (API) or payments in 5 minutes for a rate alarm to judge; below it the rate counts as 0, so a single failure in a quiet period does not page."
  type        = number
  default     = 10
}

variable "payment_decline_rate_threshold" {
  description = "Share of declined payments (percent of all outcomes, over every method) above which the payments-decline-rate alarm fires."
  type        = number
  default     = 20
}

variable "queue_age_threshold_seconds" {
  description = "Age of a queue's oldest message (seconds) above which its <queue>-queue-backlog alarm fires."
  type        = number
  default     = 600
}

variable "otel_collector_layer_arn" {
  description = "Optional ARN of an OpenTelemetry collector Lambda layer (a layer version) added to every function, e.g. the AWS Distro for OpenTelemetry (ADOT) collector arn:aws:lambda:<region>:901920570463:layer:aws-otel-collector-arm64-ver-0-117-0:1, whose default configuration receives OTLP on localhost:4317/4318 and exports traces to AWS X-Ray. When set, the functions export their spans to it (OTEL_EXPORTER_OTLP_ENDPOINT is http://localhost:4318); empty (the default) adds no layer and exports nothing. The layer must match the functions' architecture (arm64 here): an arm64 layer for arm64, an amd64 layer for x86_64."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[a-zA-Z0-9_-]+:[0-9]+)?$", var.otel_collector_layer_arn))
    error_message = "otel_collector_layer_arn must be empty or a Lambda layer version ARN (arn:aws:lambda:<region>:<account>:layer:<name>:<version>)."
  }
}
