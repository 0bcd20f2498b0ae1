/**
 * Projects and their secrets: `/api/projects`.
 *
 * Every method is static and stateless; the last argument carries the
 * connection options (apiUrl, apiKey, ...). Values passed to setSecret are
 * sent once and never appear in errors or logs.
 */
import { splitConnectionOptions, type ConnectionOptions } from "./config.js";
import { ApiRequest, HttpClient, seg } from "./http.js";
import type { ProjectCreateParams, ProjectInfo, ProjectUpdateParams, SecretInfo, SetSecretOptions } from "./types.js";
import { deleteSecretAt, listSecretsAt, setSecretAt } from "./secrets.js";

export class Project {
  private constructor() {}

  /** `POST /api/projects`. Throws ConflictError (409) when the name is taken. */
  static async create(params: ProjectCreateParams & ConnectionOptions): Promise<ProjectInfo> {
    const [conn, body] = splitConnectionOptions(params);
    return new HttpClient(conn).send<ProjectInfo>(new ApiRequest("POST", "/api/projects", body));
  }

  /** `GET /api/projects`: every project of your org. */
  static async list(opts: ConnectionOptions = {}): Promise<ProjectInfo[]> {
    return new HttpClient(opts).send<ProjectInfo[]>(new ApiRequest("GET", "/api/projects"));
  }

  /** `GET /api/projects/{idOrName}`. Throws NotFoundError (404). */
  static async get(idOrName: string, opts: ConnectionOptions = {}): Promise<ProjectInfo> {
    return new HttpClient(opts).send<ProjectInfo>(new ApiRequest("GET", `/api/projects/${seg(idOrName)}`));
  }

  /** `PATCH /api/projects/{idOrName}`: a partial merge; fields left out keep their values. */
  static async update(idOrName: string, params: ProjectUpdateParams, opts: ConnectionOptions = {}): Promise<ProjectInfo> {
    return new HttpClient(opts).send<ProjectInfo>(new ApiRequest("PATCH", `/api/projects/${seg(idOrName)}`, params));
  }

  /** `DELETE /api/projects/{idOrName}`: removes the project and its secrets. */
  static async delete(idOrName: string, opts: ConnectionOptions = {}): Promise<void> {
    await new HttpClient(opts).send<unknown>(new ApiRequest("DELETE", `/api/projects/${seg(idOrName)}`));
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
    const [conn, rest] = splitConnectionOptions(opts);
    return setSecretAt(new HttpClient(conn), `/api/projects/${seg(project)}`, name, value, rest);
  }

  /** `GET /api/projects/{project}/secrets`: names and metadata, never values. */
  static async listSecrets(project: string, opts: ConnectionOptions = {}): Promise<SecretInfo[]> {
    return listSecretsAt(new HttpClient(opts), `/api/projects/${seg(project)}`);
  }

  /** `DELETE /api/projects/{project}/secrets/{name}`. */
  static async deleteSecret(project: string, name: string, opts: ConnectionOptions = {}): Promise<void> {
    return deleteSecretAt(new HttpClient(opts), `/api/projects/${seg(project)}`, name);
  }
}
