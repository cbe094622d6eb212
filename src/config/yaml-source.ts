/**
 * Parse a YAML file and validate it with a zod schema, turning every problem into a
 * ConfigError that names the file, the line, the key path and what was expected.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError } from "../lib/errors.ts";

export type KeyPath = ReadonlyArray<string | number>;

/** A parsed YAML file that can say on which line a key path stands. */
export class YamlSource {
  private constructor(
    readonly file: string,
    readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  static read(file: string): YamlSource {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      const reason =
        (error as NodeJS.ErrnoException).code === "ENOENT" ? "not found" : String((error as Error).message);
      throw new ConfigError("CONFIG_MISSING", `${file}: ${reason}`);
    }
    return YamlSource.parse(file, text);
  }

  static parse(file: string, text: string): YamlSource {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const source = new YamlSource(file, doc, lines);
    const first = doc.errors[0];
    if (first) {
      const line = lines.linePos(first.pos[0]).line;
      throw new ConfigError("CONFIG_SYNTAX", `${source.where(line)}: not valid YAML: ${first.message.split("\n")[0]}`);
    }
    return source;
  }

  /** `file:line` for the deepest node found along `path` (and, with `key`, that key itself). */
  locate(path: KeyPath, key?: string): string {
    let node: unknown = this.doc.contents;
    let line: number | undefined = this.lineOf(node as Node);
    for (const segment of key === undefined ? path : [...path, key]) {
      if (isMap(node)) {
        const pair = node.items.find((item) => isScalar(item.key) && String(item.key.value) === String(segment));
        if (!pair) break;
        line = this.lineOf(pair.key as Node) ?? line;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === "number") {
        node = node.items[segment];
        line = this.lineOf(node as Node) ?? line;
      } else break;
    }
    return this.where(line);
  }

  /** Validates the document; the first few problems are reported together. */
  validate<S extends z.ZodType>(schema: S): z.output<S> {
    const result = schema.safeParse(this.doc.toJS() ?? {});
    if (result.success) return result.data;
    const problems = result.error.issues.slice(0, 5).map((issue) => this.describe(issue));
    throw new ConfigError(
      "CONFIG_INVALID",
      problems.join("\n"),
      `fix ${basename(this.file)} and run \`axe-appliance doctor\``,
    );
  }

  /** One problem as `file:line: key.path: message`. */
  problem(path: KeyPath, message: string, key?: string): string {
    return `${this.locate(path, key)}: ${formatPath(key === undefined ? path : [...path, key])}: ${message}`;
  }

  private describe(issue: z.core.$ZodIssue): string {
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    if (issue.code === "unrecognized_keys") {
      const key = issue.keys[0] ?? "";
      return this.problem(
        path,
        `unknown key${issue.keys.length > 1 ? `s ${issue.keys.join(", ")}` : ""}; expected one of the documented keys (see appliance.example.yaml / customers.yaml)`,
        key,
      );
    }
    return this.problem(path, issue.message);
  }

  private lineOf(node: Node | undefined | null): number | undefined {
    const offset = node?.range?.[0];
    return offset === undefined ? undefined : this.lines.linePos(offset).line;
  }

  private where(line: number | undefined): string {
    return line === undefined ? this.file : `${this.file}:${line}`;
  }
}

export function formatPath(path: KeyPath): string {
  if (path.length === 0) return "(top level)";
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}
