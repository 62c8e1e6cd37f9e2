"""The service layer: every door into Taskbot (Slack, the HTTP API, the terminal) calls these."""
