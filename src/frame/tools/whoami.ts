/** whoami: the caller's identity as frame sees it; the first tool a client should try. */
import { z } from "zod";
import { ROLES } from "../../config/customers.ts";
import { defineTool, READ_ONLY } from "./registry.ts";

export const whoamiTool = defineTool({
  name: "whoami",
  title: "Who am I",
  description:
    "Shows who frame thinks you are: your principal id, the customer and entity (company) whose data you work in, " +
    "your role (reader, writer or admin), the kind of token you signed in with and when it expires. Takes no arguments.",
  input: z.strictObject({}),
  output: z.object({
    principal: z
      .string()
      .describe("stable id: {tenant}/{object id} for Entra users, service:{id} for service tokens, dev for --no-auth"),
    kind: z.enum(["entra", "service", "dev"]),
    customer: z.string(),
    entity: z.string(),
    role: z.enum(ROLES),
    roles: z.array(z.enum(ROLES)).describe("every role this principal holds, the least first"),
    name: z.string().optional().describe("service token name"),
    scopes: z.array(z.string()),
    expiresAt: z.string().nullable().describe("ISO time the token expires, or null"),
  }),
  annotations: READ_ONLY,
  role: "reader",
  async handler({ principal }) {
    return {
      principal: principal.id,
      kind: principal.kind,
      customer: principal.customer,
      entity: principal.entity,
      role: principal.role,
      roles: ROLES.slice(0, ROLES.indexOf(principal.role) + 1),
      ...(principal.label ? { name: principal.label } : {}),
      scopes: principal.scopes,
      expiresAt: principal.expiresAt?.toISOString() ?? null,
    };
  },
});
