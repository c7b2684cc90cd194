from django.urls import path

from api import views

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
        views.SuiteLeaderboardView.as_view(),
        name="suite-leaderboard",
    ),
    path("methods/", views.MethodListView.as_view(), name="methods"),
    path("backbones/", views.BackboneListView.as_view(), name="backbones"),
    path("runs/", views.RunListCreateView.as_view(), name="runs"),
    path("runs/<uuid:uuid>/", views.RunDetailView.as_view(), name="run"),
    path("runs/<uuid:uuid>/cancel/", views.RunCancelView.as_view(), name="run-cancel"),
    path("jobs/", views.JobRequestView.as_view(), name="jobs"),
    path("jobs/queue/", views.JobQueueView.as_view(), name="job-queue"),
]
