"""Models for the tests of ``ModelRef`` (no migrations: the test database creates them)."""

from __future__ import annotations

import uuid

from django.db import models


class Customer(models.Model):
    """A model with the default (big integer) primary key."""

    name = models.CharField(max_length=50)


class Gadget(models.Model):
    """A model with a UUID primary key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    label = models.CharField(max_length=50)


class Country(models.Model):
    """A model with a custom, non-numeric primary key."""

    code = models.CharField(max_length=2, primary_key=True)
    name = models.CharField(max_length=50)
