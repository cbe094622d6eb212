import { expect, test } from "bun:test";
import { urlHost } from "../../src/lib/address.ts";

test("an IPv6 host goes in brackets before a port or in a URL; names and IPv4 as they are", () => {
  expect(urlHost("::1")).toBe("[::1]");
  expect(urlHost("127.0.0.1")).toBe("127.0.0.1");
  expect(urlHost("localhost")).toBe("localhost");
  expect(new URL(`http://${urlHost("::1")}:3710/`).port).toBe("3710");
});
