/**
 * Names that become SQL identifiers (schemas, roles) or keys (collections, fields). Each is checked
 * against a strict pattern before it reaches postgres.js's identifier helper; nothing is concatenated
 * into SQL text.
 */
import { createHash } from "node:crypto";
import { ENTITY_NAME } from "../../config/customers.ts";
import { DataError } from "./errors.ts";

export { ENTITY_NAME };
export const COLLECTION_NAME = /^[a-z][a-z0-9_]{0,62}$/;
export const FIELD_NAME = /^[a-z][a-z0-9_]{0,62}$/;

export function assertEntityName(name: string): string {
  if (!ENTITY_NAME.test(name))
    throw new DataError(
      "unknown_entity",
      `entity name must match ${ENTITY_NAME.source} (lower case, digits, _; at most 31 characters)`,
    );
  return name;
}

/** The schema that holds an entity's collections, records, versions and audit log. */
export function entitySchema(entity: string): string {
  return `entity_${assertEntityName(entity)}`;
}

/**
 * Roles are cluster-wide while schemas are per database, so role names carry a short digest of the
 * database name: two databases on one server (tests, or two appliances) never share a role.
 */
export function roleNames(database: string): { entity(name: string): string; app: string } {
  const tag = createHash("sha256").update(database).digest("hex").slice(0, 8);
  return { entity: (name) => `axe_${tag}_e_${assertEntityName(name)}`, app: `axe_${tag}_app` };
}
