declare module "*.sql" {
  const text: string;
  export default text;
}

declare module "undici/lib/llhttp/llhttp-wasm.js" {
  const bytes: Uint8Array;
  export default bytes;
}

declare module "undici/lib/llhttp/constants.js" {
  const constants: { ERROR: Record<string, number>; METHODS: Record<string, number> };
  export default constants;
}
