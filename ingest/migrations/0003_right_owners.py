"""Co-applicants: a right belongs to every tracked organisation whose search found it (issue 16).

Existing rights keep their one owner (the organisation and applicant number stored on the row) as
their first RightOwner; the two columns then go.
"""

import django.db.models.deletion
from django.db import migrations, models

COPY_BATCH = 2000


def copy_owners(apps, schema_editor):  # noqa: ANN001, ANN201 - migration signature
    IPRight = apps.get_model("ingest", "IPRight")
    RightOwner = apps.get_model("ingest", "RightOwner")
    batch = []
    rows = IPRight.objects.values_list("id", "organization_id", "applicant_id", "first_seen", "last_seen")
    for right_id, organization_id, applicant_id, first_seen, last_seen in rows.iterator(chunk_size=COPY_BATCH):
        batch.append(
            RightOwner(
                right_id=right_id,
                organization_id=organization_id,
                applicant_id=applicant_id,
                first_seen=first_seen,
                last_seen=last_seen,
            )
        )
        if len(batch) == COPY_BATCH:
            RightOwner.objects.bulk_create(batch)
            batch = []
    RightOwner.objects.bulk_create(batch)


def copy_back(apps, schema_editor):  # noqa: ANN001, ANN201 - migration signature
    """Reverse: each right gets back one owner (the one seen last), as before the migration."""
    IPRight = apps.get_model("ingest", "IPRight")
    RightOwner = apps.get_model("ingest", "RightOwner")
    for owner in RightOwner.objects.order_by("right_id", "last_seen").iterator(chunk_size=COPY_BATCH):
        IPRight.objects.filter(pk=owner.right_id).update(
            organization_id=owner.organization_id, applicant_id=owner.applicant_id
        )


class Migration(migrations.Migration):
    dependencies = [
        ("ingest", "0002_checkpoint_counters"),
    ]

    operations = [
        migrations.CreateModel(
            name="RightOwner",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("first_seen", models.DateTimeField()),
                ("last_seen", models.DateTimeField()),
                (
                    "applicant",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="ownerships",
                        to="ingest.applicant",
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="ownerships",
                        to="ingest.organization",
                    ),
                ),
                (
                    "right",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="owners", to="ingest.ipright"
                    ),
                ),
            ],
            options={"ordering": ["right", "organization"]},
        ),
        migrations.AddConstraint(
            model_name="rightowner",
            constraint=models.UniqueConstraint(fields=("right", "organization"), name="ingest_right_owner_unique"),
        ),
        migrations.RunPython(copy_owners, copy_back),
        migrations.RemoveIndex(model_name="ipright", name="ingest_ipri_organiz_b6e5a8_idx"),
        migrations.RemoveField(model_name="ipright", name="applicant"),
        migrations.RemoveField(model_name="ipright", name="organization"),
        migrations.AddField(
            model_name="ipright",
            name="organizations",
            field=models.ManyToManyField(related_name="rights", through="ingest.RightOwner", to="ingest.organization"),
        ),
        migrations.AddIndex(
            model_name="ipright",
            index=models.Index(fields=["kind", "application_date"], name="ingest_ipright_kind_date"),
        ),
    ]
