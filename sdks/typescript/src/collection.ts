/**
 * What projects and secret groups share: a REST collection (`/api/projects`,
 * `/api/secret-groups`) whose items each hold secrets (`{item}/secrets/{NAME}`).
 * `Project` and `SecretGroup` keep their own static signatures and docs and
 * delegate here, so the routes and the secret handling exist once.
 */
import { splitConnectionOptions, type ConnectionOptions } from "./config.js";
import { ApiRequest, HttpClient, seg } from "./http.js";
import { deleteSecretAt, listSecretsAt, setSecretAt } from "./secrets.js";
import type { SecretInfo, SetSecretOptions } from "./types.js";

export class Collection<Info> {
  constructor(readonly prefix: string) {}

  item(idOrName: string): string {
    return `${this.prefix}/${seg(idOrName)}`;
  }

  async create(body: unknown, conn: ConnectionOptions): Promise<Info> {
    return new HttpClient(conn).send<Info>(new ApiRequest("POST", this.prefix, body));
  }

  async list(opts: ConnectionOptions): Promise<Info[]> {
    return new HttpClient(opts).send<Info[]>(new ApiRequest("GET", this.prefix));
  }

  async get(idOrName: string, opts: ConnectionOptions): Promise<Info> {
    const client = new HttpClient(opts);
    return client.send<Info>(new ApiRequest("GET", this.item(idOrName)));
  }

  async update(idOrName: string, body: unknown, opts: ConnectionOptions): Promise<Info> {
    const client = new HttpClient(opts);
    return client.send<Info>(new ApiRequest("PATCH", this.item(idOrName), body));
  }

  async delete(idOrName: string, opts: ConnectionOptions): Promise<void> {
    const client = new HttpClient(opts);
    await client.send<unknown>(new ApiRequest("DELETE", this.item(idOrName)));
  }

  async setSecret(
    owner: string,
    name: string,
    value: string,
    opts: SetSecretOptions & ConnectionOptions,
  ): Promise<SecretInfo | undefined> {
    const [conn, rest] = splitConnectionOptions(opts);
    const client = new HttpClient(conn);
    return setSecretAt(client, this.item(owner), name, value, rest);
  }

  async listSecrets(owner: string, opts: ConnectionOptions): Promise<SecretInfo[]> {
    const client = new HttpClient(opts);
    return listSecretsAt(client, this.item(owner));
  }

  async deleteSecret(owner: string, name: string, opts: ConnectionOptions): Promise<void> {
    const client = new HttpClient(opts);
    return deleteSecretAt(client, this.item(owner), name);
  }
}
