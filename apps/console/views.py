"""The agent console: one static page; everything it shows comes from the public API and MQTT."""

from django.views.decorators.http import require_GET
from django.views.generic import TemplateView

console = require_GET(TemplateView.as_view(template_name="console/index.html"))
