# The HTTP API. Routes, integrations and invoke permissions are in functions.tf, one per HTTP
# function.

resource "aws_apigatewayv2_api" "http" {
  name          = "${var.name_prefix}-http-api"
  protocol_type = "HTTP"
  description   = "Bazaar public API (/api/v1)."
}

resource "aws_cloudwatch_log_group" "api_access" {
  #checkov:skip=CKV_AWS_158:Access logs carry no secrets (no headers or bodies are logged); CloudWatch Logs encrypts at rest by default, and a customer-managed key adds key-policy plumbing and cost.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days) chosen for cost; raise log_retention_days where a year of logs is required.
  name              = "/aws/apigateway/${var.name_prefix}-http-api"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId            = "$context.requestId"
      ip                   = "$context.identity.sourceIp"
      requestTime          = "$context.requestTime"
      routeKey             = "$context.routeKey"
      status               = "$context.status"
      protocol             = "$context.protocol"
      responseLength       = "$context.responseLength"
      latencyMs            = "$context.responseLatency"
      integrationLatencyMs = "$context.integrationLatency"
      integrationError     = "$context.integrationErrorMessage"
      userAgent            = "$context.identity.userAgent"
    })
  }

  # Stage-wide throttling (aggregate over all clients, per route). Per-account login throttling
  # lives in the code; HTTP APIs cannot attach WAF, so per-IP limits would need CloudFront+WAF in
  # front of this API.
  # Detailed metrics: 5xx, Count and Latency per route (dimensions ApiId, Stage, Method,
  # Resource), which the per-route alarms and the dashboard read.
  default_route_settings {
    detailed_metrics_enabled = true
    throttling_burst_limit   = var.api_throttling_burst_limit
    throttling_rate_limit    = var.api_throttling_rate_limit
  }
}
