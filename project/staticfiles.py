"""Static URLs under the script prefix of the request being answered, whatever the first request's was.

On API Gateway without a custom domain the site lives under the stage (`/dev/`): Zappa sets
SCRIPT_NAME from the event and Django sets the script prefix per request. Django adds that prefix to
a relative STATIC_URL only once, when the setting is first read (settings cache it), and the storage
caches its base URL too: a container whose first read came from a cold start (prefix `/`) would link
`/static/...` for ever. Here the prefix is read on every `url()` call.
"""

from django.conf import settings
from django.urls import get_script_prefix
from whitenoise.storage import CompressedStaticFilesStorage


class ScriptPrefixedStaticFilesStorage(CompressedStaticFilesStorage):
    @property
    def base_url(self) -> str:
        configured = settings._wrapped.STATIC_URL  # type: ignore[misc]  # as written in settings, before Django's one-time prefixing
        if configured.startswith(("/", "http://", "https://")):
            return configured
        return f"{get_script_prefix()}{configured}"
