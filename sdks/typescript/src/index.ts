/**
 * OpenSandbox SDK for Node.js (>= 20). Zero runtime dependencies; uses the
 * global `fetch`.
 *
 * ```ts
 * import { Project, Sandbox } from "opensandbox";
 * await Project.create({ name: "demo", egressAllowlist: ["api.example.com"] });
 * await Project.setSecret("demo", "API_KEY", process.env.API_KEY!, { allowedHosts: ["api.example.com"] });
 * const sandbox = await Sandbox.create({ project: "demo" });
 * const { stdout } = await sandbox.exec.run("echo $API_KEY");   // osb_sealed_...
 * await sandbox.kill();
 * ```
 */
export { Project } from "./project.js";
export { SecretGroup } from "./secretGroup.js";
export { ApiKey } from "./apiKey.js";
export { Template, type TemplateInfo, type TemplateTarball } from "./templates.js";
export { Sandbox, SandboxExec, buildExecBody, type ExecRequestBody } from "./sandbox.js";
export { SandboxFiles, type FileEntry, type FileListing, type WriteOptions } from "./files.js";
export {
  Commands,
  Pty,
  PtySession,
  type CommandInfo,
  type CommandOptions,
  type CommandResult,
  type PtyOptions,
  type RunOptions,
} from "./commands.js";
export {
  DEFAULT_API_URL,
  DEFAULT_MAX_RETRIES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY_DELAY_MS,
  resolveConfig,
  type ConnectionOptions,
  type ResolvedConfig,
} from "./config.js";
export {
  AuthenticationError,
  BadRequestError,
  ConfigurationError,
  ConflictError,
  ConnectionError,
  NotFoundError,
  OpenSandboxError,
  PayloadTooLargeError,
  ServiceUnavailableError,
} from "./errors.js";
export { ApiRequest, HttpClient, type HttpMethod } from "./http.js";
export type {
  ApiKeyInfo,
  ApiKeyScope,
  CheckpointInfo,
  ExecOptions,
  ExecResult,
  ProjectCreateParams,
  ProjectInfo,
  ProjectUpdateParams,
  SandboxCreateParams,
  SandboxInfo,
  SecretGroupInfo,
  RequestRule,
  SecretInfo,
  SecretKind,
  SetSecretOptions,
} from "./types.js";
