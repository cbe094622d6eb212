import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { stringify } from "yaml";
import { CustomersFileSchema, checkFleet, loadFleet, ringPeer } from "../../src/config/customers.ts";
import { YamlSource } from "../../src/config/yaml-source.ts";
import { ConfigError } from "../../src/lib/errors.ts";
import { REPO } from "../helpers/cli.ts";
import { TEST_CUSTOMERS } from "../helpers/config.ts";

function parse(text: string) {
  const source = YamlSource.parse("customers.yaml", text);
  return checkFleet(source, source.validate(CustomersFileSchema));
}

function failure(text: string): ConfigError {
  try {
    parse(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

const valid = stringify(TEST_CUSTOMERS);

describe("customers.yaml", () => {
  test("the shipped customers.yaml is valid and has axe and realchoice", () => {
    const fleet = loadFleet(join(REPO, "customers.yaml"));
    expect(fleet.customers.map((c) => c.name)).toEqual(["axe", "realchoice"]);
    const axe = fleet.customers[0]!;
    expect(axe.domains).toEqual(["axellc.com"]);
    expect(axe.entra.tenant_id).toMatch(/^122fb574-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(fleet.customers[1]!.entra.tenant_id).toBe("TBD");
    expect(ringPeer(fleet, "axe")?.name).toBe("realchoice");
    expect(ringPeer(fleet, "realchoice")?.name).toBe("axe");
  });

  test("defaults: one entity named after the customer owning all its domains", () => {
    const fleet = parse(valid);
    expect(fleet.customers[1]!.entities).toEqual([
      { name: "other", domains: ["other.example"], app_roles: [], groups: [] },
    ]);
    expect(fleet.customers[0]!.entra.roles["Frame.Admin"]).toBe("admin");
  });

  test("a wrong type names the line and key", () => {
    const text = valid.replace("machine: axe-macmini", "machine: 42");
    const line = text.split("\n").findIndex((l) => l.includes("machine: 42")) + 1;
    const error = failure(text);
    expect(error.message).toContain(`customers.yaml:${line}: customers[0].machine:`);
    expect(error.message).toMatch(/expected string/);
    expect(error.exitCode).toBe(3);
  });

  test("an unknown key is an error at its own line", () => {
    const text = valid.replace("    host: axe.axelabs.ai", "    host: axe.axelabs.ai\n    hostname: typo.example");
    const line = text.split("\n").findIndex((l) => l.includes("hostname: typo")) + 1;
    expect(failure(text).message).toContain(`customers.yaml:${line}: customers[0].hostname: unknown key`);
  });

  test("a domain listed twice names the second place and the owner", () => {
    const text = valid.replace("      - other.example", "      - other.example\n      - axellc.com");
    const line =
      text
        .split("\n")
        .findIndex((l, i, all) => l.includes("- axellc.com") && i > all.findIndex((x) => x.includes("name: other"))) +
      1;
    const message = failure(text).message;
    expect(message).toContain(
      `customers.yaml:${line}: customers[1].domains[1]: domain axellc.com is already listed for customer axe`,
    );
  });

  test("an e-mail domain, group or app role that maps two entities is refused (third review)", () => {
    // The first entity in the file took every account of such a key, so the second entity's people
    // were served in the first one's data; refused at load like a domain of two customers.
    const customers = (entities: unknown[]) => {
      const [axe, other] = TEST_CUSTOMERS.customers;
      return stringify({ ...TEST_CUSTOMERS, customers: [{ ...axe, entities }, other] });
    };
    const group = "0f9e8d7c-0000-4000-8000-0000000000bb";
    expect(
      failure(
        customers([
          { name: "axe", domains: ["axellc.com"] },
          { name: "labs", domains: ["axe-labs.dev", "axellc.com"] },
        ]),
      ).message,
    ).toContain("customers[0].entities[1].domains[1]: domain axellc.com already maps accounts to entity axe");
    expect(
      failure(
        customers([
          { name: "axe", domains: ["axellc.com"], groups: [group] },
          { name: "labs", groups: [group.toUpperCase()] },
        ]),
      ).message,
    ).toContain(`customers[0].entities[1].groups[0]: group ${group} already maps accounts to entity axe`);
    expect(
      failure(
        customers([
          { name: "axe", domains: ["axellc.com"], app_roles: ["Labs.Member"] },
          { name: "labs", app_roles: ["Labs.Member"] },
        ]),
      ).message,
    ).toContain("customers[0].entities[1].app_roles[0]: app role Labs.Member already maps accounts to entity axe");
    // Distinct keys in each entity load as before.
    expect(
      parse(
        customers([
          { name: "axe", domains: ["axellc.com"], groups: [group] },
          { name: "labs", domains: ["axe-labs.dev"], app_roles: ["Labs.Member"] },
        ]),
      ).customers[0]!.entities.map((e) => e.name),
    ).toEqual(["axe", "labs"]);
  });

  test("a ring naming an unknown customer is an error", () => {
    const message = failure(valid.replace("  - other\ncustomers", "  - nobody\ncustomers")).message;
    expect(message).toContain('customers.yaml:3: ring[1]: ring names unknown customer "nobody"');
  });

  test("a tenant that is neither a GUID nor TBD is refused", () => {
    expect(failure(valid.replace("122fb574-6f3c-4b8e-9d21-5a7c0e4f8b13", "122fb574-...")).message).toMatch(
      /entra\.tenant_id: .*GUID/,
    );
  });

  test("an entity domain outside the customer's domains is refused", () => {
    expect(
      failure(
        valid.replace(
          "- name: labs\n        domains:\n          - axe-labs.dev",
          "- name: labs\n        domains:\n          - other.example",
        ),
      ).message,
    ).toContain("entities[1].domains[0]: domain other.example is not one of customer axe's domains");
  });

  test("YAML syntax errors name the line", () => {
    expect(failure("customers:\n  - name: axe\n   domains: [x").message).toMatch(
      /^customers\.yaml:\d+: not valid YAML/,
    );
  });

  test("a key given twice in one map is a syntax error, not a silent override", () => {
    expect(failure("ring: [a]\nring: [b]\ncustomers: []\n").message).toMatch(/customers\.yaml:2: not valid YAML/);
  });
});
