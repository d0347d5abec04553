/**
 * PATCH bodies as the API server applies them, chosen by Content-Type:
 * - `application/json-patch+json`: RFC 6902 (add, remove, replace, test, move, copy);
 * - `application/merge-patch+json`: RFC 7386;
 * - `application/strategic-merge-patch+json`: merge, with lists merged by their patch merge key
 *   (containers and volumes by name, ownerReferences by uid, ...), as the built-in types declare.
 * https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
 */
import { ApiError, type Json, badRequest, unsupportedMediaType } from './status.js';

export type PatchType = 'json' | 'merge' | 'strategic';

export function patchType(contentType: string | undefined): PatchType {
  const media = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (media === 'application/json-patch+json') return 'json';
  if (media === 'application/merge-patch+json') return 'merge';
  if (media === 'application/strategic-merge-patch+json') return 'strategic';
  throw unsupportedMediaType();
}

/** A patch that parses but does not apply: 422, as the server answers it. */
const cannotApply = (why: string): ApiError =>
  new ApiError(422, 'Invalid', 'the server rejected our request due to an error in our request', {
    causes: [{ reason: 'UnexpectedServerResponse', message: why }],
  });

export function applyPatch(doc: Json, body: Buffer, type: PatchType): Json {
  let patch: unknown;
  try {
    patch = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw badRequest(`error decoding patch: ${(err as Error).message}`);
  }
  const copy = structuredClone(doc);
  if (type === 'json') {
    if (!Array.isArray(patch))
      throw badRequest(
        `json: cannot unmarshal ${typeof patch === 'object' ? 'object' : typeof patch} into Go value of type jsonpatch.Patch`,
      );
    return applyJsonPatch(copy, patch as Json[]);
  }
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch))
    throw badRequest('json: cannot unmarshal array into Go value of type map[string]interface {}');
  return type === 'merge' ? (mergePatch(copy, patch) as Json) : (strategicMerge(copy, patch as Json, '') as Json);
}

// ---------------------------------------------------------------------------------------------
// RFC 6902

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw cannotApply(`invalid path: ${path}`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function applyJsonPatch(doc: Json, ops: Json[]): Json {
  let root: unknown = doc;
  for (const op of ops) {
    if (typeof op !== 'object' || op === null)
      throw badRequest('json: cannot unmarshal into Go value of type jsonpatch.Operation');
    const path = String(op.path ?? '');
    const parts = pointer(path);
    const parentOf = (what: string): { parent: Json | unknown[]; key: string } => {
      let cur: unknown = root;
      for (const p of parts.slice(0, -1)) {
        if (cur === null || typeof cur !== 'object')
          throw cannotApply(`${what} operation does not apply: doc is missing path: "${path}": missing value`);
        cur = Array.isArray(cur) ? cur[Number(p)] : (cur as Json)[p];
        if (cur === undefined)
          throw cannotApply(`${what} operation does not apply: doc is missing path: "${path}": missing value`);
      }
      if (cur === null || typeof cur !== 'object')
        throw cannotApply(`${what} operation does not apply: doc is missing path: "${path}": missing value`);
      return { parent: cur as Json | unknown[], key: parts[parts.length - 1] ?? '' };
    };
    const get = (what: string): unknown => {
      if (parts.length === 0) return root;
      const { parent, key } = parentOf(what);
      const v = Array.isArray(parent) ? parent[Number(key)] : (parent as Json)[key];
      if (v === undefined)
        throw cannotApply(`${what} operation does not apply: doc is missing key: ${path}: missing value`);
      return v;
    };
    const put = (value: unknown, what: string, replace: boolean): void => {
      if (parts.length === 0) {
        root = value;
        return;
      }
      const { parent, key } = parentOf(what);
      if (Array.isArray(parent)) {
        const i = key === '-' ? parent.length : Number(key);
        if (!Number.isInteger(i) || i < 0 || i > parent.length || (replace && i >= parent.length)) {
          throw cannotApply(`${what} operation does not apply: doc is missing key: ${path}: missing value`);
        }
        if (replace) parent[i] = value;
        else parent.splice(i, 0, value);
      } else {
        if (replace && !(key in parent))
          throw cannotApply(`${what} operation does not apply: doc is missing key: ${path}: missing value`);
        (parent as Json)[key] = value;
      }
    };
    const remove = (what: string): unknown => {
      const { parent, key } = parentOf(what);
      if (Array.isArray(parent)) {
        const i = Number(key);
        if (!Number.isInteger(i) || i < 0 || i >= parent.length)
          throw cannotApply(`${what} operation does not apply: doc is missing key: ${path}: missing value`);
        return parent.splice(i, 1)[0];
      }
      if (!(key in parent))
        throw cannotApply(`${what} operation does not apply: doc is missing key: ${path}: missing value`);
      const v = (parent as Json)[key];
      delete (parent as Json)[key];
      return v;
    };
    switch (op.op) {
      case 'add':
        if (!('value' in op)) throw cannotApply('add operation does not apply: missing value');
        put(structuredClone(op.value), 'add', false);
        break;
      case 'replace':
        if (!('value' in op)) throw cannotApply('replace operation does not apply: missing value');
        put(structuredClone(op.value), 'replace', true);
        break;
      case 'remove':
        remove('remove');
        break;
      case 'test':
        if (JSON.stringify(sortKeys(get('test'))) !== JSON.stringify(sortKeys(op.value)))
          throw cannotApply(`testing value ${path} failed: test failed`);
        break;
      case 'move':
      case 'copy': {
        const fromParts = pointer(String(op.from ?? ''));
        let v: unknown = root;
        for (const p of fromParts)
          v = v && typeof v === 'object' ? (Array.isArray(v) ? v[Number(p)] : (v as Json)[p]) : undefined;
        if (v === undefined)
          throw cannotApply(`${op.op} operation does not apply: doc is missing from path: ${op.from}: missing value`);
        if (op.op === 'move') {
          const saved = parts.splice(0, parts.length, ...fromParts);
          remove('move');
          parts.splice(0, parts.length, ...saved);
        }
        put(structuredClone(v), op.op, false);
        break;
      }
      default:
        throw badRequest(`Unexpected kind: ${String(op.op)}`);
    }
  }
  if (root === null || typeof root !== 'object' || Array.isArray(root))
    throw cannotApply('the patched object is not an object');
  return root as Json;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Json)[k])]),
    );
  return v;
}

// ---------------------------------------------------------------------------------------------
// RFC 7386 and strategic merge

function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return structuredClone(patch);
  const out: Json = target && typeof target === 'object' && !Array.isArray(target) ? target : {};
  for (const [k, v] of Object.entries(patch as Json)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Lists the built-in types merge by key (`patchMergeKey`), by the path of the list's field. */
const MERGE_KEYS: Record<string, string> = {
  'metadata.ownerReferences': 'uid',
  'spec.template.spec.containers': 'name',
  'spec.template.spec.initContainers': 'name',
  'spec.template.spec.volumes': 'name',
  'spec.template.spec.containers.env': 'name',
  'spec.template.spec.containers.volumeMounts': 'mountPath',
  'spec.containers': 'name',
  'spec.volumes': 'name',
};
/** Lists of scalars merged as sets (`patchStrategy: merge`). */
const MERGE_SETS = new Set(['metadata.finalizers']);

function strategicMerge(target: unknown, patch: unknown, path: string): unknown {
  if (patch === null || typeof patch !== 'object') return structuredClone(patch);
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[path];
    if (key && Array.isArray(target)) {
      const out = [...target] as Json[];
      for (const item of patch as Json[]) {
        if (item && typeof item === 'object' && item.$patch === 'delete') {
          const i = out.findIndex((o) => o?.[key] === item[key]);
          if (i >= 0) out.splice(i, 1);
          continue;
        }
        const i = out.findIndex((o) => o?.[key] === item?.[key]);
        if (i >= 0) out[i] = strategicMerge(out[i], item, path) as Json;
        else out.push(structuredClone(item));
      }
      return out;
    }
    if (MERGE_SETS.has(path) && Array.isArray(target)) return [...new Set([...target, ...patch])];
    return structuredClone(patch);
  }
  const out: Json = target && typeof target === 'object' && !Array.isArray(target) ? target : {};
  for (const [k, v] of Object.entries(patch as Json)) {
    if (k === '$patch' || k.startsWith('$setElementOrder') || k === '$retainKeys') continue;
    if (v === null) delete out[k];
    else out[k] = strategicMerge(out[k], v, path ? `${path}.${k}` : k);
  }
  return out;
}
