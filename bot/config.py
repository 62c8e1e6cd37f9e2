"""Settings, built once from the environment (after ``load_dotenv``).

Every setting is declared once in ``SETTINGS``: its variable, its default and one line on what
it does. ``.example.env`` is written from that table (``python -m bot config --example``) and a
test keeps the two in step.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    doc: str
    group: str


SETTINGS: tuple[Setting, ...] = (
    Setting("SLACK_BOT_TOKEN", "", "Bot token (xoxb-...) for a single workspace.", "Slack"),
    Setting(
        "SLACK_SIGNING_SECRET", "", "Signing secret that checks requests to /slack/events.", "Slack"
    ),
    Setting(
        "SLACK_APP_TOKEN",
        "",
        "App-level token (xapp-...): when set, Slack traffic uses Socket Mode.",
        "Slack",
    ),
    Setting(
        "SLACK_API_URL",
        "https://slack.com/api/",
        "Base of every Web API call; the bot token goes only here and to Slack's file host.",
        "Slack",
    ),
    Setting(
        "SLACK_CLIENT_ID",
        "",
        "OAuth client id: with the secret, enables multi-workspace install.",
        "Slack",
    ),
    Setting("SLACK_CLIENT_SECRET", "", "OAuth client secret.", "Slack"),
    Setting(
        "ALLOWED_CHANNELS",
        "",
        "Comma-separated channel ids allowed to use the app (empty: all).",
        "Slack",
    ),
    Setting(
        "ALLOWED_USERS",
        "",
        "Comma-separated user ids allowed to use the app (empty: all).",
        "Slack",
    ),
    Setting(
        "ADMIN_USERS",
        "",
        "Comma-separated user ids who may stop anyone's run or generation.",
        "Slack",
    ),
    Setting("OPENAI_API_KEY", "", "API key for the model server.", "Model"),
    Setting(
        "OPENAI_BASE_URL", "https://api.openai.com/v1", "Any OpenAI-compatible server.", "Model"
    ),
    Setting("OPENAI_MODEL", "gpt-4o-mini", "Model that writes the code.", "Model"),
    Setting("OPENAI_TIMEOUT", "60", "Seconds before one model request is abandoned.", "Model"),
    Setting(
        "OPENAI_MAX_RETRIES",
        "2",
        "Retries the SDK makes on 429, 5xx and connection errors.",
        "Model",
    ),
    Setting(
        "OPENAI_RESPONSE_FORMAT",
        "json_schema",
        "Response format tried first (json_schema or json_object); on a server that rejects "
        "it, Taskbot falls back to JSON mode, then plain text, by itself.",
        "Model",
    ),
    Setting("CODE_MAX_BYTES", "65536", "Largest generated module accepted, in bytes.", "Model"),
    Setting(
        "MODEL_PRICES",
        "",
        "USD per million tokens, input/output, for models the built-in table lacks or prices "
        "differently: name=in/out;name=in/out (e.g. llama3.1:8b=0/0). Others: unknown.",
        "Model",
    ),
    Setting(
        "BUDGET_USER_DAILY_TOKENS",
        "0",
        "Model tokens one user may spend per UTC day (0: no limit).",
        "Budgets",
    ),
    Setting("BUDGET_USER_DAILY_USD", "0", "Money estimate one user may spend per day.", "Budgets"),
    Setting(
        "BUDGET_USER_DAILY_CPU_SECONDS",
        "0",
        "Sandbox CPU-seconds (runs and checks) one user may use per day.",
        "Budgets",
    ),
    Setting(
        "BUDGET_WORKSPACE_DAILY_TOKENS",
        "0",
        "Model tokens one workspace may spend per day.",
        "Budgets",
    ),
    Setting(
        "BUDGET_WORKSPACE_DAILY_USD",
        "0",
        "Money estimate one workspace may spend per day.",
        "Budgets",
    ),
    Setting(
        "BUDGET_WORKSPACE_DAILY_CPU_SECONDS",
        "0",
        "Sandbox CPU-seconds one workspace may use per day.",
        "Budgets",
    ),
    Setting(
        "DATABASE_URL",
        "sqlite:///taskbot.db",
        "SQLAlchemy URL: an SQLite file by default, postgresql://... in production.",
        "Storage",
    ),
    Setting("TASK_QUEUE", "local", "local (in-process worker pool) or celery.", "Worker"),
    Setting(
        "CELERY_BROKER_URL", "redis://127.0.0.1:6379/0", "Broker for TASK_QUEUE=celery.", "Worker"
    ),
    Setting("WORKER_CONCURRENCY", "2", "Sandbox slots per worker process.", "Worker"),
    Setting("SANDBOX_WALL_SECONDS", "30", "Wall-clock limit of one run.", "Sandbox"),
    Setting("SANDBOX_CPU_SECONDS", "20", "CPU-time limit of one run.", "Sandbox"),
    Setting("SANDBOX_MEMORY_MB", "512", "Memory limit of one run, in MiB.", "Sandbox"),
    Setting("SANDBOX_MAX_PROCESSES", "32", "Processes one run may have at once.", "Sandbox"),
    Setting("SANDBOX_MAX_FILE_MB", "50", "Largest file a run may write, in MiB.", "Sandbox"),
    Setting("SANDBOX_MAX_OPEN_FILES", "256", "Open files one run may hold.", "Sandbox"),
    Setting(
        "SANDBOX_MAX_OUTPUT_KB",
        "1024",
        "Result, stdout and stderr kept per run, each, in KiB.",
        "Sandbox",
    ),
    Setting("SANDBOX_MAX_INPUT_MB", "20", "Largest input file, in MiB.", "Sandbox"),
    Setting(
        "SANDBOX_PACKAGES",
        "numpy,pandas,matplotlib,PIL,openpyxl,pyarrow,pypdf,docx",
        "Packages generated code may import besides the standard library.",
        "Sandbox",
    ),
    Setting(
        "SANDBOX_INSECURE",
        "0",
        "1 runs code even where the host cannot isolate it. Never in production.",
        "Sandbox",
    ),
    Setting(
        "API_TOKEN",
        "",
        "Bearer token for the HTTP API under /api/ (the API is off without it).",
        "Server",
    ),
    Setting("PORT", "3000", "HTTP port of python -m bot serve.", "Server"),
    Setting("LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR.", "Server"),
)

_DEFAULTS = {s.name: s.default for s in SETTINGS}

# USD per million tokens (input, output) of common models, as their makers list them; a dated
# snapshot ("gpt-4o-mini-2024-07-18") is priced as its model. MODEL_PRICES adds or overrides.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gpt-3.5-turbo": (0.50, 1.50),
}


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def parse_prices(value: str) -> tuple[tuple[str, float, float], ...]:
    """``name=in/out;name=in/out`` (USD per million tokens); model names may hold ``:`` ``/``."""
    prices: list[tuple[str, float, float]] = []
    for entry in (e.strip() for e in value.split(";")):
        if not entry:
            continue
        name, sep, price = entry.rpartition("=")
        parts = price.split("/")
        try:
            if not sep or not name.strip() or len(parts) != 2:
                raise ValueError(entry)
            low, high = float(parts[0]), float(parts[1])
            if low < 0 or high < 0:
                raise ValueError(entry)
        except ValueError:
            raise ConfigError(
                f"MODEL_PRICES: {entry!r} is not name=input/output (USD per million tokens, "
                "e.g. gpt-4o-mini=0.15/0.60)"
            ) from None
        prices.append((name.strip(), low, high))
    return tuple(prices)


def price_of(
    model: str, extra: tuple[tuple[str, float, float], ...] = ()
) -> tuple[float, float] | None:
    """USD per million (input, output) tokens of ``model``, or None when it is unknown."""
    table = {**DEFAULT_PRICES, **{name: (low, high) for name, low, high in extra}}
    if model in table:
        return table[model]
    undated = re.sub(r"-\d{4}-\d{2}-\d{2}$", "", model)
    return table.get(undated)


@dataclass(frozen=True)
class Settings:
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_app_token: str = ""
    slack_api_url: str = _DEFAULTS["SLACK_API_URL"]
    slack_client_id: str = ""
    slack_client_secret: str = ""
    allowed_channels: tuple[str, ...] = ()
    allowed_users: tuple[str, ...] = ()
    admin_users: tuple[str, ...] = ()
    openai_api_key: str = ""
    openai_base_url: str = _DEFAULTS["OPENAI_BASE_URL"]
    openai_model: str = _DEFAULTS["OPENAI_MODEL"]
    openai_timeout: float = 60.0
    openai_max_retries: int = 2
    openai_response_format: str = "json_schema"
    code_max_bytes: int = 65536
    database_url: str = _DEFAULTS["DATABASE_URL"]
    task_queue: str = "local"
    celery_broker_url: str = _DEFAULTS["CELERY_BROKER_URL"]
    worker_concurrency: int = 2
    sandbox_wall_seconds: float = 30.0
    sandbox_cpu_seconds: int = 20
    sandbox_memory_mb: int = 512
    sandbox_max_processes: int = 32
    sandbox_max_file_mb: int = 50
    sandbox_max_open_files: int = 256
    sandbox_max_output_kb: int = 1024
    sandbox_max_input_mb: int = 20
    sandbox_packages: tuple[str, ...] = (
        "numpy",
        "pandas",
        "matplotlib",
        "PIL",
        "openpyxl",
        "pyarrow",
        "pypdf",
        "docx",
    )
    sandbox_insecure: bool = False
    api_token: str = ""
    port: int = 3000
    log_level: str = "INFO"
    model_prices: tuple[tuple[str, float, float], ...] = ()
    budget_user_daily_tokens: int = 0
    budget_user_daily_usd: float = 0.0
    budget_user_daily_cpu_seconds: float = 0.0
    budget_workspace_daily_tokens: int = 0
    budget_workspace_daily_usd: float = 0.0
    budget_workspace_daily_cpu_seconds: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def raw(name: str) -> str:
            return env.get(name, _DEFAULTS[name]).strip()

        def number(name: str, kind: type[int] | type[float]) -> int | float:
            value = raw(name) or _DEFAULTS[name]
            try:
                parsed = kind(value)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {value!r}") from None
            if parsed < 0:
                raise ConfigError(f"{name} must not be negative, got {value!r}")
            return parsed

        queue = raw("TASK_QUEUE") or "local"
        if queue not in ("local", "celery"):
            raise ConfigError(f"TASK_QUEUE must be 'local' or 'celery', got {queue!r}")
        response_format = raw("OPENAI_RESPONSE_FORMAT") or "json_schema"
        if response_format not in ("json_schema", "json_object"):
            raise ConfigError(
                f"OPENAI_RESPONSE_FORMAT must be 'json_schema' or 'json_object', "
                f"got {response_format!r}"
            )
        prices = parse_prices(raw("MODEL_PRICES"))
        money = [
            n for n in ("BUDGET_USER_DAILY_USD", "BUDGET_WORKSPACE_DAILY_USD") if number(n, float)
        ]
        model = raw("OPENAI_MODEL") or _DEFAULTS["OPENAI_MODEL"]
        if money and price_of(model, prices) is None:
            raise ConfigError(
                f"{money[0]} is set but the price of {model!r} is unknown, so spending could not "
                f"be capped: add it to MODEL_PRICES (e.g. {model}=0.15/0.60), or budget tokens."
            )
        return cls(
            model_prices=prices,
            budget_user_daily_tokens=int(number("BUDGET_USER_DAILY_TOKENS", int)),
            budget_user_daily_usd=float(number("BUDGET_USER_DAILY_USD", float)),
            budget_user_daily_cpu_seconds=float(number("BUDGET_USER_DAILY_CPU_SECONDS", float)),
            budget_workspace_daily_tokens=int(number("BUDGET_WORKSPACE_DAILY_TOKENS", int)),
            budget_workspace_daily_usd=float(number("BUDGET_WORKSPACE_DAILY_USD", float)),
            budget_workspace_daily_cpu_seconds=float(
                number("BUDGET_WORKSPACE_DAILY_CPU_SECONDS", float)
            ),
            slack_bot_token=raw("SLACK_BOT_TOKEN"),
            slack_signing_secret=raw("SLACK_SIGNING_SECRET"),
            slack_app_token=raw("SLACK_APP_TOKEN"),
            slack_api_url=raw("SLACK_API_URL") or _DEFAULTS["SLACK_API_URL"],
            slack_client_id=raw("SLACK_CLIENT_ID"),
            slack_client_secret=raw("SLACK_CLIENT_SECRET"),
            allowed_channels=_csv(raw("ALLOWED_CHANNELS")),
            allowed_users=_csv(raw("ALLOWED_USERS")),
            admin_users=_csv(raw("ADMIN_USERS")),
            openai_api_key=raw("OPENAI_API_KEY"),
            openai_base_url=raw("OPENAI_BASE_URL") or _DEFAULTS["OPENAI_BASE_URL"],
            openai_model=raw("OPENAI_MODEL") or _DEFAULTS["OPENAI_MODEL"],
            openai_timeout=float(number("OPENAI_TIMEOUT", float)),
            openai_max_retries=int(number("OPENAI_MAX_RETRIES", int)),
            openai_response_format=response_format,
            code_max_bytes=int(number("CODE_MAX_BYTES", int)),
            database_url=raw("DATABASE_URL") or _DEFAULTS["DATABASE_URL"],
            task_queue=queue,
            celery_broker_url=raw("CELERY_BROKER_URL") or _DEFAULTS["CELERY_BROKER_URL"],
            worker_concurrency=max(1, int(number("WORKER_CONCURRENCY", int))),
            sandbox_wall_seconds=float(number("SANDBOX_WALL_SECONDS", float)),
            sandbox_cpu_seconds=int(number("SANDBOX_CPU_SECONDS", int)),
            sandbox_memory_mb=int(number("SANDBOX_MEMORY_MB", int)),
            sandbox_max_processes=int(number("SANDBOX_MAX_PROCESSES", int)),
            sandbox_max_file_mb=int(number("SANDBOX_MAX_FILE_MB", int)),
            sandbox_max_open_files=int(number("SANDBOX_MAX_OPEN_FILES", int)),
            sandbox_max_output_kb=int(number("SANDBOX_MAX_OUTPUT_KB", int)),
            sandbox_max_input_mb=int(number("SANDBOX_MAX_INPUT_MB", int)),
            sandbox_packages=_csv(raw("SANDBOX_PACKAGES")),
            sandbox_insecure=raw("SANDBOX_INSECURE").lower() in ("1", "true", "yes"),
            api_token=raw("API_TOKEN"),
            port=int(number("PORT", int)),
            log_level=(raw("LOG_LEVEL") or "INFO").upper(),
        )

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


def example_env() -> str:
    """The text of ``.example.env``: every setting with its default and what it does."""
    lines = [
        "# Taskbot configuration. Copy to .env and fill in what you need.",
        "# Every variable is optional unless its line says otherwise; the value shown is the default.",
    ]
    group = ""
    for setting in SETTINGS:
        if setting.group != group:
            group = setting.group
            lines += ["", f"# --- {group} ---"]
        lines.append(f"# {setting.doc}")
        lines.append(f"{setting.name}={setting.default}")
    return "\n".join(lines) + "\n"


PROJECT_DIR = Path(__file__).resolve().parents[1]


def find_env_file() -> Path:
    """``.env`` in the current folder when there is one, else the project's."""
    here = Path.cwd() / ".env"
    return here if here.is_file() else PROJECT_DIR / ".env"


def anchor_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path made absolute against ``base``; other URLs unchanged."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if Path(database).is_absolute() or database.startswith("file:"):
        return url
    return parsed.set(database=str(base / database)).render_as_string(hide_password=False)


def load_settings(env_file: Path | None = None) -> Settings:
    """Read ``.env`` (when present, never overriding the real environment), then the environment.

    A relative SQLite path is relative to the folder of the ``.env`` it came from, and the
    default database lives in the project folder, so ``./scripts/run.sh`` finds the same tasks
    from any folder; a relative path in the real environment is relative to the current folder.
    """
    from dotenv import load_dotenv

    env_file = env_file or find_env_file()
    from_environment = bool(os.environ.get("DATABASE_URL", "").strip())
    load_dotenv(env_file, override=False)
    settings = Settings.from_env()
    base = Path.cwd() if from_environment else env_file.resolve().parent
    return replace(settings, database_url=anchor_sqlite(settings.database_url, base))


_SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD")


def redact_value(name: str, value: str) -> str:
    """What ``python -m bot config`` shows of a value: secrets as set/unset, URL passwords hidden."""
    if any(word in name for word in _SECRET_WORDS):
        return "  # set (hidden)" if value else "  # not set"
    if "://" in value:
        from urllib.parse import urlsplit, urlunsplit

        try:
            parts = urlsplit(value)
            password = parts.password
        except ValueError:
            return "<unreadable URL>"
        if password is not None:
            user = parts.username or ""
            host = parts.netloc.rsplit("@", 1)[1]
            return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    return value


def current_env(environ: Mapping[str, str] | None = None) -> str:
    """Every setting in use, as ``.env`` lines a user can copy, secrets redacted."""
    env = os.environ if environ is None else environ
    lines = ["# Taskbot settings in use; secrets and passwords in URLs are hidden."]
    for setting in SETTINGS:
        value = env.get(setting.name, setting.default).strip()
        lines.append(f"{setting.name}={redact_value(setting.name, value)}")
    return "\n".join(lines) + "\n"
