/** list_collections (reader) and define_collection (admin). */
import { z } from "zod";
import { type Collection, defineCollection, listCollections } from "../store/collections.ts";
import { FIELD_TYPES } from "../store/fields.ts";
import { CollectionName, inEntity } from "./data-common.ts";
import { defineTool, READ_ONLY } from "./registry.ts";

const FieldShape = z.object({
  type: z.enum(FIELD_TYPES),
  required: z.boolean(),
  pii: z.boolean(),
  searchable: z.boolean(),
  max_length: z.number().int().optional(),
  description: z.string().optional(),
});

const CollectionShape = z.object({
  name: z.string(),
  description: z.string().optional(),
  fields: z.record(z.string(), FieldShape),
  version: z.number().int(),
  updated_at: z.string(),
});

export function collectionOut(c: Collection): z.input<typeof CollectionShape> {
  return {
    name: c.name,
    ...(c.definition.description ? { description: c.definition.description } : {}),
    fields: c.definition.fields,
    version: c.version,
    updated_at: c.updatedAt.toISOString(),
  };
}

export const listCollectionsTool = defineTool({
  name: "list_collections",
  title: "List collections",
  description:
    "Lists the collections (record types) of your entity with their fields: type, whether required, whether PII " +
    "(encrypted; exact-match search only) and whether full-text searchable. Call it before creating or searching records.",
  input: z.strictObject({}),
  output: z.object({ collections: z.array(CollectionShape) }),
  annotations: READ_ONLY,
  role: "reader",
  async handler(ctx) {
    return { collections: (await inEntity(ctx, (tx) => listCollections(tx))).map(collectionOut) };
  },
});

export const defineCollectionTool = defineTool({
  name: "define_collection",
  title: "Define a collection",
  description:
    "Admin only. Creates a collection or extends an existing one. `fields` maps each field name to " +
    `{ type: ${FIELD_TYPES.join("|")}, required?, pii?, searchable?, max_length?, description? }. ` +
    "PII fields are encrypted and can be found by exact value only, so they cannot be searchable. " +
    "Redefining may add fields or relax them; it never removes a field or changes its type or PII flag (send every existing field again).",
  input: z.strictObject({
    name: CollectionName,
    description: z.string().max(1000).optional(),
    fields: z.record(z.string().max(200), z.unknown()).describe("field name to field definition"),
  }),
  output: CollectionShape,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  role: "admin",
  async handler(ctx, input) {
    const definition = {
      fields: input.fields,
      ...(input.description !== undefined ? { description: input.description } : {}),
    };
    return collectionOut(
      await inEntity(
        ctx,
        (tx) => defineCollection(tx, ctx.principal.id, input.name, definition),
        (c) => ({ collection: c.name, version: c.version }),
      ),
    );
  },
});
