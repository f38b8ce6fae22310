"""A whole stage on this machine: the stage's real Lambda entry point behind an emulated API Gateway,
its tasks really published to SNS (moto's server) and delivered back by a deliverer, its scheduled
jobs fired on their rate(...) / cron(...) expressions. `python manage.py serve_lambda STAGE` runs it.

Nothing here imports Django: in `serve_lambda` Django is set up by the stage's handler at the first
cold start, after remote_env, as on Lambda.
"""
