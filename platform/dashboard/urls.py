from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("benchmarks/<slug:key>/", views.benchmark_detail, name="benchmark"),
    path("benchmarks/<slug:benchmark>/<slug:key>/", views.task_detail, name="task"),
    path("suites/<slug:key>/", views.suite_detail, name="suite"),
    path("suites/<slug:key>/freeze/", views.suite_freeze, name="suite-freeze"),
    path("snapshots/<uuid:uuid>/", views.snapshot_detail, name="snapshot"),
    path("jobs/", views.job_queue_page, name="jobs"),
    path("runs/<uuid:uuid>/", views.run_detail, name="run"),
    path("static-lib/plotly.min.js", views.plotly_js, name="plotly-js"),
]
