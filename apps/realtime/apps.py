from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "apps.realtime"
    label = "realtime"

    def ready(self) -> None:
        # Every app declares the events it publishes in its own `realtime.py` (see apps.realtime.events);
        # importing them here means a cold worker knows every source before its first publish task.
        from django.utils.module_loading import autodiscover_modules

        autodiscover_modules("realtime")
