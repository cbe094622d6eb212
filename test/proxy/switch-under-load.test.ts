/**
 * The zero-downtime promise: 20,000 requests from 64 connections through `axe-appliance proxy
 * run` while the live color flips blue -> green and back 10 times; SSE streams opened before a
 * switch finish on their old color. Every process is real; everything is on loopback.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { proxyStatus, switchLiveColor } from "../../src/proxy/admin-client.ts";
import { type ChildProxy, proxyConfigDir, spawnProxy, startUpstream, stopAll } from "./harness.ts";

const REQUESTS = 20_000;
const CONNECTIONS = 64;
const SWITCHES = 10;

let proxy: ChildProxy;

beforeAll(async () => {
  const [blue, green] = await Promise.all([startUpstream("blue"), startUpstream("green")]);
  proxy = await spawnProxy(proxyConfigDir(blue, green, { access_log: false }));
});
afterAll(stopAll);

test("switching 10 times under load fails no request, and open streams complete", async () => {
  expect((await proxyStatus(proxy.socket)).live).toBe("blue");
  let sent = 0;
  let done = 0;
  let failed = 0;
  let non2xx = 0;
  const served = { blue: 0, green: 0 } as Record<string, number>;
  const streams: Array<Promise<{ before: string; text: string }>> = [];
  let switches = 0;
  let nextSwitchAt = REQUESTS / (SWITCHES + 1);

  const worker = async () => {
    while (sent < REQUESTS) {
      sent++;
      try {
        const response = await fetch(`${proxy.url}/frame/small`);
        const body = await response.text();
        if (response.status < 200 || response.status > 299) non2xx++;
        else served[body.slice(0, body.indexOf(":"))]!++;
      } catch {
        failed++;
      }
      done++;
      if (done >= nextSwitchAt && switches < SWITCHES) {
        nextSwitchAt += REQUESTS / (SWITCHES + 1);
        switches++;
        const before = switches % 2 === 1 ? "blue" : "green";
        // a stream opened on the old color just before the switch must finish there
        const stream = await fetch(`${proxy.url}/frame/sse?n=8&gap=40`); // headers in: open on the old color
        streams.push(
          stream.text().then((text) => ({ before, text: stream.status === 200 ? text : `HTTP ${stream.status}` })),
        );
        const result = await switchLiveColor(proxy.socket, switches % 2 === 1 ? "green" : "blue");
        expect(result.changed).toBe(true);
      }
    }
  };
  await Promise.all(Array.from({ length: CONNECTIONS }, worker));
  const finishedStreams = await Promise.all(streams);

  expect(switches).toBe(SWITCHES);
  expect(done).toBe(REQUESTS);
  expect(failed).toBe(0);
  expect(non2xx).toBe(0);
  expect(served.blue!).toBeGreaterThan(1000);
  expect(served.green!).toBeGreaterThan(1000);
  expect(served.blue! + served.green!).toBe(REQUESTS);
  for (const stream of finishedStreams) {
    expect(stream.text).toContain(`data: ${stream.before} 7`);
    expect(stream.text).toContain(`event: end\ndata: ${stream.before}`);
  }
  const status = await proxyStatus(proxy.socket);
  expect(status.live).toBe("blue"); // ten switches: back where we started
  expect(status.colors.green.inflight).toBe(0);
});
