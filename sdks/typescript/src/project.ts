/**
 * Projects and their secrets: `/api/projects`.
 *
 * Every method is static and stateless; the last argument carries the
 * connection options (apiUrl, apiKey, ...). Values passed to setSecret are
 * sent once and never appear in errors or logs.
 */
import { splitConnectionOptions, type ConnectionOptions } from "./config.js";
import { Collection } from "./collection.js";
import type { ProjectCreateParams, ProjectInfo, ProjectUpdateParams, SecretInfo, SetSecretOptions } from "./types.js";

const PROJECTS = new Collection<ProjectInfo>("/api/projects");

export class Project {
  private constructor() {}

  /** `POST /api/projects`. Throws ConflictError (409) when the name is taken. */
  static async create(params: ProjectCreateParams & ConnectionOptions): Promise<ProjectInfo> {
    const [conn, body] = splitConnectionOptions(params);
    return PROJECTS.create(body, conn);
  }

  /** `GET /api/projects`: every project of your org. */
  static async list(opts: ConnectionOptions = {}): Promise<ProjectInfo[]> {
    return PROJECTS.list(opts);
  }

  /** `GET /api/projects/{idOrName}`. Throws NotFoundError (404). */
  static async get(idOrName: string, opts: ConnectionOptions = {}): Promise<ProjectInfo> {
    return PROJECTS.get(idOrName, opts);
  }

  /** `PATCH /api/projects/{idOrName}`: a partial merge; fields left out keep their values. */
  static async update(idOrName: string, params: ProjectUpdateParams, opts: ConnectionOptions = {}): Promise<ProjectInfo> {
    return PROJECTS.update(idOrName, params, opts);
  }

  /** `DELETE /api/projects/{idOrName}`: removes the project and its secrets. */
  static async delete(idOrName: string, opts: ConnectionOptions = {}): Promise<void> {
    return PROJECTS.delete(idOrName, opts);
  }

  /**
   * `PUT /api/projects/{project}/secrets/{name}`: creates or replaces a secret.
   * Running sandboxes of the project keep their sealed token and start using
   * the new value.
   */
  static async setSecret(
    project: string,
    name: string,
    value: string,
    opts: SetSecretOptions & ConnectionOptions = {},
  ): Promise<SecretInfo | undefined> {
    return PROJECTS.setSecret(project, name, value, opts);
  }

  /** `GET /api/projects/{project}/secrets`: names and metadata, never values. */
  static async listSecrets(project: string, opts: ConnectionOptions = {}): Promise<SecretInfo[]> {
    return PROJECTS.listSecrets(project, opts);
  }

  /** `DELETE /api/projects/{project}/secrets/{name}`. */
  static async deleteSecret(project: string, name: string, opts: ConnectionOptions = {}): Promise<void> {
    return PROJECTS.deleteSecret(project, name, opts);
  }
}
