/** The benchmark's upstream: ~200 bytes for every request, keep-alive. Prints {"port": N}. */
const body = `{"status":"ok","service":"bench","padding":"${"x".repeat(150)}"}\n`;
const server = Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  fetch: () => new Response(body, { headers: { "content-type": "application/json" } }),
});
console.log(JSON.stringify({ port: server.port, bytes: body.length }));
