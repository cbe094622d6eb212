/**
 * customers.yaml: the fleet. Every customer, its e-mail domains, host, machine, Entra tenant and
 * application, its entities, and the backup ring order.
 */
import { z } from "zod";
import { ConfigError } from "../lib/errors.ts";
import { type KeyPath, YamlSource } from "./yaml-source.ts";

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/**
 * A customer or entity name: it becomes part of Postgres identifiers (schema entity_<name>, role
 * names; src/frame/store/names.ts), so it is checked here, where it enters, and again there.
 */
export const ENTITY_NAME = /^[a-z][a-z0-9_]{0,30}$/;
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

export const ROLES = ["reader", "writer", "admin"] as const;
export type Role = (typeof ROLES)[number];

const name = (what: string) =>
  z
    .string()
    .regex(
      ENTITY_NAME,
      `expected a ${what} name: lower-case letters, digits and _, starting with a letter, at most 31 characters`,
    );
/**
 * Lower case, as Entra writes ids in tokens (tid, azp, groups): an id written in upper case here and
 * compared exactly would never match, and a group mapping that never matches sends its members to
 * the entity of their e-mail domain.
 */
const guid = (what: string) =>
  z.string().regex(GUID, `expected ${what} as a GUID like 122fb574-6f3c-4b8e-9d21-5a7c0e4f8b13`).toLowerCase();
const domain = z.string().regex(DOMAIN, "expected a lower-case e-mail domain such as axellc.com");

const EntitySchema = z.strictObject({
  name: name("entity"),
  domains: z.array(domain).default([]),
  /** Entra app role values that put a user in this entity (takes precedence over the domain). */
  app_roles: z.array(z.string().min(1)).default([]),
  /** Entra group object ids that put a user in this entity (takes precedence over the domain). */
  groups: z.array(guid("a group object id")).default([]),
});

const EntraSchema = z.strictObject({
  tenant_id: z.union([z.literal("TBD"), guid("the Entra tenant id")]),
  /** The API app registration's client id: the `aud` of v2 access tokens. */
  client_id: z.union([z.literal("TBD"), guid("the API application's client id")]).default("TBD"),
  /** Application ID URI: the `aud` of v1 tokens, e.g. the MCP URL. */
  app_id_uri: z.url("expected an Application ID URI such as https://axe.axelabs.ai/frame/mcp").optional(),
  accept_v1_tokens: z.boolean().default(false),
  /** Delegated scope every user token must carry in `scp`. */
  scope: z
    .string()
    .regex(/^[\w.-]+$/, "expected a scope name such as frame.access")
    .default("frame.access"),
  /** Client ids of connector apps allowed to call (token `azp` / `appid`); empty allows any in the tenant. */
  allowed_clients: z.array(guid("a client id")).default([]),
  allow_guests: z.boolean().default(false),
  allow_app_only: z.boolean().default(false),
  /** Entra app role value to frame role; users with none of them get `default_role`. */
  roles: z
    .record(z.string().min(1), z.enum(ROLES))
    .default({ "Frame.Read": "reader", "Frame.Write": "writer", "Frame.Admin": "admin" }),
  default_role: z.enum([...ROLES, "none"]).default("writer"),
});

const CustomerSchema = z.strictObject({
  name: name("customer"),
  domains: z.array(domain).min(1, "expected at least one e-mail domain"),
  host: z.string().regex(/^[a-z0-9.-]+$/, "expected a host name such as axe.axelabs.ai"),
  machine: z.string().min(1, "expected the machine's Tailscale name"),
  ssh_user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]*$/)
    .default("axe"),
  entra: EntraSchema,
  entities: z.array(EntitySchema).optional(),
});

export const CustomersFileSchema = z.strictObject({
  /** Operator's Ed25519 release public key (SPKI PEM); deploys are verified against it. */
  release_public_key: z.string().startsWith("-----BEGIN PUBLIC KEY-----", "expected an SPKI PEM public key").optional(),
  /** Backup ring order; default: the order of `customers`. */
  ring: z.array(name("customer")).optional(),
  customers: z.array(CustomerSchema).min(1, "expected at least one customer"),
});

export type CustomersFile = z.output<typeof CustomersFileSchema>;
export type Customer = z.output<typeof CustomerSchema> & { entities: Entity[] };
export type Entity = z.output<typeof EntitySchema>;
export type EntraConfig = z.output<typeof EntraSchema>;

export interface Fleet {
  file: string;
  releasePublicKey?: string;
  customers: Customer[];
  ring: string[];
}

/** Reads and validates customers.yaml, including the rules that span customers. */
export function loadFleet(file: string): Fleet {
  const source = YamlSource.read(file);
  return checkFleet(source, source.validate(CustomersFileSchema));
}

export function checkFleet(source: YamlSource, raw: CustomersFile): Fleet {
  const problems: string[] = [];
  const domainOwner = new Map<string, string>();
  const names = new Set<string>();
  const customers: Customer[] = raw.customers.map((customer, i) => {
    if (names.has(customer.name))
      problems.push(source.problem(["customers", i, "name"], `customer "${customer.name}" is listed twice`));
    names.add(customer.name);
    customer.domains.forEach((d, j) => {
      const owner = domainOwner.get(d);
      if (owner)
        problems.push(
          source.problem(
            ["customers", i, "domains", j],
            `domain ${d} is already listed for customer ${owner}; a domain belongs to one customer`,
          ),
        );
      else domainOwner.set(d, customer.name);
    });
    const entities = customer.entities ?? [
      { name: customer.name, domains: customer.domains, app_roles: [], groups: [] },
    ];
    const entityNames = new Set<string>();
    // An account maps to one entity: a key that two entities list sent all its accounts to the first.
    const mappedBy = new Map<string, string>();
    const mapOnce = (kind: string, key: string, entity: string, path: KeyPath) => {
      const owner = mappedBy.get(`${kind}\0${key}`);
      if (owner && owner !== entity)
        problems.push(
          source.problem(
            path,
            `${kind} ${key} already maps accounts to entity ${owner}; an account belongs to one entity, so list it under one`,
          ),
        );
      else mappedBy.set(`${kind}\0${key}`, entity);
    };
    entities.forEach((entity, j) => {
      const at = (key: string, k: number) => ["customers", i, "entities", j, key, k];
      for (const [k, d] of entity.domains.entries()) mapOnce("domain", d, entity.name, at("domains", k));
      for (const [k, g] of entity.groups.entries()) mapOnce("group", g, entity.name, at("groups", k));
      for (const [k, r] of entity.app_roles.entries()) mapOnce("app role", r, entity.name, at("app_roles", k));
      if (entityNames.has(entity.name))
        problems.push(
          source.problem(["customers", i, "entities", j, "name"], `entity "${entity.name}" is listed twice`),
        );
      entityNames.add(entity.name);
      entity.domains.forEach((d, k) => {
        if (!customer.domains.includes(d))
          problems.push(
            source.problem(
              ["customers", i, "entities", j, "domains", k],
              `domain ${d} is not one of customer ${customer.name}'s domains (${customer.domains.join(", ")})`,
            ),
          );
      });
    });
    return { ...customer, entities };
  });
  const ring = raw.ring ?? customers.map((c) => c.name);
  ring.forEach((member, i) => {
    if (!names.has(member))
      problems.push(
        source.problem(
          ["ring", i],
          `ring names unknown customer "${member}"; expected one of ${[...names].join(", ")}`,
        ),
      );
  });
  if (problems.length)
    throw new ConfigError("CONFIG_INVALID", problems.join("\n"), "fix customers.yaml and run `axe-appliance doctor`");
  return { file: source.file, releasePublicKey: raw.release_public_key, customers, ring };
}

/** The customer after `name` in the backup ring (the machine that keeps our tier-2 copy). */
export function ringPeer(fleet: Fleet, name: string): Customer | undefined {
  const at = fleet.ring.indexOf(name);
  if (at < 0 || fleet.ring.length < 2) return undefined;
  const peer = fleet.ring[(at + 1) % fleet.ring.length];
  return fleet.customers.find((c) => c.name === peer);
}

/** The customer whose domains include the e-mail domain, if any. */
export function customerForDomain(fleet: Fleet, emailDomain: string): Customer | undefined {
  const d = emailDomain.toLowerCase();
  return fleet.customers.find((c) => c.domains.includes(d));
}
