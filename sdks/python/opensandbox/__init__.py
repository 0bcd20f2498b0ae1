"""OpenSandbox SDK for Python (>= 3.9, standard library only).

Quick start::

    from opensandbox import Project, Sandbox

    Project.create("demo", egress_allowlist=["api.example.com"])
    Project.set_secret("demo", "API_KEY", "sk-...", allowed_hosts=["api.example.com"])
    with Sandbox.create(project="demo") as sandbox:
        print(sandbox.exec.run("echo $API_KEY").stdout)   # osb_sealed_...

Configuration: ``api_url`` / ``api_key`` keyword arguments (or a
:class:`ConnectionConfig`), else ``OPENSANDBOX_API_URL`` /
``OPENSANDBOX_API_KEY``, else ``http://127.0.0.1:8080``.

Async: :class:`AsyncProject`, :class:`AsyncSecretGroup`, :class:`AsyncApiKey`
and :class:`AsyncSandbox` have the same methods as coroutines; each runs the
blocking request in a worker thread (``asyncio.to_thread``).
"""

from ._config import (
    DEFAULT_API_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_RETRY_DELAY,
    ConnectionConfig,
    resolve_config,
)
from ._http import ApiRequest
from .errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ConnectionError,
    NotFoundError,
    OpenSandboxError,
    PayloadTooLargeError,
    ServiceUnavailableError,
)
from .api_key import ApiKey, AsyncApiKey
from .models import ApiKeyInfo, ExecResult, ProjectInfo, SandboxInfo, SecretGroupInfo, SecretInfo
from .project import AsyncProject, Project
from .files import FileEntry, SandboxFiles
from .sandbox import AsyncSandbox, AsyncSandboxExec, AsyncSandboxFiles, Sandbox, SandboxExec, build_exec_body
from .secret_group import AsyncSecretGroup, SecretGroup
from .commands import CommandInfo, CommandResult, Commands, Pty, PtySession
from .templates import AsyncTemplate, Template, TemplateInfo

__version__ = "0.1.0"

__all__ = [
    "Template",
    "AsyncTemplate",
    "TemplateInfo",
    "Project",
    "AsyncProject",
    "SecretGroup",
    "AsyncSecretGroup",
    "ApiKey",
    "AsyncApiKey",
    "Sandbox",
    "AsyncSandbox",
    "SandboxExec",
    "AsyncSandboxExec",
    "SandboxFiles",
    "AsyncSandboxFiles",
    "FileEntry",
    "build_exec_body",
    "ProjectInfo",
    "SecretInfo",
    "SecretGroupInfo",
    "SandboxInfo",
    "ApiKeyInfo",
    "ExecResult",
    "Commands",
    "CommandInfo",
    "CommandResult",
    "Pty",
    "PtySession",
    "ConnectionConfig",
    "resolve_config",
    "ApiRequest",
    "DEFAULT_API_URL",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RETRY_DELAY",
    "OpenSandboxError",
    "BadRequestError",
    "AuthenticationError",
    "NotFoundError",
    "ConflictError",
    "PayloadTooLargeError",
    "ServiceUnavailableError",
    "ConnectionError",
    "ConfigurationError",
]
