"""The Alertmanager relay: a webhook that turns alerts into incident workflows."""
