"""OpenAPI description of Cue's JWT authentication (drf-spectacular extension)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class MemberJWTScheme(SimpleJWTScheme):
    target_class = "apps.accounts.authentication.MemberJWTAuthentication"
