// Prints every key path of srt's settings schema, one a line, in the notation of netjail/settings/srt_keys.py
// ("[]" = each object of an array; an array of a string-or-object union counts its object's keys).
// node tests/data/srt-schema-keys.mjs node_modules/@anthropic-ai/sandbox-runtime > tests/data/srt-0.0.81-schema-keys.txt
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
const config = pathToFileURL(resolve(process.argv[2], 'dist/sandbox/sandbox-config.js')).href;
const { SandboxRuntimeConfigSchema } = await import(config);
const wrappers = ['ZodOptional', 'ZodDefault', 'ZodEffects', 'ZodNullable'];
function unwrap(s) {
  while (wrappers.includes(s._def.typeName)) s = s._def.typeName === 'ZodEffects' ? s._def.schema : s._def.innerType;
  return s;
}
function walk(s, path) {
  const t = unwrap(s);
  if (path) console.log(path);
  if (t._def.typeName === 'ZodObject')
    for (const [k, v] of Object.entries(t.shape)) walk(v, path ? path + '.' + k : k);
  if (t._def.typeName === 'ZodArray') {
    const item = unwrap(t._def.type);
    if (item._def.typeName === 'ZodObject')
      for (const [k, v] of Object.entries(item.shape)) walk(v, path + '[].' + k);
    if (item._def.typeName === 'ZodUnion')
      for (const o of item._def.options) { const u = unwrap(o); if (u._def.typeName === 'ZodObject') for (const [k, v] of Object.entries(u.shape)) walk(v, path + '[].' + k); }
  }
}
walk(SandboxRuntimeConfigSchema, '');
