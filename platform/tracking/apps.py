from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "tracking"
    verbose_name = "Runs and jobs"

    def ready(self) -> None:
        # Leaderboard stamps follow model saves and deletes.
        from tracking import signals  # noqa: F401
