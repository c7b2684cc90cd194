from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.home, name="home"),
    path("benchmarks/<slug:key>/", views.benchmark_detail, name="benchmark"),
    path("benchmarks/<slug:benchmark>/<slug:key>/", views.task_detail, name="task"),
    path("suites/<slug:key>/", views.suite_detail, name="suite"),
    path("suites/<slug:key>/rules/", views.suite_rules, name="suite-rules"),
    path("suites/<slug:key>/efficiency/", views.suite_efficiency_page, name="suite-efficiency"),
    path("suites/<slug:key>/freeze/", views.suite_freeze, name="suite-freeze"),
    path("snapshots/<uuid:uuid>/", views.snapshot_detail, name="snapshot"),
    path("jobs/", views.job_queue_page, name="jobs"),
    path("runs/<uuid:uuid>/", views.run_detail, name="run"),
    path("runs/<uuid:uuid>/live/", views.run_live, name="run-live"),
    path("runs/<uuid:uuid>/reproduce/", views.run_reproduce_view, name="run-reproduce"),
    path("compare/", views.compare, name="compare"),
    path("methods/", views.method_list, name="methods"),
    path("methods/<slug:key>/", views.method_detail, name="method"),
    path("backbones/", views.backbone_list, name="backbones"),
    path("backbones/<slug:key>/", views.backbone_detail, name="backbone"),
    path("submit/", views.submit, name="submit"),
    path("static-lib/plotly.min.js", views.plotly_js, name="plotly-js"),
]
