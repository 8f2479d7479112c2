output "api_url" {
  description = "Base URL of the HTTP API ($default stage); endpoints are under /api/v1."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "table_name" {
  description = "The DynamoDB table."
  value       = aws_dynamodb_table.main.name
}

output "bucket_name" {
  description = "The assets bucket."
  value       = aws_s3_bucket.assets.bucket
}

output "notifications_queue_url" {
  description = "The notifications queue."
  value       = aws_sqs_queue.notifications.url
}

output "notifications_dead_letter_queue_url" {
  description = "The notifications dead-letter queue."
  value       = aws_sqs_queue.notifications_dlq.url
}

output "payments_queue_url" {
  description = "The payments queue."
  value       = aws_sqs_queue.payments.url
}

output "payments_dead_letter_queue_url" {
  description = "The payments dead-letter queue."
  value       = aws_sqs_queue.payments_dlq.url
}

output "invoices_queue_url" {
  description = "The invoices queue."
  value       = aws_sqs_queue.invoices.url
}

output "invoices_dead_letter_queue_url" {
  description = "The invoices dead-letter queue."
  value       = aws_sqs_queue.invoices_dlq.url
}

output "deliveries_queue_url" {
  description = "The deliveries queue (single notifications to send)."
  value       = aws_sqs_queue.deliveries.url
}

output "deliveries_dead_letter_queue_url" {
  description = "The deliveries dead-letter queue."
  value       = aws_sqs_queue.deliveries_dlq.url
}

output "function_names" {
  description = "Deployed function names, by binary name."
  value       = { for name, f in aws_lambda_function.function : name => f.function_name }
}

output "alarm_topic_arn" {
  description = "SNS topic that every alarm notifies."
  value       = aws_sns_topic.alarms.arn
}

output "dashboard_name" {
  description = "The CloudWatch dashboard (requests, errors, latency, orders, revenue, payments, deliveries, queues, cold starts)."
  value       = aws_cloudwatch_dashboard.main.dashboard_name
}
