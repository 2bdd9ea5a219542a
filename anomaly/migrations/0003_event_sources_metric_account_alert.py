from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("anomaly", "0002_alter_criteria_options_and_more")]

    operations = [
        migrations.AlterField(
            model_name="anomalyevent",
            name="source",
            field=models.CharField(
                choices=[
                    ("sensor", "sensor"),
                    ("host", "host"),
                    ("metric", "custom metric"),
                    ("account", "event-log account"),
                    ("alert", "Prometheus alert"),
                ],
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name="anomalyevent",
            name="subject",
            field=models.CharField(help_text="sensor code, host name, metric series, account or alert", max_length=200),
        ),
    ]
