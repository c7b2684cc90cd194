# An idempotent request remembers every run it created (a job request creates several).

from django.db import migrations, models


def copy_run_to_runs(apps, schema_editor):
    IdempotentRequest = apps.get_model("api", "IdempotentRequest")
    for request in IdempotentRequest.objects.exclude(run=None).iterator():
        request.runs.add(request.run_id)


def copy_runs_to_run(apps, schema_editor):
    IdempotentRequest = apps.get_model("api", "IdempotentRequest")
    for request in IdempotentRequest.objects.iterator():
        first = request.runs.order_by("id").first()
        if first is None:
            request.delete()
        else:
            request.run_id = first.pk
            request.save(update_fields=["run"])


class Migration(migrations.Migration):

    dependencies = [
        ("api", "0001_initial"),
        ("tracking", "0004_run_withdrawal_review_audit"),
    ]

    operations = [
        migrations.AddField(
            model_name="idempotentrequest",
            name="endpoint",
            field=models.CharField(default="runs", max_length=32),
        ),
        migrations.AddField(
            model_name="idempotentrequest",
            name="runs",
            field=models.ManyToManyField(related_name="+", to="tracking.run"),
        ),
        migrations.AlterField(
            model_name="idempotentrequest",
            name="run",
            field=models.ForeignKey(
                null=True, on_delete=models.deletion.CASCADE, related_name="+", to="tracking.run"
            ),
        ),
        migrations.RunPython(copy_run_to_runs, copy_runs_to_run),
        migrations.RemoveField(model_name="idempotentrequest", name="run"),
    ]
