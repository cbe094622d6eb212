/**
 * Collection schemas as MCP resources: `frame://collections/{name}` lists and reads the caller's
 * entity's collections as JSON. Lists and reads are audited like tool calls (tools "resources/list", "resources/read").
 * The server calls `registerCollectionResources` for each request's SDK Server.
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  ErrorCode,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  type ReadResourceResult,
} from "@modelcontextprotocol/sdk/types.js";
import type { Logger } from "../../lib/log.ts";
import { argsDigest } from "../args-digest.ts";
import type { AuditSink } from "../audit-sink.ts";
import type { Principal } from "../principal.ts";
import { getCollection, listCollections } from "../store/collections.ts";
import type { DataStore } from "../store/data-store.ts";
import { DataError } from "../store/errors.ts";
import { collectionOut } from "./collections.ts";

const PREFIX = "frame://collections/";
const uriOf = (name: string) => `${PREFIX}${name}`;

export interface ResourceDependencies {
  store: DataStore;
  audit: AuditSink;
  logger: Logger;
}

export function registerCollectionResources(
  server: Server,
  principal: Principal,
  deps: ResourceDependencies,
  requestId: string,
): void {
  /**
   * Runs a resource request and records it like a tool call (tool "resources/list" or
   * "resources/read"). Its errors answer as a tool call's do: a DataError says how to fix the
   * request, anything else is a bug the caller sees by request id and the log sees in full (the
   * SDK would send the error's own message, a database's words included).
   */
  const audited = async <T>(tool: string, args: Record<string, unknown>, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    let outcome: "ok" | "error" = "error";
    try {
      const result = await work();
      outcome = "ok";
      return result;
    } catch (error) {
      if (error instanceof McpError) throw error;
      if (error instanceof DataError)
        throw new McpError(ErrorCode.InvalidParams, `${error.message}; ${error.hint ?? ""}`);
      deps.logger.error("resource request failed", { requestId, tool, error });
      throw new McpError(
        ErrorCode.InternalError,
        `${tool} failed inside frame (request ${requestId}); this is a bug, not your input. Retry once; if it fails again, report the request id`,
      );
    } finally {
      void deps.audit
        .record({
          at: new Date(),
          who: principal.id,
          customer: principal.customer,
          entity: principal.entity,
          tool,
          outcome,
          durationMs: performance.now() - started,
          argsDigest: argsDigest(args),
          requestId,
          tokenKind: principal.kind,
        })
        .catch(() => {}); // the server logs sink failures for tool calls; a resource request is not worth failing
    }
  };
  server.setRequestHandler(ListResourcesRequestSchema, () =>
    audited("resources/list", {}, async () => {
      const collections = await deps.store.run(principal.entity, (tx) => listCollections(tx));
      return {
        resources: collections.map((c) => ({
          uri: uriOf(c.name),
          name: c.name,
          title: `Collection ${c.name}`,
          description: c.definition.description ?? `fields of the ${c.name} collection`,
          mimeType: "application/json",
        })),
      };
    }),
  );
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [
      {
        uriTemplate: `${PREFIX}{name}`,
        name: "collection",
        title: "Collection schema",
        description: "fields, types and PII flags of one collection",
        mimeType: "application/json",
      },
    ],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, (request) => {
    const uri = request.params.uri;
    return audited("resources/read", { uri }, async (): Promise<ReadResourceResult> => {
      if (!uri.startsWith(PREFIX))
        throw new McpError(
          ErrorCode.InvalidParams,
          `unknown resource ${uri.slice(0, 200)}; resources/list shows frame://collections/{name}`,
        );
      const name = uri.slice(PREFIX.length);
      const collection = await deps.store.run(principal.entity, (tx) => getCollection(tx, name));
      return { contents: [{ uri, mimeType: "application/json", text: JSON.stringify(collectionOut(collection)) }] };
    });
  });
}
