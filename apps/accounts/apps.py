from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    # The OpenAPI auth extension (apps.accounts.schema) registers when drf-spectacular generates a
    # schema (SPECTACULAR_SETTINGS PREPROCESSING_HOOKS), not at start-up: a cold start skips it.
