/**
 * Every tool frame serves, in the order tools/list shows them. Add a tool by importing its
 * definition and appending it here (one line each); the server needs no other change.
 */
import type { ToolDefinition } from "./registry.ts";
import { whoamiTool } from "./whoami.ts";

export const TOOLS: readonly ToolDefinition[] = [
  whoamiTool,
];
