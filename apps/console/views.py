"""The agent console: one static page; everything it shows comes from the public API and MQTT."""

from django.urls import get_script_prefix
from django.views.decorators.http import require_GET
from django.views.generic import RedirectView, TemplateView


class ConsoleView(TemplateView):
    """The page, told where the site is rooted (`/`, or `/dev/` under an API Gateway stage) to build its URLs."""

    template_name = "console/index.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "root": get_script_prefix()}


console = require_GET(ConsoleView.as_view())
# `/` (and `/<stage>/`) lead to the console; reverse() puts the request's script prefix in front.
home = require_GET(RedirectView.as_view(pattern_name="console", permanent=False))
