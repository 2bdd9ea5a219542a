"""The console's groups: "viewer" sees every page, "operator" may also acknowledge, resolve, train and harvest.

The permissions are created here (post_migrate would create them only after every migration has run).
"""

from __future__ import annotations

from django.db import migrations

PERMISSIONS = {
    "view_console": "Can open the operator console",
    "operate_console": "Can acknowledge and resolve events, train models and start harvests",
}
GROUPS = {"viewer": ["view_console"], "operator": ["view_console", "operate_console"]}


def create_groups(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.get_or_create(app_label="console", model="eventnote")
    permissions = {
        codename: Permission.objects.get_or_create(
            codename=codename, content_type=content_type, defaults={"name": name}
        )[0]
        for codename, name in PERMISSIONS.items()
    }
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*(permissions[codename] for codename in codenames))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_event_note"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
