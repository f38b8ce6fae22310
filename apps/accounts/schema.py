"""OpenAPI description of Cue's JWT authentication (drf-spectacular extension).

Imported by drf-spectacular when it generates a schema (the preprocessing hook below, named in
SPECTACULAR_SETTINGS), which registers the extension: nothing else needs drf-spectacular's machinery.
"""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class MemberJWTScheme(SimpleJWTScheme):
    target_class = "apps.accounts.authentication.MemberJWTAuthentication"


def register_extensions(endpoints):
    """Preprocessing hook: importing this module registered MemberJWTScheme; the endpoints pass unchanged."""
    return endpoints
