import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AcceleratorTypesClient } from '@google-cloud/compute/build/src/v1/accelerator_types_client.js';
import { ImagesClient } from '@google-cloud/compute/build/src/v1/images_client.js';
import { InstancesClient } from '@google-cloud/compute/build/src/v1/instances_client.js';
import { MachineTypesClient } from '@google-cloud/compute/build/src/v1/machine_types_client.js';
import { ZoneOperationsClient } from '@google-cloud/compute/build/src/v1/zone_operations_client.js';
import { type AuthClient, GoogleAuth, IdentityPoolClient, OAuth2Client } from 'google-auth-library';
import { FaultPlan } from '../sandbox/core/index.js';
import { type FakeGce, GCE_PROJECT, GCE_SERVICE_ACCOUNTS, startFakeGce } from '../sandbox/gce.js';
import { MachineFleet } from '../sandbox/machine.js';
import { unfiredFaults } from './support/sandbox.js';

/**
 * The fake Compute Engine, driven by the real `@google-cloud/compute` clients (REST transport)
 * with google-auth-library's workload identity federation, and the VMs it boots. Every test ends
 * with nothing left behind and every server closed.
 */

const ZONE = 'us-central1-a';
const SECOND_MS = 50;
const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
const UBUNTU = 'projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64';
const DLVM = 'projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570';

let faults: FaultPlan;
let fleet: MachineFleet;
let fake: FakeGce;
let dir: string;
let credFile: string;
const closers: Array<{ close(): Promise<void> }> = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Instance = NonNullable<Parameters<InstancesClient['insert']>[0]['instanceResource']>;

interface Clients {
  instances: InstancesClient;
  ops: ZoneOperationsClient;
  machineTypes: MachineTypesClient;
  accelerators: AcceleratorTypesClient;
  images: ImagesClient;
}

/** The federated credential the product gets from google-github-actions/auth, as an auth client. */
function federated(file = credFile): IdentityPoolClient {
  return new IdentityPoolClient(JSON.parse(fs.readFileSync(file, 'utf8')));
}

function clients(authClient: AuthClient = federated()): Clients {
  const options = {
    apiEndpoint: '127.0.0.1',
    port: Number(new URL(fake.url).port),
    protocol: 'http',
    fallback: true,
    authClient,
  };
  const made: Clients = {
    instances: new InstancesClient(options),
    ops: new ZoneOperationsClient(options),
    machineTypes: new MachineTypesClient(options),
    accelerators: new AcceleratorTypesClient(options),
    images: new ImagesClient(options),
  };
  closers.push(...Object.values(made));
  return made;
}

/** A project owner's credential (every permission), for what the launcher's roles do not grant. */
function owner(): OAuth2Client {
  const client = new OAuth2Client();
  client.setCredentials({
    access_token: fake.accessToken(GCE_SERVICE_ACCOUNTS.admin),
    expiry_date: Date.now() + 3_600_000,
  });
  return client;
}

/** A VM as the product launches one: Ubuntu, autoDelete boot disk, default network, labelled. */
function vm(name: string, over: Partial<Instance> = {}, script = 'echo hello from the startup script'): Instance {
  return {
    name,
    machineType: `zones/${ZONE}/machineTypes/e2-standard-2`,
    disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: UBUNTU, diskSizeGb: 20 } }],
    networkInterfaces: [
      { network: 'global/networks/default', accessConfigs: [{ type: 'ONE_TO_ONE_NAT', name: 'External NAT' }] },
    ],
    labels: { 'cml-runner': 'true', pool: 'cpu' },
    metadata: { items: [{ key: 'startup-script', value: `#!/bin/bash\n${script}\n` }] },
    ...over,
  };
}

/** Inserts and waits for the insert operation; returns the final operation. */
async function launch(c: Clients, instance: Instance, zone = ZONE, requestId?: string) {
  const [lro] = await c.instances.insert({
    project: GCE_PROJECT,
    zone,
    instanceResource: instance,
    ...(requestId ? { requestId } : {}),
  });
  return waitOp(c, lro.latestResponse as { name?: string | null }, zone);
}

async function waitOp(c: Clients, op: { name?: string | null }, zone = ZONE) {
  for (;;) {
    const [done] = await c.ops.wait({ project: GCE_PROJECT, zone, operation: op.name! });
    if (done.status === 'DONE') return done;
  }
}

async function waitFor(pred: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`${what} not met in ${ms} ms`);
    await sleep(20);
  }
}

async function errorOf(
  p: Promise<unknown>,
): Promise<
  Error & { code?: number; reason?: string; errorInfoMetadata?: Record<string, string>; httpStatusCode?: number }
> {
  try {
    await p;
  } catch (err) {
    return err as Error & { code?: number };
  }
  throw new Error('expected the call to fail');
}

/** The JSON body the API answered with, as the REST transport keeps it on the error. */
function rawBody(err: unknown): {
  error: { code: number; message: string; errors: Array<{ reason: string }>; details?: unknown[] };
} {
  const raw = (err as Record<symbol, unknown>)[Symbol.for('google-gax.rawHttpResponsePayload')];
  return typeof raw === 'string' ? JSON.parse(raw) : (raw as ReturnType<typeof rawBody>);
}

/** Deletes whatever is not deleted, then checks nothing is left. */
async function expectClean(c?: Clients): Promise<void> {
  const left = fake.instances().filter((i) => !i.deleted);
  if (left.length > 0) {
    const cl = c ?? clients();
    for (const i of left) {
      const [lro] = await cl.instances.delete({ project: GCE_PROJECT, zone: i.zone, instance: i.name });
      await waitOp(cl, lro.latestResponse as { name?: string | null }, i.zone);
    }
  }
  expect(fake.leftovers()).toEqual([]);
  for (const m of fleet.all()) expect(m.processes()).toEqual([]);
}

beforeEach(async () => {
  faults = new FaultPlan();
  fleet = new MachineFleet();
  fake = await startFakeGce({ faults, machines: fleet, bootDelayMs: 20, secondMs: SECOND_MS });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sandbox-gce-test-'));
  credFile = fake.credentialsFile(dir);
});

afterEach(async () => {
  const unfired = unfiredFaults(faults);
  await Promise.allSettled(closers.splice(0).map((c) => c.close()));
  await fleet.killAll();
  await fake.close();
  fs.rmSync(dir, { recursive: true, force: true });
  // Every fault a test added must have fired: one that never matches would pass silently.
  expect(unfired).toEqual([]);
});

describe('authentication', () => {
  test('the external_account file exchanges the GitHub token through STS and impersonates the deployer', async () => {
    const config = JSON.parse(fs.readFileSync(credFile, 'utf8'));
    expect(config).toMatchObject({
      type: 'external_account',
      audience:
        '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/github/providers/github',
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      token_url: `${fake.url}/sts/v1/token`,
      credential_source: { file: path.join(dir, 'github-oidc-token') },
    });
    const auth = new GoogleAuth({ authClient: federated(), scopes: [CLOUD_PLATFORM] });
    const token = await auth.getAccessToken();
    expect(token).toMatch(/^ya29\./);
    expect(fake.calls.map((c) => [c.action, c.status])).toEqual([
      ['sts.token global', 200],
      ['iamcredentials.generateAccessToken global', 200],
    ]);
    // The token works on Compute; the same call without one, or with an unknown one, is 401.
    const image = `${fake.url}/compute/v1/projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64`;
    const ok = await fetch(image, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      kind: 'compute#image',
      family: 'ubuntu-2404-lts-amd64',
      diskSizeGb: '10',
      architecture: 'X86_64',
      status: 'READY',
    });
    const none = await fetch(image);
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({
      error: { code: 401, status: 'UNAUTHENTICATED', errors: [{ reason: 'required' }] },
    });
    const bad = await fetch(image, { headers: { authorization: 'Bearer ya29.nope' } });
    expect(bad.status).toBe(401);
    expect(await bad.json()).toMatchObject({ error: { code: 401, errors: [{ reason: 'authError' }] } });
  });

  test('the credential file GOOGLE_APPLICATION_CREDENTIALS names, handed to GoogleAuth with the project, as the product runs', async () => {
    // The product reads the environment once and hands the file's contents to GoogleAuth; with
    // the project given, google-auth-library does not ask Cloud Resource Manager for it.
    const adc = new InstancesClient({
      apiEndpoint: '127.0.0.1',
      port: Number(new URL(fake.url).port),
      protocol: 'http',
      fallback: true,
      projectId: GCE_PROJECT,
    });
    closers.push(adc);
    adc.auth.jsonContent = JSON.parse(fs.readFileSync(credFile, 'utf8')) as typeof adc.auth.jsonContent;
    const [list] = await adc.list({ project: GCE_PROJECT, zone: ZONE });
    expect(list).toEqual([]);
    expect(fake.calls.map((x) => `${x.action} ${x.status}`)).toEqual([
      'sts.token global 200',
      'iamcredentials.generateAccessToken global 200',
      `instances.list ${ZONE} 200`,
    ]);
    expect(fake.calls[2]!.identity).toBe(GCE_SERVICE_ACCOUNTS.deployer);
  });

  test('STS refuses a token it did not issue, a missing token and a wrong audience; IAM lets GitHub impersonate the deployer only', async () => {
    const config = JSON.parse(fs.readFileSync(credFile, 'utf8'));
    const subject = fs.readFileSync(path.join(dir, 'github-oidc-token'), 'utf8');
    const form = (over: Record<string, string | undefined>) => {
      const f: Record<string, string> = {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        audience: config.audience,
        scope: CLOUD_PLATFORM,
        requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        subject_token: subject,
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      };
      for (const [k, v] of Object.entries(over)) {
        if (v === undefined) delete f[k];
        else f[k] = v;
      }
      return fetch(config.token_url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(f),
      });
    };
    const forged = `${subject.split('.').slice(0, 2).join('.')}.c2lnbmF0dXJl`;
    expect(await (await form({ subject_token: forged })).json()).toMatchObject({ error: 'invalid_grant' });
    const missing = await form({ subject_token: undefined });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ error: 'invalid_request' });
    expect(
      await (
        await form({ audience: '//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/x/providers/y' })
      ).json(),
    ).toMatchObject({
      error: 'invalid_target',
    });
    const good = await form({});
    expect(good.status).toBe(200);
    const sts = (await good.json()) as { access_token: string; token_type: string; expires_in: number };
    expect(sts).toMatchObject({
      token_type: 'Bearer',
      expires_in: 3600,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    });

    const impersonate = (email: string) =>
      fetch(`${fake.url}/iamcredentials/v1/projects/-/serviceAccounts/${email}:generateAccessToken`, {
        method: 'POST',
        headers: { authorization: `Bearer ${sts.access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ scope: [CLOUD_PLATFORM], lifetime: '3600s' }),
      });
    const denied = await impersonate(GCE_SERVICE_ACCOUNTS.runner);
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({
      error: {
        code: 403,
        status: 'PERMISSION_DENIED',
        message: "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
      },
    });
    const deployer = await impersonate(GCE_SERVICE_ACCOUNTS.deployer);
    expect(deployer.status).toBe(200);
    expect(await deployer.json()).toMatchObject({
      accessToken: expect.stringMatching(/^ya29\./),
      expireTime: expect.stringMatching(/Z$/),
    });

    // The federated token itself has no Compute permission.
    const direct = await fetch(`${fake.url}/compute/v1/projects/${GCE_PROJECT}/zones/${ZONE}/instances`, {
      headers: { authorization: `Bearer ${sts.access_token}` },
    });
    expect(direct.status).toBe(403);

    // The real client with a GitHub token the fake never issued fails before reaching Compute.
    fs.writeFileSync(path.join(dir, 'github-oidc-token'), forged);
    const c = clients(federated());
    const err = await errorOf(c.images.getFromFamily({ project: 'ubuntu-os-cloud', family: 'ubuntu-2404-lts-amd64' }));
    expect(err.message).toMatch(/invalid_grant/);
    expect(fake.calls.filter((x) => x.action.startsWith('images.'))).toEqual([]);
    await expectClean(c);
  });
});

describe('instances', () => {
  test('insert + wait gives a RUNNING VM whose startup script runs; delete removes it and its disk', async () => {
    const c = clients();
    const [lro] = await c.instances.insert({
      project: GCE_PROJECT,
      zone: ZONE,
      requestId: '5b6c0f3e-0d7f-4d1e-9a43-1f0f4c6b8e21',
      instanceResource: vm('cml-runner-1', {}, 'echo "hello from $(hostname) on $SANDBOX_CLOUD"'),
    });
    const first = lro.latestResponse as {
      kind?: string;
      name?: string;
      status?: string;
      operationType?: string;
      targetLink?: string;
    };
    expect(first).toMatchObject({ kind: 'compute#operation', operationType: 'insert', status: 'PENDING' });
    expect(first.name).toMatch(/^operation-\d{13}-[0-9a-f]+/);
    expect(first.targetLink).toBe(
      `https://www.googleapis.com/compute/v1/projects/${GCE_PROJECT}/zones/${ZONE}/instances/cml-runner-1`,
    );
    const done = await waitOp(c, first);
    expect(done).toMatchObject({ status: 'DONE', progress: 100, user: GCE_SERVICE_ACCOUNTS.deployer });
    expect(done.error).toBeFalsy();

    const [got] = await c.instances.get({ project: GCE_PROJECT, zone: ZONE, instance: 'cml-runner-1' });
    expect(got).toMatchObject({
      name: 'cml-runner-1',
      status: 'RUNNING',
      labels: { 'cml-runner': 'true', pool: 'cpu' },
    });
    expect(got.machineType).toMatch(/\/zones\/us-central1-a\/machineTypes\/e2-standard-2$/);
    expect(got.disks?.[0]).toMatchObject({ boot: true, autoDelete: true, diskSizeGb: '20' });
    expect(got.networkInterfaces?.[0]?.accessConfigs?.[0]?.natIP).toMatch(/^34\./);

    const inst = fake.instance(ZONE, 'cml-runner-1')!;
    expect(inst).toMatchObject({
      status: 'RUNNING',
      machineType: 'e2-standard-2',
      deleted: false,
      labels: { pool: 'cpu' },
    });
    await waitFor(() => inst.console().includes('startup script exited with status 0'), 10_000, 'the startup script');
    const [serial] = await c.instances.getSerialPortOutput({
      project: GCE_PROJECT,
      zone: ZONE,
      instance: 'cml-runner-1',
      port: 1,
    });
    expect(serial.contents).toContain('google_metadata_script_runner');
    expect(serial.contents).toContain('hello from');
    expect(serial.contents).toContain('on gcp');
    expect(Number(serial.next)).toBe(Buffer.byteLength(serial.contents!));
    const [tail] = await c.instances.getSerialPortOutput({
      project: GCE_PROJECT,
      zone: ZONE,
      instance: 'cml-runner-1',
      port: 1,
      start: serial.next,
    });
    expect(tail.contents).toBe('');

    const [del] = await c.instances.delete({ project: GCE_PROJECT, zone: ZONE, instance: 'cml-runner-1' });
    expect(await waitOp(c, del.latestResponse as { name?: string })).toMatchObject({
      status: 'DONE',
      operationType: 'delete',
    });
    const gone = await errorOf(c.instances.get({ project: GCE_PROJECT, zone: ZONE, instance: 'cml-runner-1' }));
    expect(gone.code).toBe(5);
    expect(gone.message).toBe(
      `The resource 'projects/${GCE_PROJECT}/zones/${ZONE}/instances/cml-runner-1' was not found`,
    );
    expect(rawBody(gone).error.errors[0]!.reason).toBe('notFound');
    expect(inst).toMatchObject({ deleted: true, endedReason: 'deleted' });
    expect(inst.disks[0]).toMatchObject({ state: 'deleted', autoDelete: true });
    const again = await errorOf(c.instances.delete({ project: GCE_PROJECT, zone: ZONE, instance: 'cml-runner-1' }));
    expect(again.code).toBe(5);
    await expectClean(c);
  });

  test('strict validation: a GPU without TERMINATE, a bad name, no boot image, a bad label, an unknown image; nothing is created', async () => {
    const c = clients();
    const t4 = { acceleratorType: `zones/${ZONE}/acceleratorTypes/nvidia-tesla-t4`, acceleratorCount: 1 };
    const cases: Array<[Instance, number, RegExp]> = [
      [
        vm('cml-gpu-1', { machineType: `zones/${ZONE}/machineTypes/n1-standard-4`, guestAccelerators: [t4] }),
        3,
        /^Instances with guest accelerators do not support live migration\.$/,
      ],
      [
        vm('cml-Bad_Name'),
        3,
        /^Invalid value for field 'resource\.name': 'cml-Bad_Name'\. Must be a match of regex '\(\?:\[a-z\]\(\?:\[-a-z0-9\]\{0,61\}\[a-z0-9\]\)\?\)'$/,
      ],
      [
        vm('cml-no-image', { disks: [{ boot: true, autoDelete: true, initializeParams: { diskSizeGb: 20 } }] }),
        3,
        /sourceImage/,
      ],
      [vm('cml-bad-label', { labels: { Pool: 'cpu' } }), 3, /Label key 'Pool' violates format constraints/],
      [
        vm('cml-bad-tag', { tags: { items: ['Runner'] } }),
        3,
        /^Invalid value for field 'resource\.tags\.items\[0\]': 'Runner'\. Must be a match of regex/,
      ],
      [
        vm('cml-small-disk', {
          disks: [{ boot: true, autoDelete: true, initializeParams: { sourceImage: DLVM, diskSizeGb: 20 } }],
        }),
        3,
        /cannot be smaller than the image size \(50 GB\)/,
      ],
      [
        vm('cml-e2-gpu', { guestAccelerators: [t4], scheduling: { onHostMaintenance: 'TERMINATE' } }),
        3,
        /\[e2-standard-2, nvidia-tesla-t4\] features are not compatible/,
      ],
      [
        vm('cml-no-gpu-here', {
          machineType: 'zones/europe-north1-a/machineTypes/g2-standard-4',
          scheduling: { onHostMaintenance: 'TERMINATE' },
        }),
        3,
        /different scope/,
      ],
      [vm('cml-short-type', { machineType: 'e2-standard-2' }), 3, /Must be a URL to a valid Compute resource/],
      [
        vm('cml-spot-restart', { scheduling: { provisioningModel: 'SPOT', automaticRestart: true } }),
        3,
        /preemptible be false when AutomaticRestart is true/,
      ],
      [
        vm('cml-max-run', { scheduling: { maxRunDuration: { seconds: 600 } } }),
        3,
        /Instance termination action must be specified/,
      ],
      [
        vm('cml-no-image-2', {
          disks: [
            {
              boot: true,
              initializeParams: { sourceImage: 'projects/ubuntu-os-cloud/global/images/family/ubuntu-9999' },
            },
          ],
        }),
        5,
        /'projects\/ubuntu-os-cloud\/global\/images\/family\/ubuntu-9999' was not found/,
      ],
      [
        vm('cml-no-sa', {
          serviceAccounts: [{ email: 'nobody@sandbox-project.iam.gserviceaccount.com', scopes: [CLOUD_PLATFORM] }],
        }),
        3,
        /serviceAccounts\/nobody@/,
      ],
    ];
    for (const [instance, code, message] of cases) {
      const err = await errorOf(c.instances.insert({ project: GCE_PROJECT, zone: ZONE, instanceResource: instance }));
      expect({ name: instance.name, code: err.code, message: err.message }).toEqual({
        name: instance.name,
        code,
        message: expect.stringMatching(message),
      });
    }
    const gpuErr = await errorOf(
      c.instances.insert({ project: GCE_PROJECT, zone: ZONE, instanceResource: cases[0]![0] }),
    );
    expect(rawBody(gpuErr).error).toMatchObject({ code: 400, errors: [{ reason: 'invalid', domain: 'global' }] });
    // Unknown zone, unknown project.
    expect(
      (
        await errorOf(
          c.instances.insert({ project: GCE_PROJECT, zone: 'mars-north1-a', instanceResource: vm('cml-x') }),
        )
      ).message,
    ).toBe(`The resource 'projects/${GCE_PROJECT}/zones/mars-north1-a' was not found`);
    expect((await errorOf(c.instances.get({ project: 'other-project', zone: ZONE, instance: 'cml-x' }))).code).toBe(5);
    expect(fake.instances()).toEqual([]);

    // A GPU VM that does it right: N1 + T4 + TERMINATE; the same name again is 409.
    const ok = vm('cml-gpu-1', {
      machineType: `zones/${ZONE}/machineTypes/n1-standard-4`,
      guestAccelerators: [t4],
      scheduling: { onHostMaintenance: 'TERMINATE' },
    });
    expect((await launch(c, ok)).error).toBeFalsy();
    expect(fake.instance(ZONE, 'cml-gpu-1')).toMatchObject({
      guestAccelerators: [{ type: 'nvidia-tesla-t4', count: 1 }],
      gpus: { model: 'Tesla T4', count: 1 },
    });
    const dup = await errorOf(c.instances.insert({ project: GCE_PROJECT, zone: ZONE, instanceResource: ok }));
    expect(dup.message).toBe(`The resource 'projects/${GCE_PROJECT}/zones/${ZONE}/instances/cml-gpu-1' already exists`);
    expect(rawBody(dup).error.errors[0]!.reason).toBe('alreadyExists');
    await expectClean(c);
  });

  test('a requestId makes insert idempotent: the same id answers the original operation', async () => {
    const c = clients();
    const requestId = '0f8fad5b-d9cb-469f-a165-70867728950e';
    const [a] = await c.instances.insert({
      project: GCE_PROJECT,
      zone: ZONE,
      requestId,
      instanceResource: vm('cml-idem-1'),
    });
    const [b] = await c.instances.insert({
      project: GCE_PROJECT,
      zone: ZONE,
      requestId,
      instanceResource: vm('cml-idem-1'),
    });
    expect((b.latestResponse as { name: string }).name).toBe((a.latestResponse as { name: string }).name);
    expect(fake.instances()).toHaveLength(1);
    expect(fake.instances()[0]!.requestId).toBe(requestId);
    const bad = await errorOf(
      c.instances.insert({
        project: GCE_PROJECT,
        zone: ZONE,
        requestId: 'not-a-uuid',
        instanceResource: vm('cml-idem-2'),
      }),
    );
    expect(bad.code).toBe(3);
    await waitOp(c, a.latestResponse as { name: string });
    await expectClean(c);
  });

  test('faults: ZONE_RESOURCE_POOL_EXHAUSTED fails the operation; QUOTA_EXCEEDED is a 403 naming the quota; a 503 is retried by the client', async () => {
    const c = clients();
    faults.add({ service: 'gce', action: 'instances.insert .*', code: 'ZONE_RESOURCE_POOL_EXHAUSTED' });
    const op = await launch(c, vm('cml-stockout'));
    expect(op).toMatchObject({ status: 'DONE', httpErrorStatusCode: 503, httpErrorMessage: 'SERVICE UNAVAILABLE' });
    expect(op.error?.errors?.[0]).toMatchObject({
      code: 'ZONE_RESOURCE_POOL_EXHAUSTED',
      message: `The zone 'projects/${GCE_PROJECT}/zones/${ZONE}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.`,
    });
    expect(fake.instances()).toEqual([]);
    const gone = await errorOf(c.instances.get({ project: GCE_PROJECT, zone: ZONE, instance: 'cml-stockout' }));
    expect(gone.code).toBe(5);

    faults.add({ service: 'gce', action: 'instances.insert us-central1-a', code: 'QUOTA_EXCEEDED' });
    const t4 = vm('cml-quota', {
      machineType: `zones/${ZONE}/machineTypes/n1-standard-4`,
      guestAccelerators: [{ acceleratorType: `zones/${ZONE}/acceleratorTypes/nvidia-tesla-t4`, acceleratorCount: 1 }],
      scheduling: { provisioningModel: 'SPOT', instanceTerminationAction: 'DELETE' },
    });
    const quota = await errorOf(c.instances.insert({ project: GCE_PROJECT, zone: ZONE, instanceResource: t4 }));
    expect(quota).toMatchObject({
      code: 7,
      httpStatusCode: 403,
      reason: 'QUOTA_EXCEEDED',
      message: "Quota 'PREEMPTIBLE_NVIDIA_T4_GPUS' exceeded.  Limit: 0.0 in region us-central1.",
    });
    expect(quota.errorInfoMetadata).toMatchObject({
      quota_metric: 'compute.googleapis.com/preemptible_nvidia_t4_gpus',
      quota_limit_value: '0',
      region: 'us-central1',
    });
    expect(rawBody(quota).error.errors[0]!.reason).toBe('quotaExceeded');
    expect(fake.instances()).toEqual([]);

    // Then it works; a transient 503 on get is retried by the client (get is idempotent).
    expect((await launch(c, vm('cml-after-faults'))).error).toBeFalsy();
    faults.add({ service: 'gce', action: 'instances.get .*', code: 'backendError' });
    const [got] = await c.instances.get({ project: GCE_PROJECT, zone: ZONE, instance: 'cml-after-faults' });
    expect(got.status).toBe('RUNNING');
    expect(fake.calls.filter((x) => x.action === `instances.get ${ZONE}`).map((x) => [x.status, x.reason])).toEqual([
      [404, 'notFound'],
      [503, 'backendError'],
      [200, undefined],
    ]);
    await expectClean(c);
  });

  test('a fault with `where` answers only the matching insert (machineType, zone, spot), and the call log keeps the params', async () => {
    const c = clients();
    faults.add({
      service: 'gce',
      action: 'instances.insert .*',
      where: { machineType: 'e2-standard-4', zone: ZONE, spot: 'true' },
      code: 'QUOTA_EXCEEDED',
    });
    // On demand, and Spot of another type: not matched, both launch.
    expect(
      (await launch(c, vm('cml-on-demand', { machineType: `zones/${ZONE}/machineTypes/e2-standard-4` }))).error,
    ).toBeFalsy();
    expect(
      (
        await launch(
          c,
          vm('cml-spot-small', { scheduling: { provisioningModel: 'SPOT', instanceTerminationAction: 'DELETE' } }),
        )
      ).error,
    ).toBeFalsy();
    expect(faults.unfired()).toHaveLength(1);
    const spot = vm('cml-spot-big', {
      machineType: `zones/${ZONE}/machineTypes/e2-standard-4`,
      scheduling: { provisioningModel: 'SPOT', instanceTerminationAction: 'DELETE' },
    });
    const err = await errorOf(c.instances.insert({ project: GCE_PROJECT, zone: ZONE, instanceResource: spot }));
    expect(err).toMatchObject({
      code: 7,
      httpStatusCode: 403,
      message: "Quota 'PREEMPTIBLE_CPUS' exceeded.  Limit: 0.0 in region us-central1.",
    });
    expect(faults.unfired()).toEqual([]);
    expect(faults.fired).toEqual([
      {
        service: 'gce',
        action: `instances.insert ${ZONE}`,
        code: 'QUOTA_EXCEEDED',
        params: { zone: ZONE, name: 'cml-spot-big', machineType: 'e2-standard-4', spot: 'true' },
      },
    ]);
    const inserts = fake.calls.filter((x) => x.action === `instances.insert ${ZONE}`);
    expect(inserts.map((x) => [x.status, x.reason, x.params])).toEqual([
      [200, undefined, { zone: ZONE, name: 'cml-on-demand', machineType: 'e2-standard-4', spot: 'false' }],
      [200, undefined, { zone: ZONE, name: 'cml-spot-small', machineType: 'e2-standard-2', spot: 'true' }],
      [403, 'quotaExceeded', { zone: ZONE, name: 'cml-spot-big', machineType: 'e2-standard-4', spot: 'true' }],
    ]);
    expect(fake.instances().map((i) => i.name)).toEqual(['cml-on-demand', 'cml-spot-small']);
    await expectClean(c);
  });

  test('an unauthenticated or unauthorised request is refused even when a fault is armed; the fault waits for one that is not', async () => {
    const config = JSON.parse(fs.readFileSync(credFile, 'utf8'));
    const subject = fs.readFileSync(path.join(dir, 'github-oidc-token'), 'utf8');
    const exchange = (subjectToken: string) =>
      fetch(config.token_url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          audience: config.audience,
          scope: CLOUD_PLATFORM,
          requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
          subject_token: subjectToken,
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        }),
      });
    const federatedToken = ((await (await exchange(subject)).json()) as { access_token: string }).access_token;
    const deployerToken = (
      (await (
        await fetch(
          `${fake.url}/iamcredentials/v1/projects/-/serviceAccounts/${GCE_SERVICE_ACCOUNTS.deployer}:generateAccessToken`,
          {
            method: 'POST',
            headers: { authorization: `Bearer ${federatedToken}`, 'content-type': 'application/json' },
            body: JSON.stringify({ scope: [CLOUD_PLATFORM] }),
          },
        )
      ).json()) as { accessToken: string }
    ).accessToken;

    faults.add({ service: 'gce', action: 'instances.list .*', code: 'backendError' });
    faults.add({ service: 'gce', action: 'sts.token global', code: 'temporarily_unavailable' });
    const list = `${fake.url}/compute/v1/projects/${GCE_PROJECT}/zones/${ZONE}/instances`;
    const as = (token?: string) => fetch(list, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    const none = await as();
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({
      error: { code: 401, status: 'UNAUTHENTICATED', errors: [{ reason: 'required' }] },
    });
    expect((await as('ya29.nope')).status).toBe(401);
    // The federated token is authenticated, but holds no Compute permission.
    const denied = await as(federatedToken);
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ error: { errors: [{ reason: 'forbidden' }] } });
    // STS refuses a GitHub token it did not issue before any fault.
    const forged = await exchange(`${subject.split('.').slice(0, 2).join('.')}.c2lnbmF0dXJl`);
    expect(forged.status).toBe(400);
    expect(await forged.json()).toMatchObject({ error: 'invalid_grant' });
    expect(faults.fired).toEqual([]);
    expect(faults.unfired()).toHaveLength(2);

    // The same requests, authenticated and allowed, meet the faults.
    const unavailable = await exchange(subject);
    expect(unavailable.status).toBe(503);
    expect(await unavailable.json()).toMatchObject({ error: 'temporarily_unavailable' });
    const busy = await as(deployerToken);
    expect(busy.status).toBe(503);
    expect(await busy.json()).toMatchObject({ error: { code: 503, errors: [{ reason: 'backendError' }] } });
    expect(faults.unfired()).toEqual([]);
    expect(fake.calls.slice(2).map((x) => [x.action, x.status, x.reason ?? null, x.identity ?? null])).toEqual([
      [`instances.list ${ZONE}`, 401, 'required', null],
      [`instances.list ${ZONE}`, 401, 'authError', null],
      [`instances.list ${ZONE}`, 403, 'forbidden', expect.stringMatching(/^principal:\/\//)],
      ['sts.token global', 400, 'invalid_grant', null],
      ['sts.token global', 503, 'temporarily_unavailable', null],
      [`instances.list ${ZONE}`, 503, 'backendError', GCE_SERVICE_ACCOUNTS.deployer],
    ]);
    await expectClean();
  });

  test('maxRunDuration with DELETE deletes the VM and kills its machine', async () => {
    const c = clients();
    const op = await launch(
      c,
      vm(
        'cml-short-lived',
        { scheduling: { maxRunDuration: { seconds: 30 }, instanceTerminationAction: 'DELETE' } },
        'sleep 600',
      ),
    );
    expect(op.error).toBeFalsy();
    const inst = fake.instance(ZONE, 'cml-short-lived')!;
    expect(inst.maxRunDurationSeconds).toBe(30);
    await waitFor(() => inst.deleted, 30 * SECOND_MS + 5000, 'deletion by maxRunDuration');
    expect(inst.endedReason).toBe('maxRunDuration');
    expect(inst.machine?.running).toBe(false);
    await expectClean(c);
  });

  test('a guest shutdown leaves the VM TERMINATED, which is left over until deleted', async () => {
    const c = clients();
    await launch(c, vm('cml-self-stop', {}, 'echo stopping; shutdown -h now'));
    const inst = fake.instance(ZONE, 'cml-self-stop')!;
    await waitFor(() => inst.status === 'TERMINATED', 10_000, 'TERMINATED');
    expect(inst.endedReason).toBe('guest shutdown');
    expect(fake.leftovers()).toEqual([
      expect.stringMatching(/^GCE instance cml-self-stop .* is TERMINATED \(stopped: its disks are still billed\)/),
    ]);
    const [got] = await c.instances.get({ project: GCE_PROJECT, zone: ZONE, instance: 'cml-self-stop' });
    expect(got.status).toBe('TERMINATED');
    await expectClean(c);
    expect(inst.deleted).toBe(true);
  });

  test('a disk without autoDelete outlives its VM and is left over', async () => {
    const c = clients();
    await launch(c, vm('cml-keeps-disk', { disks: [{ boot: true, initializeParams: { sourceImage: UBUNTU } }] }));
    const [del] = await c.instances.delete({ project: GCE_PROJECT, zone: ZONE, instance: 'cml-keeps-disk' });
    await waitOp(c, del.latestResponse as { name: string });
    expect(fake.leftovers()).toEqual([
      `GCE disk cml-keeps-disk (10 GB pd-standard, ${ZONE}) was left after instance cml-keeps-disk was deleted: autoDelete was false`,
    ]);
    // The orphaned disk's name blocks a new VM of the same name.
    const err = await errorOf(
      c.instances.insert({ project: GCE_PROJECT, zone: ZONE, instanceResource: vm('cml-keeps-disk') }),
    );
    expect(err.message).toBe(
      `The resource 'projects/${GCE_PROJECT}/zones/${ZONE}/disks/cml-keeps-disk' already exists`,
    );
    // The disk stays (there is no disks API in the sandbox): the sandbox says so.
    fake.disks()[0]!.state = 'deleted';
    await expectClean(c);
  });
});

describe('inside the VM', () => {
  const selfDelete = `
md="http://$GCE_METADATA_HOST/computeMetadata/v1"
name=$(curl -sf -H 'Metadata-Flavor: Google' "$md/instance/name")
zone=$(curl -sf -H 'Metadata-Flavor: Google' "$md/instance/zone"); zone=\${zone##*/}
project=$(curl -sf -H 'Metadata-Flavor: Google' "$md/project/project-id")
echo "whoami: $(curl -sf -H 'Metadata-Flavor: Google' "$md/instance/service-accounts/default/email")"
echo "no-header: $(curl -s -o /dev/null -w '%{http_code}' "$md/instance/name")"
token=$(curl -sf -H 'Metadata-Flavor: Google' "$md/instance/service-accounts/default/token" | sed -E 's/.*"access_token":"([^"]+)".*/\\1/')
code=$(curl -s -o /tmp/delete.json -w '%{http_code}' -X DELETE -H "Authorization: Bearer $token" "$COMPUTE/projects/$project/zones/$zone/instances/$name")
echo "delete: $code $(tr -d '\\n' </tmp/delete.json | head -c 400)"
`;

  test('with the runner service account, the VM fetches a token from its metadata server and deletes itself', async () => {
    const c = clients();
    const script = `COMPUTE=${fake.url}/compute/v1\n${selfDelete}\nsleep 600`;
    await launch(
      c,
      vm(
        'cml-self-delete',
        { serviceAccounts: [{ email: GCE_SERVICE_ACCOUNTS.runner, scopes: [CLOUD_PLATFORM] }] },
        script,
      ),
    );
    const inst = fake.instance(ZONE, 'cml-self-delete')!;
    await waitFor(() => inst.deleted, 15_000, 'self-deletion');
    const out = inst.console();
    expect(out).toContain(`whoami: ${GCE_SERVICE_ACCOUNTS.runner}`);
    expect(out).toContain('no-header: 403');
    // The delete powers the VM off at once: the script is gone before it can print the answer.
    expect(fake.calls.find((x) => x.action === `instances.delete ${ZONE}`)).toMatchObject({
      status: 200,
      identity: GCE_SERVICE_ACCOUNTS.runner,
    });
    await expectClean(c);
  });

  test('an insert as an account the caller may not act as is 400 badRequest, before anything exists', async () => {
    const c = clients();
    const insert = (email: string) =>
      c.instances.insert({
        project: GCE_PROJECT,
        zone: ZONE,
        instanceResource: vm('cml-act-as', { serviceAccounts: [{ email, scopes: [CLOUD_PLATFORM] }] }),
      });
    // The deployer's binding (service-account-user.yaml) is on runner@ alone; `default` is the default account.
    for (const [email, named] of [
      [GCE_SERVICE_ACCOUNTS.runnerNoDelete, GCE_SERVICE_ACCOUNTS.runnerNoDelete],
      ['default', GCE_SERVICE_ACCOUNTS.defaultCompute],
    ]) {
      const err = await errorOf(insert(email!));
      expect({ code: err.code, message: err.message }).toEqual({
        code: 3,
        message:
          `The user does not have access to service account '${named}'. User: '${GCE_SERVICE_ACCOUNTS.deployer}'. ` +
          'Ask a project owner to grant you the iam.serviceAccountUser role on the service account',
      });
    }
    const refused = fake.calls.filter((x) => x.action === `instances.insert ${ZONE}`);
    expect(refused.map((x) => [x.status, x.reason])).toEqual([
      [400, 'badRequest'],
      [400, 'badRequest'],
    ]);
    // Without its binding the deployer may not act as runner@ either.
    fake.configure({ deployerLacks: ['iam.serviceAccounts.actAs'] });
    expect((await errorOf(insert(GCE_SERVICE_ACCOUNTS.runner))).message).toContain(
      `service account '${GCE_SERVICE_ACCOUNTS.runner}'`,
    );
    expect(fake.instances()).toEqual([]);
    fake.configure({ deployerLacks: [] });
    await launch(
      c,
      vm('cml-act-as', { serviceAccounts: [{ email: GCE_SERVICE_ACCOUNTS.runner, scopes: [CLOUD_PLATFORM] }] }),
    );
    await expectClean(c);
  });

  test('with runner-nodelete the delete is 403, and the metadata server follows the protocol', async () => {
    // The launcher was also granted roles/iam.serviceAccountUser on runner-nodelete@.
    fake.configure({ deployerActsAs: [GCE_SERVICE_ACCOUNTS.runnerNoDelete] });
    const c = clients();
    const script = `COMPUTE=${fake.url}/compute/v1\n${selfDelete}\necho done-trying`;
    await launch(
      c,
      vm(
        'cml-cannot-delete',
        { serviceAccounts: [{ email: GCE_SERVICE_ACCOUNTS.runnerNoDelete, scopes: [CLOUD_PLATFORM] }] },
        script,
      ),
    );
    const inst = fake.instance(ZONE, 'cml-cannot-delete')!;
    await waitFor(() => inst.console().includes('done-trying'), 15_000, 'the script');
    expect(inst.console()).toContain(
      `delete: 403 {"error":{"code":403,"message":"Required 'compute.instances.delete' permission for 'projects/${GCE_PROJECT}/zones/${ZONE}/instances/cml-cannot-delete'"`,
    );
    expect(inst.deleted).toBe(false);

    // The metadata server, from outside: header required, listings, values, token, 404s.
    const md = `${fake.url}/_gce_md/${inst.id}/computeMetadata/v1`;
    const get = (p: string, headers: Record<string, string> = { 'Metadata-Flavor': 'Google' }) =>
      fetch(`${md}/${p}`, { headers, redirect: 'manual' });
    expect((await get('instance/id', {})).status).toBe(403);
    expect((await get('instance/id', { 'Metadata-Flavor': 'Google', 'X-Forwarded-For': '1.2.3.4' })).status).toBe(403);
    const id = await get('instance/id');
    expect(id.headers.get('metadata-flavor')).toBe('Google');
    expect(await id.text()).toBe(inst.id);
    expect(await (await get('instance/zone')).text()).toBe(`projects/123456789012/zones/${ZONE}`);
    expect(await (await get('project/numeric-project-id')).text()).toBe('123456789012');
    expect(await (await get('instance/attributes/')).text()).toBe('startup-script\n');
    expect(await (await get('instance/attributes/startup-script')).text()).toContain('done-trying');
    expect((await get('instance/attributes')).status).toBe(301);
    expect(await (await get('instance/scheduling/provisioning-model')).text()).toBe('STANDARD');
    expect(await (await get('instance/service-accounts/default/token')).json()).toMatchObject({
      token_type: 'Bearer',
      expires_in: 3599,
    });
    expect((await get('instance/nope')).status).toBe(404);
    await expectClean(c);
    // A deleted VM's metadata server does not answer.
    await expect(get('instance/id')).rejects.toThrow();
  });

  test('a VM without a service account has no token; a token without a Compute scope is refused', async () => {
    const c = clients();
    await launch(c, vm('cml-no-sa', {}, 'true'));
    await launch(
      c,
      vm(
        'cml-no-scope',
        {
          serviceAccounts: [
            { email: GCE_SERVICE_ACCOUNTS.runner, scopes: ['https://www.googleapis.com/auth/devstorage.read_only'] },
          ],
        },
        'true',
      ),
    );
    const mdOf = (name: string) => `${fake.url}/_gce_md/${fake.instance(ZONE, name)!.id}/computeMetadata/v1`;
    const headers = { 'Metadata-Flavor': 'Google' };
    expect((await fetch(`${mdOf('cml-no-sa')}/instance/service-accounts/default/token`, { headers })).status).toBe(404);
    const tok = (await (
      await fetch(`${mdOf('cml-no-scope')}/instance/service-accounts/default/token`, { headers })
    ).json()) as { access_token: string };
    const res = await fetch(`${fake.url}/compute/v1/projects/${GCE_PROJECT}/zones/${ZONE}/instances/cml-no-scope`, {
      headers: { authorization: `Bearer ${tok.access_token}` },
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({
      error: {
        message: 'Request had insufficient authentication scopes.',
        errors: [{ reason: 'insufficientPermissions' }],
      },
    });
    await expectClean(c);
  });

  test('nvidia-smi on a g2 VM booted from the Deep Learning VM image reports an NVIDIA L4', async () => {
    const c = clients();
    await launch(
      c,
      vm(
        'cml-gpu-l4',
        {
          machineType: `zones/${ZONE}/machineTypes/g2-standard-4`,
          disks: [
            {
              boot: true,
              autoDelete: true,
              initializeParams: { sourceImage: DLVM, diskSizeGb: 60, diskType: `zones/${ZONE}/diskTypes/pd-balanced` },
            },
          ],
          scheduling: {
            onHostMaintenance: 'TERMINATE',
            provisioningModel: 'SPOT',
            instanceTerminationAction: 'DELETE',
          },
        },
        'nvidia-smi -L; echo smi-done',
      ),
    );
    const inst = fake.instance(ZONE, 'cml-gpu-l4')!;
    await waitFor(() => inst.console().includes('smi-done'), 10_000, 'nvidia-smi');
    expect(inst.console()).toMatch(/GPU 0: NVIDIA L4 \(UUID/);
    expect(inst).toMatchObject({
      gpus: { type: 'nvidia-l4', count: 1, model: 'NVIDIA L4' },
      provisioningModel: 'SPOT',
      disks: [{ type: 'pd-balanced', sizeGb: 60 }],
    });

    // Spot preemption applies instanceTerminationAction: DELETE.
    await fake.preempt(ZONE, 'cml-gpu-l4');
    expect(inst).toMatchObject({ deleted: true, endedReason: 'preempted', preempted: true });
    await expectClean(c);
  });
});

describe('listing and catalogue', () => {
  test('aggregatedList filters on labels and names, with NO_RESULTS_ON_PAGE for empty zones', async () => {
    const c = clients();
    await launch(c, vm('cml-pool-a-1', { labels: { 'cml-runner': 'true', pool: 'a' } }));
    await launch(
      c,
      vm('cml-pool-b-1', {
        labels: { 'cml-runner': 'true', pool: 'b' },
        machineType: 'zones/europe-west4-b/machineTypes/e2-standard-2',
      }),
      'europe-west4-b',
    );
    const seen: Record<string, string[]> = {};
    let warnings = 0;
    for await (const [scope, list] of c.instances.aggregatedListAsync({
      project: GCE_PROJECT,
      filter: 'labels.pool = "b"',
    })) {
      if (list.warning?.code === 'NO_RESULTS_ON_PAGE') warnings++;
      if (list.instances && list.instances.length > 0) seen[scope] = list.instances.map((i) => i.name!);
    }
    expect(seen).toEqual({ 'zones/europe-west4-b': ['cml-pool-b-1'] });
    expect(warnings).toBeGreaterThan(10);
    const both: string[] = [];
    for await (const [, list] of c.instances.aggregatedListAsync({
      project: GCE_PROJECT,
      filter: '(labels.cml-runner = "true") (name = cml-pool-a-1)',
    })) {
      both.push(...(list.instances ?? []).map((i) => i.name!));
    }
    expect(both).toEqual(['cml-pool-a-1']);
    const [zoned] = await c.instances.list({
      project: GCE_PROJECT,
      zone: ZONE,
      filter: 'labels.pool = "a" AND name = "cml-pool-a-1"',
    });
    expect(zoned.map((i) => i.name)).toEqual(['cml-pool-a-1']);
    const bad = await errorOf(c.instances.list({ project: GCE_PROJECT, zone: ZONE, filter: 'labels.pool = = a' }));
    expect(bad).toMatchObject({
      code: 3,
      message: "Invalid value for field 'filter': 'labels.pool = = a'. Invalid list filter expression.",
    });
    await expectClean(c);
  });

  test('machine types, accelerator types and images', async () => {
    // machineTypes.get and acceleratorTypes.get are not the launcher's (it lists them).
    const c = clients(owner());
    const zones: Record<string, string[]> = {};
    for await (const [scope, list] of c.machineTypes.aggregatedListAsync({
      project: GCE_PROJECT,
      filter: '(name = "g2-standard-4") OR (name = "a3-highgpu-8g")',
    })) {
      for (const m of list.machineTypes ?? []) {
        zones[m.name!] ??= [];
        zones[m.name!].push(scope.replace('zones/', ''));
      }
    }
    expect(zones['g2-standard-4']).toContain('us-central1-a');
    expect(zones['g2-standard-4']).not.toContain('europe-north1-a');
    expect(zones['a3-highgpu-8g']).toEqual(
      expect.arrayContaining([
        'us-central1-a',
        'us-central1-c',
        'us-east1-d',
        'europe-west4-b',
        'europe-west4-c',
        'europe-west1-b',
      ]),
    );
    const [g2] = await c.machineTypes.get({ project: GCE_PROJECT, zone: ZONE, machineType: 'g2-standard-24' });
    expect(g2).toMatchObject({
      guestCpus: 24,
      accelerators: [{ guestAcceleratorType: 'nvidia-l4', guestAcceleratorCount: 2 }],
    });

    const t4Zones: string[] = [];
    for await (const [scope, list] of c.accelerators.aggregatedListAsync({
      project: GCE_PROJECT,
      filter: 'name = "nvidia-tesla-t4"',
    })) {
      if (list.acceleratorTypes?.length) t4Zones.push(scope);
    }
    expect(t4Zones).toContain('zones/us-central1-f');
    expect(t4Zones.some((z) => z.includes('europe-north1'))).toBe(false);
    const [t4] = await c.accelerators.get({ project: GCE_PROJECT, zone: ZONE, acceleratorType: 'nvidia-tesla-t4' });
    expect(t4).toMatchObject({ maximumCardsPerInstance: 4, description: 'NVIDIA T4' });
    expect(
      (
        await errorOf(
          c.accelerators.get({ project: GCE_PROJECT, zone: 'europe-north1-a', acceleratorType: 'nvidia-tesla-t4' }),
        )
      ).code,
    ).toBe(5);

    const [dl] = await c.images.getFromFamily({
      project: 'deeplearning-platform-release',
      family: 'common-cu128-ubuntu-2204-nvidia-570',
    });
    expect(dl).toMatchObject({
      diskSizeGb: '50',
      architecture: 'X86_64',
      status: 'READY',
      family: 'common-cu128-ubuntu-2204-nvidia-570',
    });
    const [custom] = await c.images.get({ project: GCE_PROJECT, image: 'custom-runner' });
    expect(custom.diskSizeGb).toBe('20');
    expect((await errorOf(c.images.getFromFamily({ project: 'ubuntu-os-cloud', family: 'nope' }))).code).toBe(5);
    await expectClean(c);
  });
});

describe('networks, markets and metadata', () => {
  const nic = (over: Record<string, unknown>) => ({ networkInterfaces: [over] }) as Partial<Instance>;

  test('networks: no default network, a subnetwork of another region, a custom network without one, an org policy', async () => {
    const c = clients();
    const refusal = async (instance: Instance) => {
      const err = await errorOf(launch(c, instance));
      return { status: err.httpStatusCode ?? rawBody(err).error.code, message: rawBody(err).error.message };
    };
    fake.configure({ noDefaultNetwork: true });
    expect(await refusal(vm('cml-no-default'))).toEqual({
      status: 400,
      message:
        "Invalid value for field 'resource.networkInterfaces[0].network': 'global/networks/default'. " +
        'The referenced network resource cannot be found.',
    });
    fake.configure({ noDefaultNetwork: false });
    const elsewhere = 'regions/europe-west4/subnetworks/ci-europe-west4';
    expect(await refusal(vm('cml-other-region', nic({ subnetwork: elsewhere })))).toEqual({
      status: 400,
      message: `Invalid value for field 'resource.networkInterfaces[0].subnetwork': '${elsewhere}'. The referenced subnetwork resource cannot be found.`,
    });
    expect(await refusal(vm('cml-custom-mode', nic({ network: 'global/networks/ci-vpc' })))).toEqual({
      status: 400,
      message:
        "Invalid value for field 'resource.networkInterfaces[0]': ''. Subnetwork should be specified for custom subnetmode network",
    });
    fake.configure({ denyExternalIp: true });
    const policy = await errorOf(launch(c, vm('cml-external-ip')));
    expect(rawBody(policy).error).toMatchObject({
      code: 412,
      errors: [{ reason: 'conditionNotMet' }],
      message:
        'Constraint constraints/compute.vmExternalIpAccess violated for project 123456789012. Add instance ' +
        `projects/${GCE_PROJECT}/zones/${ZONE}/instances/cml-external-ip to the constraint to use external IP with it.`,
    });
    expect(fake.instances()).toEqual([]);
    // Without an access config the policy has nothing to refuse; the subnetwork names its network.
    await launch(c, vm('cml-internal-only', nic({ subnetwork: 'regions/us-central1/subnetworks/ci-us-central1' })));
    expect(fake.instance(ZONE, 'cml-internal-only')).toMatchObject({ network: 'ci-vpc', subnetwork: 'ci-us-central1' });
    expect(fake.instance(ZONE, 'cml-internal-only')!.natIP).toBeUndefined();
    await expectClean(c);
  });

  test('a VM with no way out reaches its metadata server only; Cloud NAT gives it one', async () => {
    const c = clients();
    const port = new URL(fake.url).port;
    const probe = `curl -sS --max-time 2 -o /dev/null ${fake.url}/ 2>&1; echo "exit $?"; echo probe-done`;
    await launch(c, vm('cml-no-egress', nic({ network: 'global/networks/default' }), probe));
    await launch(c, vm('cml-nat', nic({ subnetwork: 'regions/us-central1/subnetworks/ci-us-central1' }), probe));
    const [alone, nat] = [fake.instance(ZONE, 'cml-no-egress')!, fake.instance(ZONE, 'cml-nat')!];
    await waitFor(
      () => alone.console().includes('probe-done') && nat.console().includes('probe-done'),
      10_000,
      'probes',
    );
    const refused = `Failed to connect to 127.0.0.1 port ${port} after 130002 ms: Couldn't connect to server\nexit 28`;
    expect(alone.console()).toContain(refused);
    expect(nat.console()).toMatch(/^exit 0$/m);
    await expectClean(c);
  });

  test('A3 High below 8 GPUs is not sold on-demand: the insert is refused; as Spot it is accepted', async () => {
    const c = clients();
    const a3 = (name: string, model: string) =>
      vm(name, {
        machineType: `zones/${ZONE}/machineTypes/a3-highgpu-1g`,
        scheduling: {
          onHostMaintenance: 'TERMINATE',
          provisioningModel: model,
          ...(model === 'SPOT' ? { instanceTerminationAction: 'DELETE' } : {}),
        },
      });
    const err = await errorOf(launch(c, a3('cml-h100-on-demand', 'STANDARD')));
    expect(rawBody(err).error).toMatchObject({
      code: 400,
      errors: [{ reason: 'invalid' }],
      message: expect.stringContaining("Machine type 'a3-highgpu-1g' is only available with provisioning models [SPOT"),
    });
    expect(fake.instances()).toEqual([]);
    await launch(c, a3('cml-h100-spot', 'SPOT'));
    expect(fake.instance(ZONE, 'cml-h100-spot')).toMatchObject({ status: 'RUNNING', provisioningModel: 'SPOT' });
    await expectClean(c);
  });

  test('setMetadata needs the current fingerprint and the permission; the metadata server then serves the new items', async () => {
    const c = clients();
    await launch(c, vm('cml-md', {}, 'echo booted; sleep 30'));
    const inst = fake.instance(ZONE, 'cml-md')!;
    const where = { project: GCE_PROJECT, zone: ZONE, instance: 'cml-md' };
    const [got] = await c.instances.get(where);
    const items = [{ key: 'cml-runner-repo', value: 'octo-org/ml' }];
    const stale = await errorOf(
      c.instances.setMetadata({ ...where, metadataResource: { fingerprint: 'AAAA', items } }),
    );
    expect(rawBody(stale).error).toMatchObject({
      code: 412,
      errors: [{ reason: 'conditionNotMet' }],
      message: 'Supplied fingerprint does not match current metadata fingerprint.',
    });
    fake.configure({ deployerLacks: ['compute.instances.setMetadata'] });
    const denied = await errorOf(
      c.instances.setMetadata({ ...where, metadataResource: { fingerprint: got.metadata!.fingerprint!, items } }),
    );
    expect(rawBody(denied).error).toMatchObject({
      code: 403,
      message: `Required 'compute.instances.setMetadata' permission for 'projects/${GCE_PROJECT}/zones/${ZONE}/instances/cml-md'`,
    });
    fake.configure({ deployerLacks: [] });
    const [lro] = await c.instances.setMetadata({
      ...where,
      metadataResource: { fingerprint: got.metadata!.fingerprint!, items },
    });
    await waitOp(c, lro.latestResponse as { name?: string | null });
    expect(inst.metadata).toEqual({ 'cml-runner-repo': 'octo-org/ml' });
    const md = `${fake.url}/_gce_md/${inst.id}/computeMetadata/v1/instance/attributes`;
    const headers = { 'metadata-flavor': 'Google' };
    expect((await fetch(`${md}/startup-script`, { headers })).status).toBe(404);
    expect(await (await fetch(`${md}/cml-runner-repo`, { headers })).text()).toBe('octo-org/ml');
    // The machine carries on, and the old fingerprint is stale now.
    expect(inst).toMatchObject({ status: 'RUNNING' });
    expect(inst.machine!.running).toBe(true);
    const again = await errorOf(
      c.instances.setMetadata({ ...where, metadataResource: { fingerprint: got.metadata!.fingerprint!, items: [] } }),
    );
    expect(rawBody(again).error.code).toBe(412);
    await expectClean(c);
  });
});
