"""Secret rotation's consumers: the Deployments whose pod templates read the rotated Secret.

They run on the kubernetes worker, which may patch Deployments but never read a Secret: moving a
consumer is a pod-template annotation naming the credential's version, not its value.
"""

from __future__ import annotations

from temporalio import activity

from activities.keepalive import keeps_alive
from activities.secret_consumers import SecretConsumers
from zerotouch import activity_names as names
from zerotouch.rotation_models import ConsumerList, ConsumerRollout, RolledOut
from zerotouch.rotations import SecretRef


class SecretConsumerActivities:
    def __init__(self, *, consumers: SecretConsumers) -> None:
        self._consumers = consumers

    @activity.defn(name=names.FIND_SECRET_CONSUMERS)
    @keeps_alive
    def find_secret_consumers(self, secret: SecretRef) -> ConsumerList:
        """The Deployments whose pod templates read the Secret (env, envFrom, volumes, projected)."""
        return ConsumerList(secret=secret, consumers=self._consumers.find(secret))

    @activity.defn(name=names.ROLL_SECRET_CONSUMERS)
    @keeps_alive
    def roll_secret_consumers(self, rollout: ConsumerRollout) -> RolledOut:
        """kubectl rollout restart, once per credential version (a pod-template annotation)."""
        return self._consumers.roll(rollout.secret, rollout.deployments, rollout.version)
