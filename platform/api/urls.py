from django.urls import path

from api import account_views, artifact_views, board_views, tracked_views, views

app_name = "api"

urlpatterns = [
    path("tokens/", views.TokenListCreateView.as_view(), name="tokens"),
    path("tokens/<int:pk>/", views.TokenRevokeView.as_view(), name="token"),
    path("benchmarks/", views.BenchmarkListView.as_view(), name="benchmarks"),
    path("benchmarks/<slug:key>/", views.BenchmarkDetailView.as_view(), name="benchmark"),
    path("suites/", views.SuiteListView.as_view(), name="suites"),
    path("suites/<slug:key>/", views.SuiteDetailView.as_view(), name="suite"),
    path(
        "suites/<slug:key>/leaderboard/",
        board_views.SuiteLeaderboardView.as_view(),
        name="suite-leaderboard",
    ),
    path(
        "suites/<slug:key>/snapshots/",
        board_views.SuiteSnapshotsView.as_view(),
        name="suite-snapshots",
    ),
    path("snapshots/<uuid:uuid>/", board_views.SnapshotDetailView.as_view(), name="snapshot"),
    path(
        "tasks/<slug:benchmark>/<slug:task>/leaderboard/",
        board_views.TaskLeaderboardView.as_view(),
        name="task-leaderboard",
    ),
    path("methods/", views.MethodListView.as_view(), name="methods"),
    path("backbones/", views.BackboneListView.as_view(), name="backbones"),
    path("runs/", views.RunListCreateView.as_view(), name="runs"),
    path("runs/<uuid:uuid>/", views.RunDetailView.as_view(), name="run"),
    path("runs/<uuid:uuid>/cancel/", views.RunCancelView.as_view(), name="run-cancel"),
    path("runs/<uuid:uuid>/withdraw/", views.RunWithdrawView.as_view(), name="run-withdraw"),
    path("runs/<uuid:uuid>/review/", views.RunReviewView.as_view(), name="run-review"),
    path("runs/<uuid:uuid>/audit/", views.RunAuditView.as_view(), name="run-audit"),
    path("reviews/", views.ReviewQueueView.as_view(), name="reviews"),
    path("runs/track/", tracked_views.TrackedRunCreateView.as_view(), name="run-track"),
    path("runs/<uuid:uuid>/metrics/", tracked_views.RunMetricsView.as_view(), name="run-metrics"),
    path("runs/<uuid:uuid>/finish/", tracked_views.RunFinishView.as_view(), name="run-finish"),
    path(
        "runs/<uuid:uuid>/progress/", tracked_views.RunProgressView.as_view(), name="run-progress"
    ),
    path(
        "runs/<uuid:uuid>/artifacts/",
        artifact_views.RunArtifactsView.as_view(),
        name="run-artifacts",
    ),
    path(
        "runs/<uuid:uuid>/artifacts/<str:name>/",
        artifact_views.RunArtifactDownloadView.as_view(),
        name="run-artifact",
    ),
    path("jobs/", views.JobRequestView.as_view(), name="jobs"),
    path("jobs/queue/", views.JobQueueView.as_view(), name="job-queue"),
    path("accounts/signup/", account_views.SignupView.as_view(), name="signup"),
    path(
        "accounts/password-reset/",
        account_views.PasswordResetView.as_view(),
        name="password-reset",
    ),
    path(
        "accounts/password-reset/confirm/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("accounts/me/", account_views.AccountMeView.as_view(), name="me"),
]
