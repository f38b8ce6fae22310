"""A whole stage on this machine: API Gateway, the stage's Lambda function, its SNS deliveries and schedules.

The stage's real entry point (zappa_settings.json `lambda_handler`) gets API Gateway events from
real HTTP requests; its tasks are really published to its SNS topic (moto's server) and delivered
back; its scheduled jobs fire on their rate(...) / cron(...) expressions. `python manage.py
serve_lambda STAGE` runs it (docs/operations-local.md). Nothing here imports Django: there, Django
is set up by the stage's handler at the first cold start, after remote_env, as on Lambda.
"""
