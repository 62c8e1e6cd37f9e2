"""The Slack edge: the only package that imports slack_bolt."""
