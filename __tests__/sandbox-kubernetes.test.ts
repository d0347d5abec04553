import { afterAll, afterEach, beforeAll, describe, expect, test } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  type V1EnvVar,
  type V1Job,
  type V1Secret,
} from '@kubernetes/client-node';
import { startSandbox, type Sandbox } from '../sandbox/index.js';
import { settle, unfiredFaults } from './support/sandbox.js';
import { until } from './support/wait.js';

/**
 * The fake Kubernetes API server and its control plane, driven by the real
 * @kubernetes/client-node. One Kubernetes second lasts 50 ms here, so deadlines, TTLs, grace
 * periods and back-offs pass quickly. Every test that creates something ends with nothing left.
 */

// biome-ignore lint/suspicious/noExplicitAny: the tests read the API server's raw JSON answers by path
type Json = Record<string, any>;

const SECOND_MS = 50;
let sb: Sandbox;
let core: CoreV1Api;
let batch: BatchV1Api;
const NS = 'default';

beforeAll(async () => {
  sb = await startSandbox({ kubernetesSecondMs: SECOND_MS });
  // These tests drive the fake itself, as cluster-admin in `default`; the launcher's Role is tested below.
  ({ core, batch } = clients(sb.kubernetes.kubeconfig({ token: sb.kubernetes.tokens.admin, namespace: NS })));
});

afterEach(() => {
  const unfired = unfiredFaults(sb.faults);
  sb.faults.clear();
  // Every fault a test added must have fired: one that never matches would pass silently.
  expect(unfired).toEqual([]);
});

afterAll(async () => {
  await sb?.close();
});

function clients(kubeconfig: string): { core: CoreV1Api; batch: BatchV1Api } {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfig);
  return { core: kc.makeApiClient(CoreV1Api), batch: kc.makeApiClient(BatchV1Api) };
}

/** The Status the server answered with, from the client's exception. */
async function statusOf(p: Promise<unknown>): Promise<{ code: number; body: Json }> {
  try {
    await p;
  } catch (err) {
    if (!(err instanceof ApiException)) throw err;
    const e = err as ApiException<unknown>;
    const body = typeof e.body === 'string' ? (JSON.parse(e.body) as Json) : ((e.body ?? {}) as Json);
    return { code: e.code, body };
  }
  throw new Error('expected the call to fail');
}

/** A raw request, for what the typed client cannot send (other content types, unknown paths). */
async function raw(
  method: string,
  path: string,
  opts: { body?: string; contentType?: string; token?: string | null } = {},
): Promise<{ status: number; text: string; json?: Json; headers: Headers }> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? sb.kubernetes.tokens.admin : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.contentType) headers['content-type'] = opts.contentType;
  const res = await fetch(`${sb.kubernetes.url}${path}`, {
    method,
    headers,
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const text = await res.text();
  let json: Json | undefined;
  try {
    json = JSON.parse(text) as Json;
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, headers: res.headers };
}

const podsOf = async (job: string): Promise<Json[]> =>
  (await core.listNamespacedPod({ namespace: NS, labelSelector: `job-name=${job}` })).items as Json[];
const eventsOf = async (name: string, kind: string): Promise<Json[]> =>
  (
    await core.listNamespacedEvent({
      namespace: NS,
      fieldSelector: `involvedObject.name=${name},involvedObject.kind=${kind}`,
    })
  ).items as Json[];

/** A Job as the product builds it: a Secret-mounted script, a credential from a secretKeyRef, a work dir. */
function runnerJob(
  name: string,
  over: {
    command?: string[];
    image?: string;
    limits?: Record<string, string>;
    spec?: Json;
    podSpec?: Json;
    containerSecurityContext?: Json;
    env?: Json[];
  } = {},
): V1Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      labels: { 'app.kubernetes.io/managed-by': 'sandbox-test', 'cml-runner/machine': name },
      annotations: { 'cml-runner/repo': 'octo-org/ml' },
    },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: 600,
      ttlSecondsAfterFinished: 2,
      ...over.spec,
      template: {
        metadata: { labels: { 'app.kubernetes.io/managed-by': 'sandbox-test', 'cml-runner/machine': name } },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 30,
          ...over.podSpec,
          containers: [
            {
              name: 'runner',
              image: over.image ?? 'ghcr.io/actions/actions-runner:2.331.0',
              command: over.command ?? ['/bin/bash', '/etc/cml-runner/startup.sh'],
              env: (over.env as V1EnvVar[] | undefined) ?? [
                { name: 'CML_RUNNER_HOME', value: '/cml-runner' },
                { name: 'CML_RUNNER_PREINSTALLED', value: '/home/runner' },
                { name: 'ACTIONS_RUNNER_INPUT_TOKEN', valueFrom: { secretKeyRef: { name, key: 'token' } } },
              ],
              resources: { limits: over.limits ?? { cpu: '2', memory: '8Gi' } },
              ...(over.containerSecurityContext ? { securityContext: over.containerSecurityContext } : {}),
              volumeMounts: [
                { name: 'startup', mountPath: '/etc/cml-runner', readOnly: true },
                { name: 'work', mountPath: '/cml-runner' },
              ],
            },
          ],
          volumes: [
            {
              name: 'startup',
              secret: { secretName: name, defaultMode: 0o555, items: [{ key: 'startup.sh', path: 'startup.sh' }] },
            },
            { name: 'work', emptyDir: {} },
          ],
        },
      },
    },
  };
}

function runnerSecret(name: string, script: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, labels: { 'cml-runner/machine': name } },
    type: 'Opaque',
    stringData: { 'startup.sh': script, token: 'AABBCCDD-registration' },
  };
}

/** Creates the Secret, the Job, and makes the Job own the Secret, as the product does. */
async function launch(name: string, script: string, over: Parameters<typeof runnerJob>[1] = {}): Promise<Json> {
  await core.createNamespacedSecret({ namespace: NS, body: runnerSecret(name, script) });
  const job = (await batch.createNamespacedJob({ namespace: NS, body: runnerJob(name, over) })) as Json;
  await core.patchNamespacedSecret({
    name,
    namespace: NS,
    body: [
      {
        op: 'add',
        path: '/metadata/ownerReferences',
        value: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid, blockOwnerDeletion: false }],
      },
    ],
  });
  return job;
}

describe('objects, as the API server stores and answers them', () => {
  test('a Secret: stringData becomes base64 data, reads carry kind and metadata, lists and selectors, 409, 404', async () => {
    const created = (await core.createNamespacedSecret({
      namespace: NS,
      body: {
        metadata: { name: 'plain', labels: { tier: 'a', team: 'ml' } },
        stringData: { 'startup.sh': 'echo hi' },
        data: { extra: Buffer.from('x').toString('base64') },
      },
    })) as Json;
    expect(created).toMatchObject({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      data: { 'startup.sh': Buffer.from('echo hi').toString('base64'), extra: 'eA==' },
    });
    expect(created.stringData).toBeUndefined();
    expect(created.metadata).toMatchObject({ name: 'plain', namespace: NS });
    expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata.resourceVersion).toMatch(/^\d+$/);
    expect(created.metadata.creationTimestamp).toBeInstanceOf(Date);
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'other', labels: { tier: 'b' } }, data: {} },
    });

    const names = async (labelSelector: string): Promise<string[]> =>
      (await core.listNamespacedSecret({ namespace: NS, labelSelector })).items.map((s) => s.metadata!.name!);
    expect(await names('tier=a')).toEqual(['plain']);
    expect(await names('tier==a,team')).toEqual(['plain']);
    expect(await names('tier!=a')).toEqual(['other']);
    expect(await names('tier in (a, b)')).toEqual(['other', 'plain']);
    expect(await names('tier notin (a)')).toEqual(['other']);
    expect(await names('!team')).toEqual(['other']);
    const list = await raw('GET', `/api/v1/namespaces/${NS}/secrets?fieldSelector=metadata.name%3Dplain`);
    expect(list.json).toMatchObject({
      kind: 'SecretList',
      apiVersion: 'v1',
      metadata: { resourceVersion: expect.stringMatching(/^\d+$/) },
    });
    expect(list.json!.items.map((s: Json) => s.metadata.name)).toEqual(['plain']);

    const bad = await statusOf(core.listNamespacedSecret({ namespace: NS, labelSelector: 'tier in a' }));
    expect(bad).toMatchObject({ code: 400, body: { kind: 'Status', status: 'Failure', reason: 'BadRequest' } });
    expect(bad.body.message).toContain("expected: '('");

    const dup = await statusOf(core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'plain' } } }));
    expect(dup).toEqual({
      code: 409,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'secrets "plain" already exists',
        reason: 'AlreadyExists',
        details: { name: 'plain', kind: 'secrets' },
        code: 409,
      },
    });
    const noNs = await statusOf(core.createNamespacedSecret({ namespace: 'nope', body: { metadata: { name: 'x' } } }));
    expect(noNs.code).toBe(404);
    expect(noNs.body).toMatchObject({
      reason: 'NotFound',
      message: 'namespaces "nope" not found',
      details: { name: 'nope', kind: 'namespaces' },
    });
    // Listing in a namespace that does not exist is an empty list, as on a real server.
    expect((await core.listNamespacedSecret({ namespace: 'nope' })).items).toEqual([]);

    await core.deleteNamespacedSecret({ name: 'plain', namespace: NS });
    await core.deleteNamespacedSecret({ name: 'other', namespace: NS });
    const missing = await statusOf(batch.readNamespacedJob({ name: 'x', namespace: NS }));
    expect(missing).toEqual({
      code: 404,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'jobs.batch "x" not found',
        reason: 'NotFound',
        details: { name: 'x', group: 'batch', kind: 'jobs' },
        code: 404,
      },
    });
    expect(await settle(sb)).toEqual([]);
  });

  test('patches: JSON patch (the client default), merge patch, strategic merge; a failed test op is 422, other media types 415', async () => {
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'patched', labels: { a: '1' } }, stringData: { k: 'v' } },
    });
    const p1 = (await core.patchNamespacedSecret({
      name: 'patched',
      namespace: NS,
      body: [
        { op: 'add', path: '/metadata/labels/b', value: '2' },
        { op: 'remove', path: '/metadata/labels/a' },
      ],
    })) as Json;
    expect(p1.metadata.labels).toEqual({ b: '2' });
    const merge = await raw('PATCH', `/api/v1/namespaces/${NS}/secrets/patched`, {
      contentType: 'application/merge-patch+json',
      body: JSON.stringify({ metadata: { labels: { c: '3' } }, stringData: { k2: 'v2' } }),
    });
    expect(merge.status).toBe(200);
    expect(merge.json!.metadata.labels).toEqual({ b: '2', c: '3' });
    expect(merge.json!.data).toEqual({ k: 'dg==', k2: 'djI=' });
    const strategic = await raw('PATCH', `/api/v1/namespaces/${NS}/secrets/patched`, {
      contentType: 'application/strategic-merge-patch+json',
      body: JSON.stringify({ metadata: { labels: { b: null } } }),
    });
    expect(strategic.json!.metadata.labels).toEqual({ c: '3' });

    const failed = await statusOf(
      core.patchNamespacedSecret({
        name: 'patched',
        namespace: NS,
        body: [{ op: 'test', path: '/metadata/labels/c', value: 'nope' }],
      }),
    );
    expect(failed).toMatchObject({
      code: 422,
      body: { reason: 'Invalid', message: 'the server rejected our request due to an error in our request' },
    });
    const media = await raw('PATCH', `/api/v1/namespaces/${NS}/secrets/patched`, {
      contentType: 'application/json',
      body: '{}',
    });
    expect(media.status).toBe(415);
    expect(media.json).toMatchObject({ reason: 'UnsupportedMediaType' });
    const badData = await raw('PATCH', `/api/v1/namespaces/${NS}/secrets/patched`, {
      contentType: 'application/merge-patch+json',
      body: JSON.stringify({ data: { k: 'not base64!' } }),
    });
    expect(badData.status).toBe(400);
    expect(badData.json!.message).toMatch(
      /^Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte \d+$/,
    );

    await core.deleteNamespacedSecret({ name: 'patched', namespace: NS });
    expect(await settle(sb)).toEqual([]);
  });

  test('validation: names, quantities, images, restart policy, env, mounts and GPUs are refused with the real Status', async () => {
    const base = (mutate: (j: Json) => void): V1Job => {
      const j = runnerJob('valid-name') as Json;
      mutate(j);
      return j as V1Job;
    };
    const create = (j: V1Job) => statusOf(batch.createNamespacedJob({ namespace: NS, body: j }));

    const noImage = await create(base((j) => delete j.spec.template.spec.containers[0].image));
    expect(noImage.code).toBe(422);
    expect(noImage.body).toMatchObject({
      reason: 'Invalid',
      message: 'Job.batch "valid-name" is invalid: spec.template.spec.containers[0].image: Required value',
      details: {
        name: 'valid-name',
        group: 'batch',
        kind: 'Job',
        causes: [
          { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.template.spec.containers[0].image' },
        ],
      },
    });

    const badName = await create(base((j) => (j.metadata.name = 'Bad_Name')));
    expect(badName.body.message).toContain(
      'Job.batch "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of',
    );
    expect(badName.body.details.causes[0]).toMatchObject({ reason: 'FieldValueInvalid', field: 'metadata.name' });

    const long = 'a'.repeat(64);
    const longName = await create(base((j) => (j.metadata.name = long)));
    expect(longName.body.message).toBe(
      `Job.batch "${long}" is invalid: spec.template.labels: Invalid value: "${long}": must be no more than 63 bytes`,
    );

    const quantity = await create(base((j) => (j.spec.template.spec.containers[0].resources.limits.memory = '8 GiB')));
    expect(quantity).toMatchObject({ code: 400, body: { reason: 'BadRequest' } });
    expect(quantity.body.message).toBe(
      'Job in version "v1" cannot be handled as a Job: quantities must match the regular expression \'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$\'',
    );

    const wrongType = await create(base((j) => (j.spec.backoffLimit = 'zero')));
    expect(wrongType.body.message).toBe(
      'Job in version "v1" cannot be handled as a Job: json: cannot unmarshal string into Go struct field JobSpec.spec.backoffLimit of type int32',
    );

    const always = await create(base((j) => (j.spec.template.spec.restartPolicy = 'Always')));
    expect(always.body.message).toBe(
      'Job.batch "valid-name" is invalid: spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"',
    );

    const several = await create(
      base((j) => {
        const c = j.spec.template.spec.containers[0];
        c.env = [
          { name: '1BAD', value: 'x' },
          { name: 'BOTH', value: 'x', valueFrom: { secretKeyRef: { name: 'valid-name', key: 'token' } } },
        ];
        c.volumeMounts.push({ name: 'nowhere', mountPath: '/x' });
        c.resources = { limits: { cpu: '2', 'nvidia.com/gpu': '1' }, requests: { cpu: '4', 'nvidia.com/gpu': '2' } };
        j.spec.activeDeadlineSeconds = -1;
        j.metadata.labels['bad key!'] = 'v';
      }),
    );
    expect(several.code).toBe(422);
    const fields = (several.body.details.causes as Json[]).map((c) => `${c.field}: ${c.reason}`);
    expect(fields).toEqual(
      expect.arrayContaining([
        'metadata.labels: FieldValueInvalid',
        'spec.activeDeadlineSeconds: FieldValueInvalid',
        'spec.template.spec.containers[0].env[0].name: FieldValueInvalid',
        'spec.template.spec.containers[0].env[1].valueFrom: FieldValueInvalid',
        'spec.template.spec.containers[0].volumeMounts[2].name: FieldValueNotFound',
        'spec.template.spec.containers[0].resources.requests: FieldValueInvalid',
      ]),
    );
    expect(several.body.message).toContain('must be equal to nvidia.com/gpu limit of 1');
    expect(several.body.message).toContain('must be less than or equal to cpu limit of 2');
    expect(several.body.message).toMatch(/^Job\.batch "valid-name" is invalid: \[/);

    const secret = await statusOf(
      core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 's' }, data: { 'bad key': 'eA==' } } }),
    );
    expect(secret.body.message).toContain(
      'Secret "s" is invalid: data[bad key]: Invalid value: "bad key": a valid config key must consist of alphanumeric characters',
    );

    // Unknown fields are accepted with a warning, or refused when the client asks for strict validation.
    const unknown = await raw('POST', `/apis/batch/v1/namespaces/${NS}/jobs?fieldValidation=Strict`, {
      contentType: 'application/json',
      body: JSON.stringify({ ...runnerJob('strict'), spec: { ...runnerJob('strict').spec, backofLimit: 1 } }),
    });
    expect(unknown.status).toBe(400);
    expect(unknown.json!.message).toBe(
      'Job in version "v1" cannot be handled as a Job: strict decoding error: unknown field "spec.backofLimit"',
    );

    expect(sb.kubernetes.jobs()).toEqual([]);
    expect(await settle(sb)).toEqual([]);
  });

  test('credentials: no or an unknown token is 401, a token without rights is 403 in RBAC words', async () => {
    const anonymous = await raw('GET', `/apis/batch/v1/namespaces/${NS}/jobs`, { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.json).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Unauthorized',
      reason: 'Unauthorized',
      code: 401,
    });
    const expired = clients(sb.kubernetes.kubeconfig({ token: 'expired-token' }));
    expect((await statusOf(expired.batch.listNamespacedJob({ namespace: NS }))).code).toBe(401);

    const denied = clients(sb.kubernetes.kubeconfig({ token: sb.kubernetes.tokens.denied }));
    const create = await statusOf(denied.batch.createNamespacedJob({ namespace: NS, body: runnerJob('denied') }));
    expect(create).toEqual({
      code: 403,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message:
          'jobs.batch is forbidden: User "system:serviceaccount:ci:cml-launcher" cannot create resource "jobs" in API group "batch" in the namespace "default"',
        reason: 'Forbidden',
        details: { group: 'batch', kind: 'jobs' },
        code: 403,
      },
    });
    const log = await statusOf(denied.core.readNamespacedPodLog({ name: 'p', namespace: 'ci' }));
    expect(log.body.message).toBe(
      'pods "p" is forbidden: User "system:serviceaccount:ci:cml-launcher" cannot get resource "pods/log" in API group "" in the namespace "ci"',
    );
    expect(
      sb.kubernetes.calls
        .filter((c) => c.status === 403)
        .map((c) => `${c.verb} ${c.resource}${c.subresource ? `/${c.subresource}` : ''}`),
    ).toEqual(['create jobs', 'get pods/log']);
  });

  test('the sandbox KUBECONFIG file works as is; a watch streams the current objects, then changes', async () => {
    const fromFile = new KubeConfig();
    fromFile.loadFromFile(sb.env.KUBECONFIG);
    expect(fromFile.getCurrentCluster()).toMatchObject({ server: sb.kubernetes.url, skipTLSVerify: true });
    await fromFile.makeApiClient(BatchV1Api).listNamespacedJob({ namespace: sb.kubernetes.launcher.namespace });

    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'watched-1', labels: { w: 'yes' } } },
    });
    const stream = raw('GET', `/api/v1/namespaces/${NS}/secrets?watch=true&labelSelector=w%3Dyes&timeoutSeconds=1`);
    await new Promise((r) => setTimeout(r, 100));
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'watched-2', labels: { w: 'yes' } } },
    });
    await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'unwatched' } } });
    await core.deleteNamespacedSecret({ name: 'watched-1', namespace: NS });
    const lines = (await stream).text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Json);
    expect(lines.map((l) => `${l.type} ${l.object.metadata.name}`)).toEqual([
      'ADDED watched-1',
      'ADDED watched-2',
      'DELETED watched-1',
    ]);
    expect(sb.kubernetes.calls.some((c) => c.verb === 'watch' && c.resource === 'secrets')).toBe(true);
    await core.deleteNamespacedSecret({ name: 'watched-2', namespace: NS });
    await core.deleteNamespacedSecret({ name: 'unwatched', namespace: NS });
    expect(await settle(sb)).toEqual([]);
  });

  test('unknown paths and verbs: 404 and 405 as the server answers them; faults answer with a Status', async () => {
    expect((await raw('GET', '/apis/apps/v1/namespaces/default/deployments')).text).toBe('404 page not found\n');
    expect((await raw('GET', `/api/v1/namespaces/${NS}/configmaps`)).json).toMatchObject({
      reason: 'NotFound',
      message: 'the server could not find the requested resource',
      code: 404,
    });
    expect(
      (await raw('POST', `/api/v1/namespaces/${NS}/events`, { contentType: 'application/json', body: '{}' })).json,
    ).toMatchObject({ reason: 'MethodNotAllowed', code: 405 });

    sb.faults.add({ service: 'kubernetes', action: 'list jobs', code: 'TooManyRequests', retryAfter: 2 });
    const throttled = await raw('GET', `/apis/batch/v1/namespaces/${NS}/jobs`);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('2');
    expect(throttled.json).toMatchObject({ reason: 'TooManyRequests', details: { retryAfterSeconds: 2 } });
    sb.faults.add({ service: 'kubernetes', action: 'create secrets', code: 'InternalError' });
    expect(
      (await statusOf(core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'x' } } }))).code,
    ).toBe(500);
    sb.faults.add({ service: 'kubernetes', action: 'list pods', delayMs: 300 });
    const t0 = Date.now();
    await core.listNamespacedPod({ namespace: NS });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(sb.faults.fired.map((f) => f.action)).toEqual(
      expect.arrayContaining(['list jobs', 'create secrets', 'list pods']),
    );
    expect(await settle(sb)).toEqual([]);
  });

  test('a fault with where fires only for the object it names, and the call log records the name', async () => {
    sb.faults.add({
      service: 'kubernetes',
      action: 'create secrets',
      where: { name: 'where-b', namespace: NS },
      code: 'InternalError',
    });
    const before = sb.kubernetes.calls.length;
    const create = (name: string) =>
      core.createNamespacedSecret({ namespace: NS, body: { metadata: { name }, stringData: { k: 'v' } } });
    await create('where-a');
    expect((await statusOf(create('where-b'))).code).toBe(500);
    await create('where-c');
    expect(sb.faults.unfired()).toEqual([]);
    expect(sb.faults.fired.filter((f) => f.service === 'kubernetes')).toEqual([
      {
        service: 'kubernetes',
        action: 'create secrets',
        code: 'InternalError',
        params: { namespace: NS, name: 'where-b' },
      },
    ]);
    const made = sb.kubernetes.calls.slice(before).filter((c) => c.verb === 'create');
    expect(made.map((c) => [c.params?.name, c.status, c.reason])).toEqual([
      ['where-a', 201, undefined],
      ['where-b', 500, 'InternalError'],
      ['where-c', 201, undefined],
    ]);
    for (const name of ['where-a', 'where-c']) await core.deleteNamespacedSecret({ name, namespace: NS });
    expect(await settle(sb)).toEqual([]);
  });

  test('credentials and RBAC are checked before an armed fault: refused requests leave it armed', async () => {
    sb.faults.add({ service: 'kubernetes', action: 'list secrets', code: 'ServiceUnavailable' });
    const path = `/api/v1/namespaces/${NS}/secrets`;
    expect((await raw('GET', path, { token: null })).json).toMatchObject({ reason: 'Unauthorized', code: 401 });
    expect((await raw('GET', path, { token: 'not-a-token' })).json).toMatchObject({
      reason: 'Unauthorized',
      code: 401,
    });
    expect((await raw('GET', path, { token: sb.kubernetes.tokens.denied })).json).toMatchObject({
      reason: 'Forbidden',
      code: 403,
    });
    expect(sb.faults.fired).toEqual([]);
    // The first request the server would have served takes the fault.
    expect((await raw('GET', path)).json).toMatchObject({ reason: 'ServiceUnavailable', code: 503 });
    expect(sb.faults.unfired()).toEqual([]);
    expect(await settle(sb)).toEqual([]);
  });
});

describe('a Job lives: scheduled, run, finished and removed', () => {
  test('a script that exits 0 completes the Job; the TTL removes the Job, its pod and the Secret it owns', async () => {
    const job = await launch(
      'hello',
      'echo "hello from $HOSTNAME"; ls "$CML_RUNNER_HOME" >/dev/null; test -x "$CML_RUNNER_PREINSTALLED/run.sh" && echo "runner preinstalled"; echo "token=$ACTIONS_RUNNER_INPUT_TOKEN"; exit 0',
    );
    // What the server generated and defaulted.
    expect(job.spec.selector).toEqual({ matchLabels: { 'batch.kubernetes.io/controller-uid': job.metadata.uid } });
    expect(job.spec.template.metadata.labels).toMatchObject({
      'job-name': 'hello',
      'batch.kubernetes.io/job-name': 'hello',
      'controller-uid': job.metadata.uid,
    });
    expect(job.spec.template.spec.containers[0].resources.requests).toEqual({ cpu: '2', memory: '8Gi' });
    expect(job.metadata.generation).toBe(1);

    const done = await until(
      'the Job to complete',
      async () => {
        const j = (await batch.readNamespacedJob({ name: 'hello', namespace: NS })) as Json;
        return j.status?.conditions?.find((c: Json) => c.type === 'Complete') ? j : undefined;
        // Polled often: the Job's TTL removes its pod, and the pod's log with it, soon after.
      },
      15_000,
      25,
    );
    expect(done.status).toMatchObject({ succeeded: 1, ready: 0, terminating: 0 });
    expect(done.status.conditions.map((c: Json) => c.type)).toEqual(['SuccessCriteriaMet', 'Complete']);
    expect(done.status.completionTime).toBeInstanceOf(Date);

    const [pod] = await podsOf('hello');
    expect(pod!.metadata.name).toMatch(/^hello-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(pod!.metadata.ownerReferences).toEqual([
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        name: 'hello',
        uid: job.metadata.uid,
        controller: true,
        blockOwnerDeletion: true,
      },
    ]);
    expect(pod!.spec.nodeName).toBe('sandbox-cpu-1');
    expect(pod!.status).toMatchObject({ phase: 'Succeeded', qosClass: 'Guaranteed' });
    expect(pod!.status.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    const log = await core.readNamespacedPodLog({
      name: pod!.metadata.name,
      namespace: NS,
      container: 'runner',
      tailLines: 10,
    });
    expect(log).toContain(`hello from ${pod!.metadata.name}`);
    expect(log).toContain('runner preinstalled');
    expect(log).toContain('token=AABBCCDD-registration');
    expect(sb.kubernetes.podLog(pod!.metadata.name)).toBe(log);
    const reasons = (await eventsOf(pod!.metadata.name, 'Pod')).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['Scheduled', 'Pulling', 'Pulled', 'Created', 'Started']));
    expect((await eventsOf('hello', 'Job')).map((e) => e.reason)).toEqual(
      expect.arrayContaining(['SuccessfulCreate', 'Completed']),
    );

    // ttlSecondsAfterFinished: 2 (100 ms here), then Background deletion takes the pod and the owned Secret.
    expect(await settle(sb)).toEqual([]);
    expect((await statusOf(core.readNamespacedSecret({ name: 'hello', namespace: NS }))).code).toBe(404);
  });

  test('deleting a Job without a propagation policy orphans its running pod; Background takes the pod and the owned Secret', async () => {
    await launch('orphaned', 'sleep 1000');
    const [pod] = await until('the pod to run', async () => {
      const pods = await podsOf('orphaned');
      return pods[0]?.status?.phase === 'Running' ? pods : undefined;
    });
    await batch.deleteNamespacedJob({ name: 'orphaned', namespace: NS });
    const call = sb.kubernetes.calls.filter((c) => c.verb === 'delete' && c.name === 'orphaned').pop()!;
    expect(call.warnings).toEqual([
      expect.stringContaining('child pods are preserved by default when jobs are deleted'),
    ]);
    await until('the Job to go', async () =>
      (await statusOf(batch.readNamespacedJob({ name: 'orphaned', namespace: NS }))).code === 404 ? true : undefined,
    );
    const left = await until('the pod to be orphaned', async () => {
      const p = (await core.readNamespacedPod({ name: pod!.metadata.name, namespace: NS })) as Json;
      return p.metadata.ownerReferences === undefined && p.metadata.finalizers === undefined ? p : undefined;
    });
    expect(left.status.phase).toBe('Running');
    // The Secret lost its owner too, so it stays.
    expect(
      (await core.readNamespacedSecret({ name: 'orphaned', namespace: NS })).metadata?.ownerReferences,
    ).toBeUndefined();
    const leftovers = await sb.leftovers();
    expect(leftovers).toEqual(
      expect.arrayContaining([
        expect.stringContaining(
          `Kubernetes pod default/${pod!.metadata.name} is still present (Running on sandbox-cpu-1, no owner, its container is running)`,
        ),
        'Kubernetes Secret default/orphaned is still present',
      ]),
    );
    await core.deleteNamespacedPod({ name: pod!.metadata.name, namespace: NS });
    await core.deleteNamespacedSecret({ name: 'orphaned', namespace: NS });
    expect(await settle(sb)).toEqual([]);

    await launch('background', 'sleep 1000');
    await until('the pod to run', async () =>
      (await podsOf('background'))[0]?.status?.phase === 'Running' ? true : undefined,
    );
    await batch.deleteNamespacedJob({ name: 'background', namespace: NS, propagationPolicy: 'Background' });
    expect(await settle(sb)).toEqual([]);

    const both = await raw('DELETE', `/apis/batch/v1/namespaces/${NS}/jobs/nothing`, {
      contentType: 'application/json',
      body: JSON.stringify({ propagationPolicy: 'Background', orphanDependents: true }),
    });
    expect(both.status).toBe(404);
    await launch('both', 'sleep 1000');
    const invalidOptions = await raw('DELETE', `/apis/batch/v1/namespaces/${NS}/jobs/both`, {
      contentType: 'application/json',
      body: JSON.stringify({ propagationPolicy: 'Background', orphanDependents: true }),
    });
    expect(invalidOptions.status).toBe(422);
    expect(invalidOptions.json!.message).toBe(
      'DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Invalid value: "Background": orphanDependents and deletionPropagation cannot be both set',
    );
    await batch.deleteNamespacedJob({ name: 'both', namespace: NS, body: { propagationPolicy: 'Foreground' } });
    expect(await settle(sb)).toEqual([]);
  });

  test('a GPU pod lands on the GPU node and its container sees the GPU through nvidia-smi', async () => {
    await launch('gpu', 'nvidia-smi -L; exit 0', {
      image: 'nvidia/cuda:12.8.1-runtime-ubuntu24.04',
      limits: { cpu: '2', memory: '8Gi', 'nvidia.com/gpu': '1', 'ephemeral-storage': '50Gi' },
      podSpec: {
        runtimeClassName: 'nvidia',
        nodeSelector: { 'nvidia.com/gpu.product': 'Tesla-T4' },
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
      },
    });
    const pod = await until('the GPU pod to finish', async () => {
      const [p] = await podsOf('gpu');
      return p?.status?.phase === 'Succeeded' ? p : undefined;
    });
    expect(pod.spec.nodeName).toBe('sandbox-gpu-1');
    const log = await core.readNamespacedPodLog({ name: pod.metadata.name, namespace: NS });
    expect(log).toMatch(/^GPU 0: Tesla T4 \(UUID: GPU-/m);
    // Without a GPU limit there is no nvidia-smi in the container.
    await launch('no-gpu', 'command -v nvidia-smi || echo "no nvidia-smi"; exit 0', {
      image: 'nvidia/cuda:12.8.1-runtime-ubuntu24.04',
    });
    const plain = await until('the CPU pod to finish', async () => {
      const [p] = await podsOf('no-gpu');
      return p?.status?.phase === 'Succeeded' ? p : undefined;
    });
    expect(await core.readNamespacedPodLog({ name: plain.metadata.name, namespace: NS })).toContain('no nvidia-smi');
    expect(await settle(sb)).toEqual([]);
  });
});

describe('pods that cannot start say why, in the cluster own words', () => {
  test('more GPUs than any node has: Pending, PodScheduled False Unschedulable, and a FailedScheduling event', async () => {
    await launch('too-many-gpus', 'exit 0', { limits: { cpu: '2', memory: '8Gi', 'nvidia.com/gpu': '2' } });
    const message =
      '0/2 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling..';
    const pod = await until('the scheduler to give up', async () => {
      const [p] = await podsOf('too-many-gpus');
      return p?.status?.conditions?.some((c: Json) => c.type === 'PodScheduled' && c.status === 'False')
        ? p
        : undefined;
    });
    expect(pod.status.phase).toBe('Pending');
    expect(pod.status.conditions).toEqual([
      expect.objectContaining({ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }),
    ]);
    const [event] = (await eventsOf(pod.metadata.name, 'Pod')).filter((e) => e.reason === 'FailedScheduling');
    expect(event).toMatchObject({
      type: 'Warning',
      message,
      reportingComponent: 'default-scheduler',
      action: 'Scheduling',
    });
    // Not on a node yet: the log is empty, not an error.
    expect(await core.readNamespacedPodLog({ name: pod.metadata.name, namespace: NS })).toBe('');
    await batch.deleteNamespacedJob({ name: 'too-many-gpus', namespace: NS, propagationPolicy: 'Background' });
    expect(await settle(sb)).toEqual([]);
  });

  test('a pod that does not fit waits, and is scheduled when a pod leaves the node', async () => {
    await launch('big-a', 'sleep 1000', { limits: { cpu: '6', memory: '8Gi' } });
    await until('the first pod to run', async () =>
      (await podsOf('big-a'))[0]?.status?.phase === 'Running' ? true : undefined,
    );
    await launch('big-b', 'sleep 1000', { limits: { cpu: '6', memory: '8Gi' } });
    const waiting = await until('the second pod to be unschedulable', async () =>
      (await podsOf('big-b'))[0]?.status?.conditions?.find((c: Json) => c.reason === 'Unschedulable'),
    );
    expect(waiting.message).toContain('1 Insufficient cpu');
    await batch.deleteNamespacedJob({ name: 'big-a', namespace: NS, propagationPolicy: 'Background' });
    const [pod] = await until('the second pod to run', async () => {
      const pods = await podsOf('big-b');
      return pods[0]?.status?.phase === 'Running' ? pods : undefined;
    });
    expect(pod!.spec.nodeName).toBe('sandbox-cpu-1');
    expect(pod!.status.conditions.find((c: Json) => c.type === 'PodScheduled')).toMatchObject({ status: 'True' });
    await batch.deleteNamespacedJob({ name: 'big-b', namespace: NS, propagationPolicy: 'Background' });
    expect(await settle(sb)).toEqual([]);
  });

  test('an image that cannot be pulled: ErrImagePull, then ImagePullBackOff with the pull error in events', async () => {
    const image = 'registry.example.com/ml/does-not-exist:1.0';
    await launch('no-image', 'exit 0', { image });
    const pod = await until('ImagePullBackOff', async () => {
      const [p] = await podsOf('no-image');
      return p?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff' ? p : undefined;
    });
    expect(pod.status.phase).toBe('Pending');
    expect(pod.status.containerStatuses[0].state.waiting.message).toBe(`Back-off pulling image "${image}"`);
    const events = await eventsOf(pod.metadata.name, 'Pod');
    expect(events.map((e) => `${e.type} ${e.reason}: ${e.message}`)).toEqual(
      expect.arrayContaining([
        `Warning Failed: Failed to pull image "${image}": rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${image}: not found`,
        'Warning Failed: Error: ErrImagePull',
        `Normal BackOff: Back-off pulling image "${image}"`,
        'Warning Failed: Error: ImagePullBackOff',
      ]),
    );
    const log = await statusOf(
      core.readNamespacedPodLog({ name: pod.metadata.name, namespace: NS, container: 'runner' }),
    );
    expect(log.body).toMatchObject({
      code: 400,
      reason: 'BadRequest',
      message: `container "runner" in pod "${pod.metadata.name}" is waiting to start: trying and failing to pull image`,
    });
    await batch.deleteNamespacedJob({ name: 'no-image', namespace: NS, propagationPolicy: 'Background' });
    expect(await settle(sb)).toEqual([]);
  });

  test('a missing Secret key is CreateContainerConfigError until the key exists; a missing RuntimeClass is FailedCreate', async () => {
    await core.createNamespacedSecret({
      namespace: NS,
      body: {
        metadata: { name: 'late' },
        stringData: { 'startup.sh': 'echo "late token $ACTIONS_RUNNER_INPUT_TOKEN"' },
      },
    });
    await batch.createNamespacedJob({ namespace: NS, body: runnerJob('late') });
    const pod = await until('CreateContainerConfigError', async () => {
      const [p] = await podsOf('late');
      return p?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError' ? p : undefined;
    });
    expect(pod.status.containerStatuses[0].state.waiting.message).toBe(
      "couldn't find key token in Secret default/late",
    );
    const log = await statusOf(core.readNamespacedPodLog({ name: pod.metadata.name, namespace: NS }));
    expect(log.body.message).toBe(
      `container "runner" in pod "${pod.metadata.name}" is waiting to start: CreateContainerConfigError`,
    );
    await core.patchNamespacedSecret({
      name: 'late',
      namespace: NS,
      body: [{ op: 'add', path: '/data/token', value: Buffer.from('t0k3n').toString('base64') }],
    });
    await until('the pod to succeed', async () =>
      (await podsOf('late'))[0]?.status?.phase === 'Succeeded' ? true : undefined,
    );
    expect(sb.kubernetes.podLog(pod.metadata.name)).toContain('late token t0k3n');
    await batch.deleteNamespacedJob({ name: 'late', namespace: NS, propagationPolicy: 'Background' });
    await core.deleteNamespacedSecret({ name: 'late', namespace: NS });

    await launch('no-runtime', 'exit 0', { podSpec: { runtimeClassName: 'kata' } });
    const failed = await until('FailedCreate', async () =>
      (await eventsOf('no-runtime', 'Job')).find((e) => e.reason === 'FailedCreate'),
    );
    expect(failed).toMatchObject({
      type: 'Warning',
      message: 'Error creating: pods "no-runtime-" is forbidden: pod rejected: RuntimeClass "kata" not found',
    });
    expect(await podsOf('no-runtime')).toEqual([]);
    await batch.deleteNamespacedJob({ name: 'no-runtime', namespace: NS, propagationPolicy: 'Background' });
    expect(await settle(sb)).toEqual([]);
  });

  test('a Secret deleted under a running container: it runs on with its environment; its restart waits in CreateContainerConfigError', async () => {
    // The script exits 1 (restarted, under OnFailure) once the test puts `go` in its work directory.
    const script =
      'echo "started with $ACTIONS_RUNNER_INPUT_TOKEN"; ' +
      'while [ ! -e "$CML_RUNNER_HOME/go" ]; do sleep 0.05; done; echo "still $ACTIONS_RUNNER_INPUT_TOKEN"; exit 1';
    await launch('gone-secret', script, { spec: { backoffLimit: 3 }, podSpec: { restartPolicy: 'OnFailure' } });
    const [pod] = await until('the pod to run', async () => {
      const pods = await podsOf('gone-secret');
      return pods[0]?.status?.phase === 'Running' ? pods : undefined;
    });
    const podName = pod!.metadata.name as string;
    await core.deleteNamespacedSecret({ name: 'gone-secret', namespace: NS });
    expect((await statusOf(core.readNamespacedSecret({ name: 'gone-secret', namespace: NS }))).code).toBe(404);
    const machine = sb.machines.all().find((m) => m.id === podName && m.running)!;
    await new Promise((r) => setTimeout(r, 10 * SECOND_MS));
    expect(((await core.readNamespacedPod({ name: podName, namespace: NS })) as Json).status.phase).toBe('Running');
    writeFileSync(join(machine.root, 'cml-runner', 'go'), '');

    const status = await until('the restart to wait for its config', async () => {
      const p = (await core.readNamespacedPod({ name: podName, namespace: NS })) as Json;
      const cs = p.status?.containerStatuses?.[0];
      return cs?.state?.waiting?.reason === 'CreateContainerConfigError' ? cs : undefined;
    });
    expect(status.state.waiting.message).toBe('secret "gone-secret" not found');
    expect(status.lastState.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });
    expect(status.restartCount).toBe(1);
    const failed = (await eventsOf(podName, 'Pod')).filter((e) => e.reason === 'Failed').map((e) => e.message);
    expect(failed).toContain('Error: secret "gone-secret" not found');
    // The first run kept the token it started with, the Secret gone.
    expect(machine.console()).toContain('still AABBCCDD-registration');
    expect(sb.machines.all().filter((m) => m.id === podName)).toHaveLength(1);
    await batch.deleteNamespacedJob({ name: 'gone-secret', namespace: NS, propagationPolicy: 'Background' });
    expect(await settle(sb)).toEqual([]);
  });
});

describe('pod security', () => {
  const ENFORCE = 'pod-security.kubernetes.io/enforce';

  test('runAsNonRoot: the runner image names its user, so only a uid passes; any other image runs as root', async () => {
    const nonRoot = { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } };
    await launch('named-user', 'exit 0', { podSpec: { securityContext: nonRoot } });
    const pod = await until('CreateContainerConfigError', async () => {
      const [p] = await podsOf('named-user');
      return p?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError' ? p : undefined;
    });
    expect(pod.status.containerStatuses[0].state.waiting.message).toBe(
      'container has runAsNonRoot and image has non-numeric user (runner), cannot verify user is non-root ' +
        `(pod: "${pod.metadata.name}_${NS}(${pod.metadata.uid})", container: runner)`,
    );
    await batch.deleteNamespacedJob({ name: 'named-user', namespace: NS, propagationPolicy: 'Background' });

    await launch('other-image', 'exit 0', { image: 'ubuntu:24.04', podSpec: { securityContext: nonRoot } });
    const root = await until('CreateContainerConfigError', async () => {
      const [p] = await podsOf('other-image');
      return p?.status?.containerStatuses?.[0]?.state?.waiting?.message as string | undefined;
    });
    expect(root).toContain('container has runAsNonRoot and image will run as root');
    await batch.deleteNamespacedJob({ name: 'other-image', namespace: NS, propagationPolicy: 'Background' });

    // A long TTL: the pod must still be there when the poll looks for its Succeeded phase.
    await launch('numeric-user', 'exit 0', {
      spec: { ttlSecondsAfterFinished: 600 },
      podSpec: { securityContext: { ...nonRoot, runAsUser: 1001 } },
    });
    await until('the pod to succeed', async () =>
      (await podsOf('numeric-user'))[0]?.status?.phase === 'Succeeded' ? true : undefined,
    );
    await batch.deleteNamespacedJob({ name: 'numeric-user', namespace: NS, propagationPolicy: 'Background' });
    expect(await settle(sb)).toEqual([]);
  });

  test('Pod Security Admission: a Job is admitted in a restricted namespace, its non-compliant pod is FailedCreate', async () => {
    sb.kubernetes.labelNamespace(NS, { [ENFORCE]: 'restricted' });
    try {
      await launch('not-restricted', 'exit 0');
      const failed = await until('FailedCreate', async () =>
        (await eventsOf('not-restricted', 'Job')).find((e) => e.reason === 'FailedCreate'),
      );
      expect(failed.message).toBe(
        'Error creating: pods "not-restricted-" is forbidden: violates PodSecurity "restricted:latest": ' +
          'allowPrivilegeEscalation != false (container "runner" must set securityContext.allowPrivilegeEscalation=false), ' +
          'unrestricted capabilities (container "runner" must set securityContext.capabilities.drop=["ALL"]), ' +
          'runAsNonRoot != true (pod or container "runner" must set securityContext.runAsNonRoot=true), ' +
          'seccompProfile (pod or container "runner" must set securityContext.seccompProfile.type to ' +
          '"RuntimeDefault" or "Localhost")',
      );
      expect(await podsOf('not-restricted')).toEqual([]);
      await batch.deleteNamespacedJob({ name: 'not-restricted', namespace: NS, propagationPolicy: 'Background' });

      await launch('restricted', 'exit 0', {
        // A long TTL: the pod must still be there when the poll looks for its Succeeded phase.
        spec: { ttlSecondsAfterFinished: 600 },
        podSpec: {
          securityContext: { runAsNonRoot: true, runAsUser: 1001, seccompProfile: { type: 'RuntimeDefault' } },
        },
        containerSecurityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
      });
      await until('the pod to succeed', async () =>
        (await podsOf('restricted'))[0]?.status?.phase === 'Succeeded' ? true : undefined,
      );
      await batch.deleteNamespacedJob({ name: 'restricted', namespace: NS, propagationPolicy: 'Background' });
    } finally {
      sb.kubernetes.labelNamespace(NS, { [ENFORCE]: null });
    }
    expect(await settle(sb)).toEqual([]);
  });
});

describe('ending', () => {
  test('activeDeadlineSeconds kills a pod that would run for ever: the Job fails with DeadlineExceeded', async () => {
    await launch('deadline', 'trap "echo got SIGTERM; exit 143" TERM; sleep 1000 & wait', {
      spec: { activeDeadlineSeconds: 20, ttlSecondsAfterFinished: 600 },
    });
    const [pod] = await until('the pod to run', async () => {
      const pods = await podsOf('deadline');
      return pods[0]?.status?.phase === 'Running' ? pods : undefined;
    });
    const machine = sb.machines.all().find((m) => m.id === pod!.metadata.name)!;
    expect(machine.processes().length).toBeGreaterThan(0);
    const failed = await until(
      'the Job to fail',
      async () => {
        const j = (await batch.readNamespacedJob({ name: 'deadline', namespace: NS })) as Json;
        return j.status?.conditions?.find((c: Json) => c.type === 'Failed') ? j : undefined;
        // Polled often: the Job's TTL removes it soon after it fails.
      },
      15_000,
      25,
    );
    expect(failed.status.conditions).toEqual([
      expect.objectContaining({
        type: 'FailureTarget',
        status: 'True',
        reason: 'DeadlineExceeded',
        message: 'Job was active longer than specified deadline',
      }),
      expect.objectContaining({
        type: 'Failed',
        status: 'True',
        reason: 'DeadlineExceeded',
        message: 'Job was active longer than specified deadline',
      }),
    ]);
    expect(failed.status).toMatchObject({ failed: 1, terminating: 0 });
    expect(failed.status.active).toBeUndefined();
    // The pod was deleted (its container got SIGTERM), and nothing of it runs any more.
    expect(await podsOf('deadline')).toEqual([]);
    expect(machine.processes()).toEqual([]);
    expect(machine.console()).toContain('got SIGTERM');
    const reasons = (await eventsOf('deadline', 'Job')).map((e) => e.reason);
    expect(reasons).toEqual(expect.arrayContaining(['SuccessfulCreate', 'SuccessfulDelete', 'DeadlineExceeded']));
    expect(await sb.leftovers()).toEqual([
      'Kubernetes Job default/deadline is still present (Failed (DeadlineExceeded)); labels app.kubernetes.io/managed-by=sandbox-test, cml-runner/machine=deadline',
      'Kubernetes Secret default/deadline is still present (owned by Job deadline)',
    ]);
    await batch.deleteNamespacedJob({ name: 'deadline', namespace: NS, propagationPolicy: 'Background' });
    expect(await settle(sb)).toEqual([]);
  });

  test('the deadline also ends a Job whose pod never found a node', async () => {
    await launch('never-scheduled', 'exit 0', {
      limits: { cpu: '64', memory: '8Gi' },
      spec: { activeDeadlineSeconds: 10, ttlSecondsAfterFinished: 1 },
    });
    const pod = await until('the scheduler to give up', async () =>
      (await podsOf('never-scheduled'))[0]?.status?.conditions?.find((c: Json) => c.reason === 'Unschedulable'),
    );
    expect(pod.message).toBe(
      '0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling..',
    );
    await until('the Job to fail', async () =>
      (await eventsOf('never-scheduled', 'Job')).find((e) => e.reason === 'DeadlineExceeded'),
    );
    // The TTL (1 s) then removes the failed Job, its Secret and the pod that never ran.
    expect(await settle(sb)).toEqual([]);
  });

  test('a failing script fails the Job with BackoffLimitExceeded; the calls are recorded with RBAC verbs', async () => {
    const before = sb.kubernetes.calls.length;
    await launch('fails', 'echo "about to fail"; exit 3');
    const failed = await until(
      'the Job to fail',
      async () => {
        const j = (await batch.readNamespacedJob({ name: 'fails', namespace: NS })) as Json;
        return j.status?.conditions?.find((c: Json) => c.type === 'Failed') ? j : undefined;
        // Polled often: the Job's TTL removes it soon after it fails.
      },
      15_000,
      25,
    );
    expect(failed.status.conditions[1]).toMatchObject({
      reason: 'BackoffLimitExceeded',
      message: 'Job has reached the specified backoff limit',
    });
    const [pod] = await podsOf('fails');
    expect(pod!.status.containerStatuses[0].state.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(await core.readNamespacedPodLog({ name: pod!.metadata.name, namespace: NS, tailLines: 1 })).toBe(
      'about to fail\n',
    );
    const used = sb.kubernetes.calls
      .slice(before)
      .map((c) => `${c.verb} ${c.group}/${c.resource}${c.subresource ? `/${c.subresource}` : ''} ${c.status}`);
    expect(used).toEqual(
      expect.arrayContaining([
        'create /secrets 201',
        'create batch/jobs 201',
        'patch /secrets 200',
        'get batch/jobs 200',
        'list /pods 200',
        'get /pods/log 200',
      ]),
    );
    expect(await settle(sb)).toEqual([]);
  });
});
