/**
 * Every tool frame serves, in the order tools/list shows them. Add a tool by importing its
 * definition and appending it here (one line each); the server needs no other change.
 */

import { queryAuditLogTool } from "./audit-log.ts";
import { defineCollectionTool, listCollectionsTool } from "./collections.ts";
import { recordHistoryTool } from "./history.ts";
import { createRecordTool, deleteRecordTool, getRecordTool, updateRecordTool } from "./records.ts";
import type { ToolDefinition } from "./registry.ts";
import { searchRecordsTool } from "./search.ts";
import { whoamiTool } from "./whoami.ts";

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
