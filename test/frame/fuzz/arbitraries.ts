/**
 * fast-check arbitraries for frame's tool arguments, driven by each tool's published inputSchema:
 * values of the type a property asks for (at its edges) mixed with everything a careless or hostile
 * client sends instead: other JSON types, unicode edge cases (lone surrogates, NUL, combining marks,
 * BOM, right-to-left), numbers at the edges, impossible and out-of-range dates, prototype names as
 * keys, SQL- and JSON-path-like names, extra keys and deep nesting.
 */
import fc from "fast-check";

export interface FieldSpec {
  type: string;
  required?: boolean;
  pii?: boolean;
  searchable?: boolean;
  max_length?: number;
}

/** What the fuzzer knows about the server's state: collections with their fields, records it was given. */
export interface FuzzWorld {
  collections: string[];
  /** The definitions of the collections the suite made itself; calls aimed at them mostly fit. */
  definitions: Record<string, Record<string, FieldSpec>>;
  fields: string[];
  ids: string[];
  /** Records by collection, for update_record values that fit. */
  records: Array<{ id: string; collection: string }>;
}

export const PROTOTYPE_NAMES = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toLocaleString",
  "__defineGetter__",
  "__lookupSetter__",
];

const EDGE_STRINGS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff",
  "a\udc00",
  "\ud83d\ude00",
  "e\u0301",
  "\u0301",
  "\ufeff",
  "\ufffd",
  "\u202eabc",
  "\u2028",
  "ﬀ",
  "İ",
  "x".repeat(4097),
  "' or 1=1 --",
  "'; drop table records; --",
  "$.a[0]",
  "$..*",
  "a->>'b'",
  "%s%n",
  "../../etc/passwd",
  "00000000-0000-0000-0000-000000000000",
  "cG9zOjE",
  "cG9zOjk5OTk5OTk5OTk5OTk5OTk5OTk5",
  ...PROTOTYPE_NAMES,
];

const EDGE_NUMBERS = [
  0,
  -0,
  1,
  -1,
  0.5,
  -0.5,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  2 ** 53 - 1,
  2 ** 53 + 2,
  -(2 ** 53) - 2,
  1e308,
  -1e308,
  5e-324,
  100,
  101,
  200,
  201,
];

const DATE_EDGES = [
  "2026-02-30",
  "2026-02-31",
  "2026-02-31T00:00:00Z",
  "2025-02-29",
  "2025-13-01",
  "2025-00-10",
  "0000-01-01",
  "0001-01-01",
  "9999-12-31",
  "+010000-01-01T00:00:00Z",
  "-000001-01-01T00:00:00Z",
  "99999",
  "2026",
  "2026-01-31",
  "2026-01-31T09:30:00Z",
  "2026-01-31T09:30:60Z",
  "2026-01-31T24:00:00+15:00",
  "9999-12-31T23:59:59-14:00",
  "0001-01-01T00:00:00+14:00",
  "2026-01-31T09:30:00.1234567Z",
  "2026-01-31 09:30:00",
];

/** Date-like text: real days and times, impossible ones, years out of every range, odd zones. */
export const dateish: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...DATE_EDGES),
  fc
    .tuple(
      fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.constantFrom(-1, 99_999)),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 0, max: 32 }),
      fc.option(
        fc.tuple(
          fc.integer({ min: 0, max: 25 }),
          fc.integer({ min: 0, max: 61 }),
          fc.constantFrom("Z", "+14:00", "-14:00", "+15:00", ""),
        ),
      ),
    )
    .map(([y, m, d, t]) => {
      const pad = (n: number, w = 2) => String(n).padStart(w, "0");
      const day = `${y < 0 ? "-" : y > 9999 ? "+" : ""}${pad(Math.abs(y), y > 9999 || y < 0 ? 6 : 4)}-${pad(m)}-${pad(d)}`;
      return t ? `${day}T${pad(t[0])}:${pad(t[1])}:00${t[2]}` : day;
    }),
);

const surrogate = fc.constantFrom("\ud800", "\udbff", "\udc00", "\udfff");
const unit = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: "grapheme", maxLength: 1, minLength: 1 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 1, minLength: 1 }) },
  { weight: 1, arbitrary: surrogate },
  { weight: 1, arbitrary: fc.constantFrom("\u0000", "\u0301", "\ufeff", "\u202e") },
);

export const edgeString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...EDGE_STRINGS) },
  { weight: 1, arbitrary: dateish },
  { weight: 3, arbitrary: fc.string({ unit, maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 12 }) },
);

export const edgeNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(...EDGE_NUMBERS),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

const scalar: fc.Arbitrary<unknown> = fc.oneof(edgeString, edgeNumber, fc.boolean(), fc.constant(null));

/** `[[[...]]]` nested `depth` deep, built without recursion. */
export function nested(depth: number, inner: unknown = "x"): unknown {
  let value = inner;
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value };
  return value;
}

function keyOf(world: FuzzWorld): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 4, arbitrary: world.fields.length ? fc.constantFrom(...world.fields) : fc.constant("name") },
    { weight: 2, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) },
    { weight: 1, arbitrary: edgeString },
  );
}

/** Any JSON value, shallow mostly, now and then deeper than frame allows. */
export function anyJson(world: FuzzWorld): fc.Arbitrary<unknown> {
  const { value } = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      { weight: 6, arbitrary: scalar },
      { weight: 1, arbitrary: fc.array(tie("value"), { maxLength: 4 }) },
      { weight: 1, arbitrary: fc.dictionary(keyOf(world), tie("value"), { maxKeys: 4 }) },
    ),
  }));
  return fc.oneof(
    { weight: 20, arbitrary: value },
    { weight: 1, arbitrary: fc.integer({ min: 60, max: 3_000 }).map((d) => nested(d)) },
  );
}

type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
};

/** A value for one property: mostly what the schema asks for, at its edges; sometimes anything. */
function forSchema(name: string, schema: JsonSchema, world: FuzzWorld): fc.Arbitrary<unknown> {
  const wild = anyJson(world);
  const typed = typedFor(name, schema, world);
  return fc.oneof({ weight: 5, arbitrary: typed }, { weight: 1, arbitrary: wild });
}

function typedFor(name: string, schema: JsonSchema, world: FuzzWorld): fc.Arbitrary<unknown> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.anyOf?.length) return fc.oneof(...schema.anyOf.map((s) => typedFor(name, s, world)));
  if (name === "collection" || name === "name")
    return fc.oneof(
      { weight: 4, arbitrary: world.collections.length ? fc.constantFrom(...world.collections) : edgeString },
      { weight: 1, arbitrary: edgeString },
    );
  if (name === "id")
    return fc.oneof(
      { weight: 4, arbitrary: world.ids.length ? fc.constantFrom(...world.ids) : fc.uuid() },
      { weight: 1, arbitrary: fc.uuid() },
      { weight: 1, arbitrary: edgeString },
    );
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  if (type === "string" && /date|time/i.test(`${name} ${(schema as { description?: string }).description ?? ""}`))
    return fc.oneof({ weight: 3, arbitrary: dateish }, { weight: 1, arbitrary: edgeString });
  switch (type) {
    case "string":
      return edgeString;
    case "integer":
    case "number":
      return fc.oneof(
        edgeNumber,
        fc.integer({
          min: Math.max(schema.minimum ?? -1000, -(2 ** 31)),
          max: Math.min(schema.maximum ?? 1000, 2 ** 31),
        }),
      );
    case "boolean":
      return fc.boolean();
    case "array":
      return fc.array(anyJson(world), { maxLength: 4 });
    case "object":
      if (schema.properties) return objectFor(schema, world);
      if (name === "values" || name === "filters") return valuesFor(world, undefined);
      if (name === "fields") return fieldsArbitrary(world);
      // A record of field name to value (values, filters).
      return fc.dictionary(keyOf(world), fc.oneof(scalar, anyJson(world)), { maxKeys: 5 });
    default:
      return anyJson(world);
  }
}

/** define_collection's fields: mostly well-formed definitions, with edges in every slot. */
function fieldsArbitrary(world: FuzzWorld): fc.Arbitrary<unknown> {
  const definition = fc.record(
    {
      type: fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom("string", "number", "integer", "boolean", "date", "datetime") },
        { weight: 1, arbitrary: edgeString },
      ),
      required: fc.oneof(fc.boolean(), scalar),
      pii: fc.boolean(),
      searchable: fc.boolean(),
      max_length: fc.oneof(fc.integer({ min: 1, max: 70_000 }), edgeNumber),
      description: edgeString,
      extra: anyJson(world),
    },
    { requiredKeys: ["type"] },
  );
  return fc.dictionary(
    keyOf(world),
    fc.oneof({ weight: 5, arbitrary: definition }, { weight: 1, arbitrary: anyJson(world) }),
    {
      minKeys: 0,
      maxKeys: 4,
    },
  );
}

/** A value that fits a field of this type (within its max_length). */
function fitting(field: FieldSpec): fc.Arbitrary<unknown> {
  switch (field.type) {
    case "string": {
      // Now and then with surrogates, NUL and combining marks: strings are where most holes were.
      const maxLength = Math.min(field.max_length ?? 40, 40);
      return fc.oneof(
        { weight: 3, arbitrary: fc.string({ unit: "grapheme", maxLength }) },
        fc.string({ unit, maxLength }),
      );
    }
    case "integer":
      return fc.integer();
    case "number":
      return fc.double({ noNaN: true, noDefaultInfinity: true });
    case "boolean":
      return fc.boolean();
    case "date":
      return fc
        .date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T00:00:00Z"), noInvalidDate: true })
        .map((d) => d.toISOString().slice(0, 10));
    default:
      return fc
        .date({ min: new Date("0001-01-02T00:00:00Z"), max: new Date("9999-12-30T00:00:00Z"), noInvalidDate: true })
        .map((d) => d.toISOString());
  }
}

/** What a hostile or careless client puts in one slot instead. */
function hazard(world: FuzzWorld): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: edgeString },
    { weight: 1, arbitrary: dateish },
    { weight: 1, arbitrary: edgeNumber },
    { weight: 2, arbitrary: anyJson(world) },
    { weight: 1, arbitrary: fc.constant(null) },
  );
}

/**
 * Values for `collection` (or one of the suite's own collections): every field of it with a fitting
 * value, then, half the time, one slot (a field, a prototype name, any key) given a hazard.
 */
export function valuesFor(world: FuzzWorld, collection: string | undefined): fc.Arbitrary<Record<string, unknown>> {
  const names = Object.keys(world.definitions);
  const pick =
    collection !== undefined && world.definitions[collection] ? fc.constant(collection) : fc.constantFrom(...names);
  return pick.chain((c) => {
    const fields = world.definitions[c]!;
    const model: Record<string, fc.Arbitrary<unknown>> = {};
    for (const [name, field] of Object.entries(fields)) model[name] = fitting(field);
    const required = Object.keys(fields).filter((f) => fields[f]!.required);
    return fc
      .tuple(
        fc.record(model, { requiredKeys: required }),
        fc.option(
          fc.tuple(
            fc.oneof(
              { weight: 2, arbitrary: fc.constantFrom(...Object.keys(fields)) },
              { weight: 1, arbitrary: fc.constantFrom(...PROTOTYPE_NAMES) },
              { weight: 1, arbitrary: keyOf(world) },
            ),
            hazard(world),
          ),
          { freq: 2 },
        ),
      )
      .map(([values, mutation]) => {
        const out: Record<string, unknown> = { ...values };
        if (mutation)
          Object.defineProperty(out, mutation[0], {
            value: mutation[1],
            enumerable: true,
            configurable: true,
            writable: true,
          });
        return out;
      });
  });
}

/** define_collection's arguments aimed at one of the suite's collections: its definition, tightened, loosened or broken in one place. */
function redefinition(world: FuzzWorld): fc.Arbitrary<Record<string, unknown>> {
  return fc.constantFrom(...Object.keys(world.definitions)).chain((name) => {
    const fields = world.definitions[name]!;
    const names = Object.keys(fields);
    return fc
      .tuple(
        fc.constantFrom(...names),
        fc.constantFrom("required", "lower", "raise", "add_required", "add", "retype", "unpii", "proto", "drop"),
        fc.oneof(fc.constantFrom(...PROTOTYPE_NAMES), fc.constantFrom("extra_field", "another")),
      )
      .map(([field, change, newName]) => {
        const next: Record<string, Record<string, unknown>> = JSON.parse(JSON.stringify(fields));
        const target = next[field]!;
        if (change === "required") target.required = true;
        if (change === "lower") target.max_length = target.type === "string" ? 1 : 5;
        if (change === "raise" && target.type === "string") target.max_length = 60_000;
        if (change === "add_required") next[newName] = { type: "string", required: true };
        if (change === "add") next[newName] = { type: "integer" };
        if (change === "retype") target.type = target.type === "string" ? "integer" : "string";
        if (change === "unpii") target.pii = !target.pii;
        if (change === "proto") Object.defineProperty(next, newName, { value: { type: "string" }, enumerable: true });
        if (change === "drop") delete next[field];
        return JSON.parse(JSON.stringify({ name, fields: next }));
      });
  });
}

/** An object for a schema with properties: required ones mostly present, optional ones sometimes, extras rarely. */
export function objectFor(schema: JsonSchema, world: FuzzWorld): fc.Arbitrary<Record<string, unknown>> {
  const properties = schema.properties ?? {};
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [name, property] of Object.entries(properties)) model[name] = forSchema(name, property, world);
  // Values and filters that fit their collection (or record) reach the store, where the holes were.
  const aimed = aimedAt(properties, world);
  const base = fc.oneof(
    { weight: 2, arbitrary: fc.record(model, { requiredKeys: schema.required ?? [] }) },
    ...(aimed ? [{ weight: 3, arbitrary: aimed }] : []),
  );
  const extras = fc.oneof(
    { weight: 6, arbitrary: fc.constant({}) },
    { weight: 1, arbitrary: fc.dictionary(keyOf(world), anyJson(world), { minKeys: 1, maxKeys: 2 }) },
  );
  const drop = fc.oneof(
    { weight: 9, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constantFrom(...Object.keys(properties), "none") },
  );
  return fc.tuple(base, extras, drop).map(([object, extra, dropped]) => {
    const out: Record<string, unknown> = { ...extra, ...object };
    if (dropped) delete out[dropped];
    return JSON.parse(JSON.stringify(out)); // what the wire carries: no undefined, -0 as 0, __proto__ as an own key
  });
}

/** Well-aimed arguments for the tools whose holes need a real collection or record behind them. */
function aimedAt(
  properties: Record<string, JsonSchema>,
  world: FuzzWorld,
): fc.Arbitrary<Record<string, unknown>> | undefined {
  if (properties.fields && properties.name) return redefinition(world);
  if (properties.collection && (properties.values || properties.filters)) {
    const key = properties.values ? "values" : "filters";
    return fc
      .constantFrom(...Object.keys(world.definitions))
      .chain((collection) => valuesFor(world, collection).map((values) => ({ collection, [key]: values })));
  }
  if (properties.id && properties.values && world.records.length)
    return fc
      .constantFrom(...world.records)
      .chain((r) =>
        fc
          .tuple(valuesFor(world, r.collection), fc.integer({ min: 1, max: 4 }))
          .map(([values, version]) => ({ id: r.id, expected_version: version, values })),
      );
  return undefined;
}

/** The arguments of a tools/call: an object from the schema mostly; an array, null or a string now and then. */
export function argumentsFor(schema: JsonSchema, world: FuzzWorld): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 40, arbitrary: objectFor(schema, world) },
    { weight: 1, arbitrary: fc.oneof(fc.constant(null), fc.array(scalar, { maxLength: 3 }), edgeString, edgeNumber) },
  );
}
