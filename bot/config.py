"""Settings, declared once: one pydantic-settings model whose fields carry default, description
and group.

``Settings.from_env`` reads them from an environment (``os.environ`` after ``load_dotenv`` by
default); ``.example.env`` is written from the fields by ``bot.env_files`` (``python -m bot
config --example``) and a test keeps the two in step. A value that cannot be used raises
``ConfigError`` naming the variable, what it must be and what it got.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.prices import DEFAULT_PRICES, Prices, parse_prices, price_of

__all__ = ["DEFAULT_PRICES", "ConfigError", "Settings", "price_of"]


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


def _csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _prices(value: object) -> object:
    return parse_prices(value) if isinstance(value, str) else value


Csv = Annotated[tuple[str, ...], BeforeValidator(_csv)]


def _s(default: Any, doc: str, group: str, **limits: Any) -> Any:
    """One setting: its default, the line ``.example.env`` shows, its group there."""
    return Field(default, description=doc, json_schema_extra={"group": group}, **limits)


_N = {"ge": 0}  # numbers are never negative
_BASE_PACKAGES = ("numpy", "pandas", "matplotlib", "PIL", "openpyxl", "pyarrow", "pypdf", "docx")


class Settings(BaseSettings):
    """Every setting; the variable is the field's name in capitals."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    # --- Slack ---
    slack_bot_token: str = _s("", "Bot token (xoxb-...) for a single workspace.", "Slack")
    slack_signing_secret: str = _s(
        "", "Signing secret that checks requests to /slack/events.", "Slack"
    )
    slack_app_token: str = _s(
        "", "App-level token (xapp-...): when set, Slack traffic uses Socket Mode.", "Slack"
    )
    slack_api_url: str = _s(
        "https://slack.com/api/",
        "Base of every Web API call; the bot token goes only here and to Slack's file host.",
        "Slack",
    )
    slack_client_id: str = _s(
        "", "OAuth client id: with the secret, enables multi-workspace install.", "Slack"
    )
    slack_client_secret: str = _s("", "OAuth client secret.", "Slack")
    allowed_channels: Csv = _s(
        (), "Comma-separated channel ids allowed to use the app (empty: all).", "Slack"
    )
    allowed_users: Csv = _s(
        (), "Comma-separated user ids allowed to use the app (empty: all).", "Slack"
    )
    # --- Model ---
    openai_api_key: str = _s("", "API key for the model server.", "Model")
    openai_base_url: str = _s("https://api.openai.com/v1", "Any OpenAI-compatible server.", "Model")
    openai_model: str = _s("gpt-4o-mini", "Model that writes the code.", "Model")
    openai_timeout: float = _s(
        60.0, "Seconds before one model request is abandoned.", "Model", **_N
    )
    openai_max_retries: int = _s(
        2, "Retries the SDK makes on 429, 5xx and connection errors.", "Model", **_N
    )
    openai_response_format: Literal["json_schema", "json_object"] = _s(
        "json_schema",
        "Response format tried first (json_schema or json_object); on a server that rejects "
        "it, Taskbot falls back to JSON mode, then plain text, by itself.",
        "Model",
    )
    code_max_bytes: int = _s(65536, "Largest generated module accepted, in bytes.", "Model", **_N)
    model_prices: Annotated[Prices, BeforeValidator(_prices)] = _s(
        (),
        "USD per million tokens, input/output, for models the built-in table lacks or prices "
        "differently: name=in/out;name=in/out (e.g. llama3.1:8b=0/0). Others: unknown.",
        "Model",
    )
    run_errors_to_model: Literal["send", "redact", "off"] = _s(
        "send",
        "A failed run's error on a refine: send, redact (quoted values removed) or off.",
        "Model",
    )
    # --- Budgets ---
    budget_user_daily_tokens: int = _s(
        0, "Model tokens one user may spend per UTC day (0: no limit).", "Budgets", **_N
    )
    budget_user_daily_usd: float = _s(
        0.0, "Money estimate one user may spend per day.", "Budgets", **_N
    )
    budget_user_daily_cpu_seconds: float = _s(
        0.0, "Sandbox CPU-seconds (runs and checks) one user may use per day.", "Budgets", **_N
    )
    budget_workspace_daily_tokens: int = _s(
        0, "Model tokens one workspace may spend per day.", "Budgets", **_N
    )
    budget_workspace_daily_usd: float = _s(
        0.0, "Money estimate one workspace may spend per day.", "Budgets", **_N
    )
    budget_workspace_daily_cpu_seconds: float = _s(
        0.0, "Sandbox CPU-seconds one workspace may use per day.", "Budgets", **_N
    )
    # --- Storage ---
    database_url: str = _s(
        "sqlite:///taskbot.db",
        "SQLAlchemy URL: an SQLite file by default, postgresql://... in production.",
        "Storage",
    )
    # --- Worker ---
    task_queue: Literal["local", "celery"] = _s(
        "local", "local (in-process worker pool) or celery.", "Worker"
    )
    celery_broker_url: str = _s(
        "redis://127.0.0.1:6379/0", "Broker for TASK_QUEUE=celery.", "Worker"
    )
    worker_concurrency: int = _s(2, "Sandbox slots per worker process.", "Worker", **_N)
    run_wait_sweep_seconds: float = _s(
        1.0,
        "Seconds between database reads while an API request waits on a run's event.",
        "Worker",
        gt=0,
    )
    # --- Sandbox ---
    sandbox_wall_seconds: float = _s(30.0, "Wall-clock limit of one run.", "Sandbox", **_N)
    sandbox_cpu_seconds: int = _s(20, "CPU-time limit of one run.", "Sandbox", **_N)
    sandbox_memory_mb: int = _s(512, "Memory limit of one run, in MiB.", "Sandbox", **_N)
    sandbox_max_processes: int = _s(32, "Processes one run may have at once.", "Sandbox", **_N)
    sandbox_max_file_mb: int = _s(50, "Largest file a run may write, in MiB.", "Sandbox", **_N)
    sandbox_max_open_files: int = _s(256, "Open files one run may hold.", "Sandbox", **_N)
    sandbox_max_output_kb: int = _s(
        1024, "Result, stdout and stderr kept per run, each, in KiB.", "Sandbox", **_N
    )
    sandbox_max_input_mb: int = _s(20, "Largest input file, in MiB.", "Sandbox", **_N)
    sandbox_packages: Csv = _s(
        _BASE_PACKAGES,
        "Packages generated code may import besides the standard library.",
        "Sandbox",
    )
    sandbox_insecure: bool = _s(
        False, "1 runs code even where the host cannot isolate it. Never in production.", "Sandbox"
    )
    # --- Server ---
    api_token: str = _s(
        "",
        "Bearer token for the HTTP API under /api/, the operator's door (without it the API is "
        "off unless Slack is configured, for personal tokens).",
        "Server",
    )
    port: int = _s(3000, "HTTP port of python -m bot serve.", "Server", **_N)
    log_level: str = _s("INFO", "DEBUG, INFO, WARNING or ERROR.", "Server")
    # --- Admins and tokens ---
    admin_users: Csv = _s(
        (),
        "Comma-separated Slack user ids who may stop anyone's run or generation, list and revoke "
        "any token of their workspace and read its audit.",
        "Admins and tokens",
    )
    token_days: int = _s(
        90, "Days a personal token lasts unless --days says.", "Admins and tokens", ge=1, le=366
    )
    audit_retention_days: int = _s(
        90, "Days the audit of token requests is kept (0: forever).", "Admins and tokens", **_N
    )
    members_cache_seconds: float = _s(
        60.0,
        "Seconds Slack's answer to who is in a channel is reused for personal tokens.",
        "Admins and tokens",
        **_N,
    )
    # --- Triggers ---
    mcp_enabled: bool = _s(
        False,
        "1 serves an MCP server at /mcp (bearer auth with API_TOKEN; needs the mcp package).",
        "Triggers",
    )
    schedule_check_seconds: float = _s(
        20.0,
        "How often each process looks for a due schedule (0: never, this process runs none).",
        "Triggers",
        **_N,
    )
    # --- Fair shares ---
    fair_user_generations: int = _s(
        3,
        "Creates and refines one user may have with the model at once (0: no limit).",
        "Fair shares",
        **_N,
    )
    fair_channel_generations: int = _s(
        8,
        "Creates and refines one channel may have with the model at once (0: no limit).",
        "Fair shares",
        **_N,
    )
    fair_user_queued_runs: int = _s(
        10, "Runs one user may have waiting (0: no limit).", "Fair shares", **_N
    )
    fair_channel_queued_runs: int = _s(
        30, "Runs one channel may have waiting (0: no limit).", "Fair shares", **_N
    )
    max_files_per_message: int = _s(
        5,
        "Files of one Slack message that are run; the rest are refused with an answer.",
        "Fair shares",
        ge=1,
    )
    # --- Retention ---
    retain_input_days: float = _s(
        0.0,
        "Days a run's input file is kept after the run ends (0: removed when it ends).",
        "Retention",
        **_N,
    )
    retain_output_days: float = _s(
        30.0, "Days the files a run wrote under output/ are kept (0: forever).", "Retention", **_N
    )
    retain_result_days: float = _s(
        30.0, "Days a run's result is kept (0: forever).", "Retention", **_N
    )
    retain_log_days: float = _s(
        7.0, "Days a run's stdout, stderr and traceback are kept (0: forever).", "Retention", **_N
    )

    @field_validator("worker_concurrency")
    @classmethod
    def _at_least_one_slot(cls, value: int) -> int:
        return max(1, value)

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("sandbox_insecure", "mcp_enabled", mode="before")
    @classmethod
    def _yes(cls, value: object) -> object:
        # Fail closed: only an explicit yes turns isolation off, anything else leaves it on.
        if isinstance(value, str):
            return value.lower() in ("1", "true", "yes")
        return value

    @model_validator(mode="after")
    def _money_needs_a_price(self) -> Settings:
        money = [
            name
            for name in ("budget_user_daily_usd", "budget_workspace_daily_usd")
            if getattr(self, name)
        ]
        model = self.openai_model
        if money and price_of(model, self.model_prices) is None:
            raise ValueError(
                f"{money[0].upper()} is set but the price of {model!r} is unknown, so spending "
                f"could not be capped: add it to MODEL_PRICES (e.g. {model}=0.15/0.60), or "
                "budget tokens."
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # ``Settings(...)`` is its defaults and what it is given, never a stray variable of the
        # process (tests build many); the environment is read by ``from_env``, explicitly.
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings of ``environ`` (default ``os.environ``): an empty value is the default,
        but an empty list is a list (``SANDBOX_PACKAGES=``: the standard library only)."""
        env = os.environ if environ is None else environ
        given: dict[str, str] = {}
        for name, field in cls.model_fields.items():
            value = env.get(name.upper())
            if value is not None and (
                value.strip() or not isinstance(field.default, (str, int, float))
            ):
                given[name] = value.strip()
        try:
            return cls.model_validate(given)
        except ValidationError as exc:
            raise ConfigError("; ".join(_explain(e) for e in exc.errors())) from None

    @property
    def max_input_bytes(self) -> int:
        """``SANDBOX_MAX_INPUT_MB`` in bytes: the largest run input any door accepts."""
        return self.sandbox_max_input_mb * 2**20

    def missing_for_slack(self) -> list[str]:
        """Settings that must be set before Slack can be served, each with how to get it."""
        missing: list[str] = []
        multi = bool(self.slack_client_id and self.slack_client_secret)
        if not self.slack_signing_secret and not self.slack_app_token:
            missing.append(
                "SLACK_SIGNING_SECRET: Basic Information > App Credentials > Signing Secret "
                "(or SLACK_APP_TOKEN for Socket Mode)"
            )
        if not self.slack_bot_token and not multi:
            missing.append(
                "SLACK_BOT_TOKEN: OAuth & Permissions > Bot User OAuth Token (xoxb-...) "
                "(or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for multi-workspace install)"
            )
        return missing


def _explain(error: ErrorDetails) -> str:
    """One validation error as a sentence naming the variable, what it must be, what it got."""
    name = str(error["loc"][0]).upper() if error["loc"] else ""
    got = error.get("input")
    ctx = error.get("ctx", {})
    kind = error["type"]
    if kind in ("int_parsing", "float_parsing", "int_from_float", "finite_number"):
        return f"{name} must be a number, got {got!r}"
    if kind == "greater_than_equal":
        return f"{name} must not be negative, got {got!r}"
    if kind == "literal_error":
        return f"{name} must be {ctx.get('expected')}, got {got!r}"
    if kind == "value_error":
        reason = str(ctx.get("error", error["msg"]))
        return f"{name}: {reason}" if name else reason
    return f"{name}: {error['msg']}, got {got!r}" if name else error["msg"]
