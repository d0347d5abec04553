/**
 * What the API server checks before it stores a Job or a Secret, in its own words:
 *
 * - decoding (`cannot be handled as a Job: json: cannot unmarshal ...`, bad quantities, bad
 *   base64), which is a 400 BadRequest, and unknown fields, which are a `Warning` header (or a
 *   400 with `fieldValidation=Strict`);
 * - validation (k8s.io/kubernetes/pkg/apis/core/validation and batch/validation), which is a
 *   422 Invalid with one cause per field;
 * - defaulting (SetDefaults_PodSpec, SetDefaults_Job, ...), so reads look like a real server's.
 *
 * Messages follow k8s.io/apimachinery/pkg/util/validation (v0.34, where lengths are in bytes).
 */
import { QUANTITY_FORMAT_ERROR, canonicalQuantity, parseQuantity, quantityValue } from './quantity.js';
import {
  type FieldError,
  type Json,
  badRequest,
  duplicate,
  fieldNotFound,
  forbiddenField,
  invalid,
  notSupported,
  required,
  tooLong,
} from './status.js';

// ---------------------------------------------------------------------------------------------
// Names, labels, keys

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;
const ENV_VAR_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;

const maxLen = (n: number): string => `must be no more than ${n} bytes`;
const regexError = (msg: string, fmt: string, ...examples: string[]): string =>
  `${msg} (e.g. ${examples.map((e) => `'${e}'`).join(',  or ')}, regex used for validation is '${fmt}')`;

const DNS1123_LABEL_MSG = regexError(
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
  '[a-z0-9]([-a-z0-9]*[a-z0-9])?',
  'my-name',
  '123-abc',
);
const DNS1123_SUBDOMAIN_MSG = regexError(
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
  '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*',
  'example.com',
);
const QUALIFIED_NAME_MSG = regexError(
  "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
  '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]',
  'MyName',
  'my.name',
  '123-abc',
);
const LABEL_VALUE_MSG = regexError(
  "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
  '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?',
  'MyValue',
  'my_value',
  '12345',
);
const CONFIG_KEY_MSG = regexError(
  "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
  '[-._a-zA-Z0-9]+',
  'key.name',
  'KEY_NAME',
  'key-name',
);
const ENV_VAR_MSG = regexError(
  "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
  '[-._a-zA-Z][-._a-zA-Z0-9]*',
  'my.env-name',
  'MY_ENV.NAME',
  'MyEnvName1',
);

export function isDNS1123Label(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLen(63));
  if (!DNS1123_LABEL.test(v)) errs.push(DNS1123_LABEL_MSG);
  return errs;
}

export function isDNS1123Subdomain(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 253) errs.push(maxLen(253));
  if (!DNS1123_SUBDOMAIN.test(v)) errs.push(DNS1123_SUBDOMAIN_MSG);
  return errs;
}

/** A label key or annotation key: `[prefix/]name`. */
export function isQualifiedName(v: string): string[] {
  const errs: string[] = [];
  const parts = v.split('/');
  let name: string;
  if (parts.length === 1) {
    name = parts[0]!;
  } else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) errs.push('prefix part must be non-empty');
    else errs.push(...isDNS1123Subdomain(prefix).map((m) => `prefix part ${m}`));
  } else {
    return [
      `a qualified name ${QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`,
    ];
  }
  if (name.length === 0) errs.push('name part must be non-empty');
  else if (name.length > 63) errs.push(`name part ${maxLen(63)}`);
  if (!QUALIFIED_NAME.test(name)) errs.push(`name part ${QUALIFIED_NAME_MSG}`);
  return errs;
}

export function isLabelValue(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 63) errs.push(maxLen(63));
  if (!LABEL_VALUE.test(v)) errs.push(LABEL_VALUE_MSG);
  return errs;
}

export function isConfigKey(v: string): string[] {
  const errs: string[] = [];
  if (v.length > 253) errs.push(maxLen(253));
  if (!CONFIG_KEY.test(v)) errs.push(CONFIG_KEY_MSG);
  if (v === '.') errs.push("must not be '.'");
  else if (v === '..') errs.push("must not be '..'");
  else if (v.startsWith('..')) errs.push("must not start with '..'");
  return errs;
}

export function validateLabels(labels: Record<string, string> | undefined, field: string): FieldError[] {
  const errs: FieldError[] = [];
  for (const [k, v] of Object.entries(labels ?? {})) {
    for (const m of isQualifiedName(k)) errs.push(invalid(field, k, m));
    for (const m of isLabelValue(v)) errs.push(invalid(field, v, m));
  }
  return errs;
}

const ANNOTATIONS_LIMIT = 256 * 1024;

export function validateAnnotations(annotations: Record<string, string> | undefined, field: string): FieldError[] {
  const errs: FieldError[] = [];
  let size = 0;
  for (const [k, v] of Object.entries(annotations ?? {})) {
    for (const m of isQualifiedName(k.toLowerCase())) errs.push(invalid(field, k, m));
    size += Buffer.byteLength(k) + Buffer.byteLength(v);
  }
  if (size > ANNOTATIONS_LIMIT) errs.push(tooLong(field, ANNOTATIONS_LIMIT));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Decoding: JSON types, unknown fields, quantities and base64, as the server's decoder does

type Schema =
  | 'string'
  | 'int32'
  | 'int64'
  | 'bool'
  | 'quantity'
  | 'bytes'
  | 'any'
  | StructSchema
  | { map: Schema }
  | { list: Schema };
interface StructSchema {
  go: string;
  fields: Record<string, Schema>;
}

const struct = (go: string, fields: Record<string, Schema>): StructSchema => ({ go, fields });
const strings = { list: 'string' } as const;
const stringMap = { map: 'string' } as const;
const quantityMap = { map: 'quantity' } as const;

const OWNER_REFERENCE = struct('OwnerReference', {
  apiVersion: 'string',
  kind: 'string',
  name: 'string',
  uid: 'string',
  controller: 'bool',
  blockOwnerDeletion: 'bool',
});
const OBJECT_META = struct('ObjectMeta', {
  name: 'string',
  generateName: 'string',
  namespace: 'string',
  selfLink: 'string',
  uid: 'string',
  resourceVersion: 'string',
  generation: 'int64',
  creationTimestamp: 'any',
  deletionTimestamp: 'any',
  deletionGracePeriodSeconds: 'int64',
  labels: stringMap,
  annotations: stringMap,
  ownerReferences: { list: OWNER_REFERENCE },
  finalizers: strings,
  managedFields: 'any',
});
const KEY_TO_PATH = struct('KeyToPath', { key: 'string', path: 'string', mode: 'int32' });
const VOLUME = struct('Volume', {
  name: 'string',
  secret: struct('SecretVolumeSource', {
    secretName: 'string',
    items: { list: KEY_TO_PATH },
    defaultMode: 'int32',
    optional: 'bool',
  }),
  emptyDir: struct('EmptyDirVolumeSource', { medium: 'string', sizeLimit: 'quantity' }),
  configMap: 'any',
  hostPath: 'any',
  persistentVolumeClaim: 'any',
  projected: 'any',
  downwardAPI: 'any',
  csi: 'any',
  ephemeral: 'any',
  nfs: 'any',
  image: 'any',
});
const ENV_VAR = struct('EnvVar', {
  name: 'string',
  value: 'string',
  valueFrom: struct('EnvVarSource', {
    fieldRef: 'any',
    resourceFieldRef: 'any',
    configMapKeyRef: 'any',
    secretKeyRef: struct('SecretKeySelector', { name: 'string', key: 'string', optional: 'bool' }),
    fileKeyRef: 'any',
  }),
});
const CONTAINER = struct('Container', {
  name: 'string',
  image: 'string',
  command: strings,
  args: strings,
  workingDir: 'string',
  ports: 'any',
  envFrom: 'any',
  env: { list: ENV_VAR },
  resources: struct('ResourceRequirements', { limits: quantityMap, requests: quantityMap, claims: 'any' }),
  resizePolicy: 'any',
  restartPolicy: 'string',
  restartPolicyRules: 'any',
  volumeMounts: {
    list: struct('VolumeMount', {
      name: 'string',
      readOnly: 'bool',
      recursiveReadOnly: 'string',
      mountPath: 'string',
      subPath: 'string',
      mountPropagation: 'string',
      subPathExpr: 'string',
    }),
  },
  volumeDevices: 'any',
  livenessProbe: 'any',
  readinessProbe: 'any',
  startupProbe: 'any',
  lifecycle: 'any',
  terminationMessagePath: 'string',
  terminationMessagePolicy: 'string',
  imagePullPolicy: 'string',
  securityContext: 'any',
  stdin: 'bool',
  stdinOnce: 'bool',
  tty: 'bool',
});
const TOLERATION = struct('Toleration', {
  key: 'string',
  operator: 'string',
  value: 'string',
  effect: 'string',
  tolerationSeconds: 'int64',
});
const POD_SPEC = struct('PodSpec', {
  volumes: { list: VOLUME },
  initContainers: { list: CONTAINER },
  containers: { list: CONTAINER },
  ephemeralContainers: 'any',
  restartPolicy: 'string',
  terminationGracePeriodSeconds: 'int64',
  activeDeadlineSeconds: 'int64',
  dnsPolicy: 'string',
  nodeSelector: stringMap,
  serviceAccountName: 'string',
  serviceAccount: 'string',
  automountServiceAccountToken: 'bool',
  nodeName: 'string',
  hostNetwork: 'bool',
  hostPID: 'bool',
  hostIPC: 'bool',
  shareProcessNamespace: 'bool',
  securityContext: 'any',
  imagePullSecrets: 'any',
  hostname: 'string',
  subdomain: 'string',
  affinity: 'any',
  schedulerName: 'string',
  tolerations: { list: TOLERATION },
  hostAliases: 'any',
  priorityClassName: 'string',
  priority: 'int32',
  dnsConfig: 'any',
  readinessGates: 'any',
  runtimeClassName: 'string',
  enableServiceLinks: 'bool',
  preemptionPolicy: 'string',
  overhead: quantityMap,
  topologySpreadConstraints: 'any',
  setHostnameAsFQDN: 'bool',
  os: 'any',
  hostUsers: 'bool',
  schedulingGates: 'any',
  resourceClaims: 'any',
  resources: 'any',
  hostnameOverride: 'string',
});
const JOB = struct('Job', {
  apiVersion: 'string',
  kind: 'string',
  metadata: OBJECT_META,
  spec: struct('JobSpec', {
    parallelism: 'int32',
    completions: 'int32',
    activeDeadlineSeconds: 'int64',
    podFailurePolicy: 'any',
    successPolicy: 'any',
    backoffLimit: 'int32',
    backoffLimitPerIndex: 'int32',
    maxFailedIndexes: 'int32',
    selector: 'any',
    manualSelector: 'bool',
    template: struct('PodTemplateSpec', { metadata: OBJECT_META, spec: POD_SPEC }),
    ttlSecondsAfterFinished: 'int32',
    completionMode: 'string',
    suspend: 'bool',
    podReplacementPolicy: 'string',
    managedBy: 'string',
  }),
  status: 'any',
});
const SECRET = struct('Secret', {
  apiVersion: 'string',
  kind: 'string',
  metadata: OBJECT_META,
  immutable: 'bool',
  data: { map: 'bytes' },
  stringData: stringMap,
  type: 'string',
});
const DELETE_OPTIONS = struct('DeleteOptions', {
  apiVersion: 'string',
  kind: 'string',
  gracePeriodSeconds: 'int64',
  preconditions: struct('Preconditions', { uid: 'string', resourceVersion: 'string' }),
  orphanDependents: 'bool',
  propagationPolicy: 'string',
  dryRun: strings,
  ignoreStoreReadErrorWithClusterBreakingPotential: 'bool',
});

export const SCHEMAS = { Job: JOB, Secret: SECRET, DeleteOptions: DELETE_OPTIONS } as const;

class DecodeError extends Error {}

const jsonType = (v: unknown): string =>
  v === null
    ? 'null'
    : Array.isArray(v)
      ? 'array'
      : typeof v === 'object'
        ? 'object'
        : typeof v === 'boolean'
          ? 'bool'
          : typeof v;
const goType = (s: Schema): string =>
  typeof s === 'string'
    ? {
        string: 'string',
        int32: 'int32',
        int64: 'int64',
        bool: 'bool',
        quantity: 'resource.Quantity',
        bytes: '[]uint8',
        any: 'interface {}',
      }[s]
    : 'go' in s
      ? `v1.${s.go}`
      : 'map' in s
        ? `map[string]${goType(s.map)}`
        : `[]${goType(s.list)}`;

/**
 * Decodes `value` against `schema` as the server's JSON decoder does: wrong JSON types and bad
 * quantities or base64 throw (a 400), unknown fields are collected (a warning, or a 400 when
 * strict). Returns the value as stored: quantities canonical, nulls dropped.
 */
export function decode(kind: keyof typeof SCHEMAS, value: unknown, unknown: string[]): Json {
  const schema = SCHEMAS[kind];
  try {
    return walk(value, schema, { struct: schema.go, goPath: [], path: '' }, unknown) as Json;
  } catch (err) {
    if (err instanceof DecodeError)
      throw badRequest(`${kind} in version "v1" cannot be handled as a ${kind}: ${err.message}`);
    throw err;
  }
}

interface Where {
  struct: string;
  goPath: string[];
  path: string;
}

function walk(value: unknown, schema: Schema, where: Where, unknown: string[]): unknown {
  const mismatch = (): never => {
    const what =
      typeof value === 'number' && (schema === 'int32' || schema === 'int64') ? `number ${value}` : jsonType(value);
    const field = where.goPath.length > 0 ? `Go struct field ${where.struct}.${where.goPath.join('.')}` : `Go value`;
    throw new DecodeError(`json: cannot unmarshal ${what} into ${field} of type ${goType(schema)}`);
  };
  if (value === null || value === undefined) return undefined;
  if (schema === 'any') return value;
  if (schema === 'string') return typeof value === 'string' ? value : mismatch();
  if (schema === 'bool') return typeof value === 'boolean' ? value : mismatch();
  if (schema === 'int32' || schema === 'int64') {
    if (typeof value !== 'number' || !Number.isInteger(value)) return mismatch();
    if (schema === 'int32' && (value > 2147483647 || value < -2147483648)) return mismatch();
    return value;
  }
  if (schema === 'quantity') {
    // A quantity may be a JSON string or number.
    const text = typeof value === 'number' ? String(value) : typeof value === 'string' ? value : mismatch();
    const q = parseQuantity(text);
    if (!q) throw new DecodeError(QUANTITY_FORMAT_ERROR);
    return canonicalQuantity(q);
  }
  if (schema === 'bytes') {
    if (typeof value !== 'string') return mismatch();
    const bad = base64Error(value);
    if (bad !== undefined) throw new DecodeError(`illegal base64 data at input byte ${bad}`);
    return value;
  }
  if ('map' in schema) {
    if (jsonType(value) !== 'object') return mismatch();
    const out: Json = {};
    for (const [k, v] of Object.entries(value as Json)) {
      const decoded = walk(v, schema.map, { ...where, path: `${where.path}[${k}]` }, unknown);
      // A null map value decodes to the zero value, not to a missing key.
      out[k] = decoded === undefined ? (schema.map === 'string' || schema.map === 'bytes' ? '' : decoded) : decoded;
    }
    return out;
  }
  if ('list' in schema) {
    if (!Array.isArray(value)) return mismatch();
    return value.map(
      (v, i) => walk(v, schema.list, { ...where, path: `${where.path}[${i}]` }, unknown) ?? zero(schema.list),
    );
  }
  if (jsonType(value) !== 'object') return mismatch();
  const out: Json = {};
  for (const [k, v] of Object.entries(value as Json)) {
    const path = where.path ? `${where.path}.${k}` : k;
    const field = schema.fields[k];
    if (field === undefined) {
      unknown.push(path);
      continue;
    }
    // Errors name the struct that declares the field, and the field's whole path from the top.
    const decoded = walk(v, field, { struct: schema.go, goPath: [...where.goPath, k], path }, unknown);
    if (decoded !== undefined) out[k] = decoded;
  }
  return out;
}

function zero(s: Schema): unknown {
  if (s === 'string' || s === 'bytes') return '';
  if (s === 'int32' || s === 'int64') return 0;
  if (s === 'bool') return false;
  return typeof s === 'object' && 'go' in s ? {} : null;
}

/** Where Go's StdEncoding would fail, or undefined for valid base64. */
function base64Error(s: string): number | undefined {
  const body = /^[A-Za-z0-9+/]*/.exec(s)![0].length;
  if (body === s.length) return s.length % 4 === 0 ? undefined : s.length - (s.length % 4);
  // Padding: only at the end, making the length a multiple of four.
  const pad = s.slice(body);
  if (/^=+$/.test(pad) && pad.length <= 2 && s.length % 4 === 0 && body % 4 >= 2) return undefined;
  return body;
}

// ---------------------------------------------------------------------------------------------
// Metadata

/** ObjectMeta checks common to every create: the name (by `nameCheck`), labels, annotations, owners. */
export function validateObjectMeta(meta: Json, nameCheck: (n: string) => string[]): FieldError[] {
  const errs: FieldError[] = [];
  if (!meta.name && !meta.generateName) errs.push(required('metadata.name', 'name or generateName is required'));
  else if (meta.name) for (const m of nameCheck(meta.name)) errs.push(invalid('metadata.name', meta.name, m));
  errs.push(...validateLabels(meta.labels, 'metadata.labels'));
  errs.push(...validateAnnotations(meta.annotations, 'metadata.annotations'));
  errs.push(...validateOwnerReferences(meta.ownerReferences));
  return errs;
}

export function validateOwnerReferences(refs: Json[] | undefined): FieldError[] {
  const errs: FieldError[] = [];
  let controllers = 0;
  for (const r of refs ?? []) {
    if (!r.apiVersion)
      errs.push(invalid('metadata.ownerReferences.apiVersion', r.apiVersion ?? '', 'version must not be empty'));
    if (!r.kind) errs.push(invalid('metadata.ownerReferences.kind', r.kind ?? '', 'must not be empty'));
    if (!r.name) errs.push(invalid('metadata.ownerReferences.name', r.name ?? '', 'must not be empty'));
    if (!r.uid) errs.push(invalid('metadata.ownerReferences.uid', r.uid ?? '', 'uid must not be empty'));
    if (r.controller) controllers += 1;
  }
  if (controllers > 1) {
    errs.push(invalid('metadata.ownerReferences', refs, 'Only one reference can have Controller set to true'));
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Secrets

const SECRET_DATA_LIMIT = 1024 * 1024;

/** Merges stringData into data (as base64) as the server does on the way in, then validates. */
export function prepareSecret(secret: Json): FieldError[] {
  secret.type ||= 'Opaque';
  if (secret.stringData) {
    secret.data = { ...secret.data };
    for (const [k, v] of Object.entries(secret.stringData as Record<string, string>))
      secret.data[k] = Buffer.from(v, 'utf8').toString('base64');
    delete secret.stringData;
  }
  const errs = validateObjectMeta(secret.metadata, isDNS1123Subdomain);
  let size = 0;
  for (const [k, v] of Object.entries((secret.data ?? {}) as Record<string, string>)) {
    for (const m of isConfigKey(k)) errs.push(invalid(`data[${k}]`, k, m));
    size += Buffer.from(v, 'base64').length;
  }
  if (size > SECRET_DATA_LIMIT) errs.push(tooLong('data', SECRET_DATA_LIMIT));
  if (secret.type === 'kubernetes.io/dockerconfigjson' && !secret.data?.['.dockerconfigjson'])
    errs.push(required('data[.dockerconfigjson]'));
  return errs;
}

// ---------------------------------------------------------------------------------------------
// Pods (a Job's template)

const STANDARD_CONTAINER_RESOURCES = new Set(['cpu', 'memory', 'ephemeral-storage']);
const isHugePages = (r: string): boolean => r.startsWith('hugepages-');
const isNative = (r: string): boolean => !r.includes('/') || r.startsWith('kubernetes.io/');
/** An extended resource (`nvidia.com/gpu`): integer amounts, never overcommitted. */
export const isExtendedResource = (r: string): boolean => !isNative(r) && !r.startsWith('requests.');
const overcommitAllowed = (r: string): boolean => isNative(r) && !isHugePages(r);

function validateResourceName(name: string, field: string): FieldError[] {
  const errs = isQualifiedName(name).map((m) => invalid(field, name, m));
  if (errs.length > 0) return errs;
  if (!name.includes('/') && !STANDARD_CONTAINER_RESOURCES.has(name) && !isHugePages(name)) {
    return [invalid(field, name, 'must be a standard resource for containers')];
  }
  if (name.includes('/') && (name.startsWith('kubernetes.io/') || name.startsWith('requests.'))) {
    return [invalid(field, name, 'must be a standard resource for containers')];
  }
  return [];
}

function validateQuantityValue(resource: string, value: string, field: string): FieldError[] {
  const q = parseQuantity(value)!;
  if (q.nanos < 0n) return [invalid(field, value, 'must be greater than or equal to 0')];
  if (isExtendedResource(resource) && q.nanos % 1_000_000_000n !== 0n)
    return [invalid(field, value, 'must be an integer')];
  return [];
}

function validateResources(resources: Json | undefined, field: string): FieldError[] {
  const errs: FieldError[] = [];
  const limits = (resources?.limits ?? {}) as Record<string, string>;
  const requests = (resources?.requests ?? {}) as Record<string, string>;
  for (const [name, value] of Object.entries(limits)) {
    const f = `${field}.limits[${name}]`;
    errs.push(...validateResourceName(name, f), ...validateQuantityValue(name, value, f));
  }
  for (const [name, value] of Object.entries(requests)) {
    const f = `${field}.requests[${name}]`;
    errs.push(...validateResourceName(name, f), ...validateQuantityValue(name, value, f));
    const limit = limits[name];
    if (limit !== undefined) {
      const cmp = quantityValue(parseQuantity(value)!) - quantityValue(parseQuantity(limit)!);
      // Extended resources (GPUs) cannot be overcommitted: the request must equal the limit.
      if (cmp !== 0 && !overcommitAllowed(name))
        errs.push(invalid(`${field}.requests`, value, `must be equal to ${name} limit of ${limit}`));
      else if (cmp > 0)
        errs.push(invalid(`${field}.requests`, value, `must be less than or equal to ${name} limit of ${limit}`));
    } else if (!overcommitAllowed(name)) {
      errs.push(required(`${field}.limits`, 'Limit must be set for non overcommitable resources'));
    }
  }
  return errs;
}

function validateVolumes(volumes: Json[] | undefined, field: string): FieldError[] {
  const errs: FieldError[] = [];
  const names = new Set<string>();
  (volumes ?? []).forEach((v, i) => {
    const f = `${field}[${i}]`;
    if (!v.name) errs.push(required(`${f}.name`));
    else {
      for (const m of isDNS1123Label(v.name)) errs.push(invalid(`${f}.name`, v.name, m));
      if (names.has(v.name)) errs.push(duplicate(`${f}.name`, v.name));
      names.add(v.name);
    }
    const sources = Object.keys(v).filter((k) => k !== 'name');
    if (sources.length === 0) errs.push(required(f, 'must specify a volume type'));
    else if (sources.length > 1)
      errs.push(forbiddenField(`${f}.${sources[1]}`, 'may not specify more than 1 volume type'));
    const s = v.secret as Json | undefined;
    if (s) {
      if (!s.secretName) errs.push(required(`${f}.secret.secretName`));
      else
        for (const m of isDNS1123Subdomain(s.secretName)) errs.push(invalid(`${f}.secret.secretName`, s.secretName, m));
      if (s.defaultMode !== undefined && (s.defaultMode < 0 || s.defaultMode > 0o777)) {
        errs.push(
          invalid(
            `${f}.secret.defaultMode`,
            s.defaultMode,
            'must be a number between 0 and 0777 (octal), both inclusive',
          ),
        );
      }
      (s.items ?? []).forEach((item: Json, j: number) => {
        const fi = `${f}.secret.items[${j}]`;
        if (!item.key) errs.push(required(`${fi}.key`));
        if (!item.path) errs.push(required(`${fi}.path`));
        else if (item.path.startsWith('/')) errs.push(invalid(`${fi}.path`, item.path, 'must be a relative path'));
        else if (item.path.split('/').includes('..'))
          errs.push(invalid(`${fi}.path`, item.path, "must not contain '..'"));
        if (item.mode !== undefined && (item.mode < 0 || item.mode > 0o777)) {
          errs.push(invalid(`${fi}.mode`, item.mode, 'must be a number between 0 and 0777 (octal), both inclusive'));
        }
      });
    }
  });
  return errs;
}

function validateEnv(env: Json[] | undefined, field: string): FieldError[] {
  const errs: FieldError[] = [];
  (env ?? []).forEach((e, i) => {
    const f = `${field}[${i}]`;
    if (!e.name) errs.push(required(`${f}.name`));
    else if (!ENV_VAR_NAME.test(e.name)) errs.push(invalid(`${f}.name`, e.name, ENV_VAR_MSG));
    const from = e.valueFrom as Json | undefined;
    if (!from) return;
    const sources = ['fieldRef', 'resourceFieldRef', 'configMapKeyRef', 'secretKeyRef', 'fileKeyRef'].filter(
      (k) => from[k] !== undefined,
    );
    if (e.value) errs.push(invalid(`${f}.valueFrom`, '', 'may not be specified when `value` is not empty'));
    if (sources.length === 0) {
      errs.push(
        invalid(
          `${f}.valueFrom`,
          '',
          'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`',
        ),
      );
    } else if (sources.length > 1) {
      errs.push(invalid(`${f}.valueFrom`, '', 'may not have more than one field specified at a time'));
    }
    const ref = from.secretKeyRef as Json | undefined;
    if (ref) {
      if (!ref.key) errs.push(required(`${f}.valueFrom.secretKeyRef.key`));
      else for (const m of isConfigKey(ref.key)) errs.push(invalid(`${f}.valueFrom.secretKeyRef.key`, ref.key, m));
      if (!ref.name) errs.push(required(`${f}.valueFrom.secretKeyRef.name`));
      else
        for (const m of isDNS1123Subdomain(ref.name))
          errs.push(invalid(`${f}.valueFrom.secretKeyRef.name`, ref.name, m));
    }
  });
  return errs;
}

function validateContainers(containers: Json[] | undefined, volumes: Json[] | undefined, field: string): FieldError[] {
  if (!containers || containers.length === 0) return [required(field)];
  const errs: FieldError[] = [];
  const names = new Set<string>();
  const volumeNames = new Set((volumes ?? []).map((v) => v.name as string));
  containers.forEach((c, i) => {
    const f = `${field}[${i}]`;
    if (!c.name) errs.push(required(`${f}.name`));
    else {
      for (const m of isDNS1123Label(c.name)) errs.push(invalid(`${f}.name`, c.name, m));
      if (names.has(c.name)) errs.push(duplicate(`${f}.name`, c.name));
      names.add(c.name);
    }
    if (!c.image) errs.push(required(`${f}.image`));
    else if (c.image.trim() !== c.image)
      errs.push(invalid(`${f}.image`, c.image, 'must not have leading or trailing whitespace'));
    if (c.imagePullPolicy && !['Always', 'IfNotPresent', 'Never'].includes(c.imagePullPolicy)) {
      errs.push(notSupported(`${f}.imagePullPolicy`, c.imagePullPolicy, ['Always', 'IfNotPresent', 'Never']));
    }
    if (c.terminationMessagePolicy && !['File', 'FallbackToLogsOnError'].includes(c.terminationMessagePolicy)) {
      errs.push(
        notSupported(`${f}.terminationMessagePolicy`, c.terminationMessagePolicy, ['File', 'FallbackToLogsOnError']),
      );
    }
    errs.push(...validateEnv(c.env, `${f}.env`));
    const mountPaths = new Set<string>();
    (c.volumeMounts ?? []).forEach((m: Json, j: number) => {
      const fm = `${f}.volumeMounts[${j}]`;
      if (!m.name) errs.push(required(`${fm}.name`));
      if (!volumeNames.has(m.name)) errs.push(fieldNotFound(`${fm}.name`, m.name ?? ''));
      if (!m.mountPath) errs.push(required(`${fm}.mountPath`));
      else if (mountPaths.has(m.mountPath)) errs.push(invalid(`${fm}.mountPath`, m.mountPath, 'must be unique'));
      mountPaths.add(m.mountPath);
      if (m.subPath) {
        if (m.subPath.startsWith('/')) errs.push(invalid(`${fm}.subPath`, m.subPath, 'must be a relative path'));
        else if (m.subPath.split('/').includes('..'))
          errs.push(invalid(`${fm}.subPath`, m.subPath, "must not contain '..'"));
      }
    });
    errs.push(...validateResources(c.resources, `${f}.resources`));
  });
  return errs;
}

function validateTolerations(tolerations: Json[] | undefined, field: string): FieldError[] {
  const errs: FieldError[] = [];
  (tolerations ?? []).forEach((t, i) => {
    const f = `${field}[${i}]`;
    if (t.key) for (const m of isQualifiedName(t.key)) errs.push(invalid(`${f}.key`, t.key, m));
    if (!t.key && t.operator !== 'Exists') {
      errs.push(
        invalid(
          `${f}.operator`,
          t.operator ?? '',
          'operator must be Exists when `key` is empty, which means "match all values and all keys"',
        ),
      );
    }
    if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') {
      errs.push(invalid(`${f}.effect`, t.effect ?? '', "effect must be 'NoExecute' when `tolerationSeconds` is set"));
    }
    switch (t.operator) {
      case undefined:
      case '':
      case 'Equal':
        for (const m of isLabelValue(t.value ?? '')) errs.push(invalid(`${f}.operator`, t.value, m));
        break;
      case 'Exists':
        if (t.value) errs.push(invalid(`${f}.operator`, t.value, "value must be empty when `operator` is 'Exists'"));
        break;
      default:
        errs.push(notSupported(`${f}.operator`, t.operator, ['Equal', 'Exists']));
    }
    if (t.effect && !['NoSchedule', 'PreferNoSchedule', 'NoExecute'].includes(t.effect)) {
      errs.push(notSupported(`${f}.effect`, t.effect, ['NoExecute', 'NoSchedule', 'PreferNoSchedule']));
    }
  });
  return errs;
}

/** A pod template's checks (ValidatePodTemplateSpec), under `field` (`spec.template`). */
export function validatePodTemplate(template: Json | undefined, field: string): FieldError[] {
  const meta = (template?.metadata ?? {}) as Json;
  const spec = (template?.spec ?? {}) as Json;
  const errs: FieldError[] = [
    ...validateLabels(meta.labels, `${field}.labels`),
    ...validateAnnotations(meta.annotations, `${field}.annotations`),
  ];
  const s = `${field}.spec`;
  errs.push(...validateVolumes(spec.volumes, `${s}.volumes`));
  errs.push(...validateContainers(spec.containers, spec.volumes, `${s}.containers`));
  if (spec.initContainers)
    errs.push(
      ...validateContainers(spec.initContainers, spec.volumes, `${s}.initContainers`).filter(
        (e) => e.type !== 'FieldValueRequired' || e.field !== `${s}.initContainers`,
      ),
    );
  errs.push(...validateLabels(spec.nodeSelector, `${s}.nodeSelector`));
  errs.push(...validateTolerations(spec.tolerations, `${s}.tolerations`));
  if (spec.runtimeClassName !== undefined) {
    for (const m of isDNS1123Subdomain(spec.runtimeClassName))
      errs.push(invalid(`${s}.runtimeClassName`, spec.runtimeClassName, m));
  }
  if (spec.serviceAccountName)
    for (const m of isDNS1123Subdomain(spec.serviceAccountName))
      errs.push(invalid(`${s}.serviceAccountName`, spec.serviceAccountName, m));
  for (const key of ['terminationGracePeriodSeconds', 'activeDeadlineSeconds'] as const) {
    if (spec[key] !== undefined && spec[key] < 0)
      errs.push(invalid(`${s}.${key}`, spec[key], 'must be greater than or equal to 0'));
  }
  if (spec.dnsPolicy && !['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'].includes(spec.dnsPolicy)) {
    errs.push(
      notSupported(`${s}.dnsPolicy`, spec.dnsPolicy, ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None']),
    );
  }
  return errs;
}

/** SetDefaults_PodSpec and friends: what a read of a template or pod shows that the client never sent. */
export function defaultPodSpec(spec: Json): void {
  spec.restartPolicy ||= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ||= 'ClusterFirst';
  spec.securityContext ??= {};
  spec.schedulerName ||= 'default-scheduler';
  spec.enableServiceLinks ??= true;
  for (const v of spec.volumes ?? []) {
    if (v.secret) v.secret.defaultMode ??= 0o644;
  }
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    c.terminationMessagePath ||= '/dev/termination-log';
    c.terminationMessagePolicy ||= 'File';
    c.imagePullPolicy ||= imageTag(c.image ?? '') === 'latest' ? 'Always' : 'IfNotPresent';
    c.resources ??= {};
    // Requests default to limits for every resource that has a limit and no request.
    const limits = (c.resources.limits ?? {}) as Record<string, string>;
    if (Object.keys(limits).length > 0) {
      c.resources.requests = { ...limits, ...c.resources.requests };
    }
  }
}

/** The tag of an image reference, `latest` when it has neither tag nor digest. */
export function imageTag(image: string): string | undefined {
  if (image.includes('@')) return undefined;
  const last = image.slice(image.lastIndexOf('/') + 1);
  const colon = last.indexOf(':');
  return colon >= 0 ? last.slice(colon + 1) : 'latest';
}

// ---------------------------------------------------------------------------------------------
// Jobs

/** batch/v1 Job validation (ValidateJob). Generated selector labels are added before this runs. */
export function validateJob(job: Json): FieldError[] {
  const errs = validateObjectMeta(job.metadata, isDNS1123Subdomain);
  const spec = (job.spec ?? {}) as Json;
  for (const key of [
    'parallelism',
    'completions',
    'activeDeadlineSeconds',
    'backoffLimit',
    'ttlSecondsAfterFinished',
  ] as const) {
    if (spec[key] !== undefined && spec[key] < 0)
      errs.push(invalid(`spec.${key}`, spec[key], 'must be greater than or equal to 0'));
  }
  if (spec.completionMode && !['NonIndexed', 'Indexed'].includes(spec.completionMode)) {
    errs.push(notSupported('spec.completionMode', spec.completionMode, ['NonIndexed', 'Indexed']));
  }
  if (spec.podReplacementPolicy && !['TerminatingOrFailed', 'Failed'].includes(spec.podReplacementPolicy)) {
    errs.push(notSupported('spec.podReplacementPolicy', spec.podReplacementPolicy, ['Failed', 'TerminatingOrFailed']));
  }
  if (!spec.template) errs.push(required('spec.template'));
  errs.push(...validatePodTemplate(spec.template, 'spec.template'));
  const restart = spec.template?.spec?.restartPolicy;
  // The Always default would restart a finished Job's pod forever, so a Job must say Never or OnFailure.
  if (restart === 'Always' || !restart)
    errs.push(required('spec.template.spec.restartPolicy', 'valid values: "OnFailure", "Never"'));
  else if (restart !== 'OnFailure' && restart !== 'Never')
    errs.push(notSupported('spec.template.spec.restartPolicy', restart, ['OnFailure', 'Never']));
  return errs;
}

/** SetDefaults_Job, applied before validation. */
export function defaultJob(job: Json): void {
  job.spec ??= {};
  const spec = job.spec as Json;
  if (spec.completions === undefined && spec.parallelism === undefined) {
    spec.completions = 1;
    spec.parallelism = 1;
  }
  spec.parallelism ??= 1;
  spec.backoffLimit ??= 6;
  spec.completionMode ||= 'NonIndexed';
  spec.suspend ??= false;
  spec.podReplacementPolicy ||= 'TerminatingOrFailed';
  spec.template ??= {};
  const template = spec.template as Json;
  template.metadata ??= {};
  template.spec ??= {};
  // A Job without labels of its own takes the template's (before the generated ones are added).
  if (!job.metadata.labels || Object.keys(job.metadata.labels).length === 0) {
    if (template.metadata.labels && Object.keys(template.metadata.labels).length > 0)
      job.metadata.labels = { ...template.metadata.labels };
  }
  defaultPodSpec(template.spec);
}

/** Whether JSON `a` and `b` are equal (order of object keys aside). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as Json);
  const kb = Object.keys(b as Json);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Json)[k], (b as Json)[k]));
}
