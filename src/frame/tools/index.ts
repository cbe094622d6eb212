/**
 * Every tool frame serves, in the order tools/list shows them. Add a tool by importing its
 * definition and appending it here (one line each); the server needs no other change.
 */
import type { ToolDefinition } from "./registry.ts";
import { whoamiTool } from "./whoami.ts";
import { defineCollectionTool, listCollectionsTool } from "./collections.ts";
import { createRecordTool, deleteRecordTool, getRecordTool, updateRecordTool } from "./records.ts";
import { searchRecordsTool } from "./search.ts";
import { recordHistoryTool } from "./history.ts";
import { queryAuditLogTool } from "./audit-log.ts";

export const TOOLS: readonly ToolDefinition[] = [
  whoamiTool,
  listCollectionsTool,
  defineCollectionTool,
  createRecordTool,
  getRecordTool,
  updateRecordTool,
  deleteRecordTool,
  searchRecordsTool,
  recordHistoryTool,
  queryAuditLogTool,
];
