import { describe, expect, test } from '@jest/globals';
import type { AwsOptions } from '../src/clouds/aws/options.js';
import type { AzureOptions } from '../src/clouds/azure/options.js';
import type { GcpOptions } from '../src/clouds/gcp/options.js';
import { type KubernetesOptions, kubeconfigSecrets } from '../src/clouds/kubernetes/options.js';
import { type LaunchSpec, parseSpec, type RunContext } from '../src/config.js';
import { InputError } from '../src/errors.js';

const ctx: RunContext = {
  repository: 'octo-org/ml',
  runId: '7',
  serverUrl: 'https://github.com',
  apiUrl: 'https://api.github.com',
  env: {},
};

/** The cloud's own options, as its descriptor read them. */
const aws = (s: LaunchSpec) => s.cloud.options as AwsOptions;
const kubernetesOf = (s: LaunchSpec) => s.cloud.options as KubernetesOptions;
const gcpOf = (s: LaunchSpec) => s.cloud.options as GcpOptions;
const azureOf = (s: LaunchSpec) => s.cloud.options as AzureOptions;

function spec(inputs: Record<string, string>) {
  const all: Record<string, string> = { cloud: 'aws', token: 'ghp_example', ...inputs };
  return parseSpec(
    (name) => all[name] ?? '',
    ctx,
    () => 'abc123',
  );
}

function rejection(inputs: Record<string, string>): InputError {
  try {
    spec(inputs);
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
  throw new Error(`accepted ${JSON.stringify(inputs)}`);
}

describe('generic names map to AWS names through the catalog', () => {
  test.each([
    ['us-east', 'us-east-1'],
    ['us-west', 'us-west-1'],
    ['eu-west', 'eu-west-1'],
    ['eu-north', 'eu-north-1'],
    ['ap-southeast-2', 'ap-southeast-2'],
  ])('region %s is %s', (region, native) => {
    expect(spec({ region }).machine.region).toBe(native);
  });

  test.each([
    ['t4', 'g4dn'],
    ['a10g', 'g5'],
    ['l4', 'g6'],
    ['l40s', 'g6e'],
    ['a100', 'p4d'],
    ['h100', 'p5'],
  ])('gpu %s gets a %s machine for every size', (gpu, family) => {
    for (const type of ['s', 'm', 'l', 'xl']) {
      const m = spec({ gpu, type }).machine;
      expect(m.types[0]!.split('.')[0]).toBe(family);
      expect(m.wantsGpu).toBe(true);
    }
  });

  test('CPU sizes keep CML choices and need no GPU image', () => {
    expect(spec({ type: 'm' }).machine).toMatchObject({ types: ['m5.2xlarge'], wantsGpu: false });
    expect(spec({ type: 'xl' }).machine.types).toEqual(['m5.16xlarge']);
  });

  test('native types pass through, and a GPU family selects the GPU image', () => {
    expect(spec({ type: 'g6.2xlarge' }).machine).toMatchObject({ types: ['g6.2xlarge'], wantsGpu: true });
    expect(spec({ type: 'c7i.large' }).machine).toMatchObject({ types: ['c7i.large'], wantsGpu: false });
  });

  test('a comma list of types is kept in order', () => {
    expect(spec({ type: 'g5.xlarge, s', gpu: 't4' }).machine.types).toEqual(['g5.xlarge', 'g4dn.xlarge']);
  });

  test('subnets are a list in order; spot falls back to on-demand unless told not to', () => {
    expect(aws(spec({ 'aws-subnet': 'subnet-0a1, subnet-0b2' })).subnets).toEqual(['subnet-0a1', 'subnet-0b2']);
    expect(aws(spec({})).subnets).toEqual([]);
    expect(spec({ spot: 'true' }).machine.onDemandFallback).toBe(true);
    expect(spec({ spot: 'true', 'on-demand-fallback': 'false' }).machine.onDemandFallback).toBe(false);
  });
});

describe('runner settings', () => {
  test('defaults: single ephemeral runner named cml-<random>, label cml, 5 minute idle, 24 h cap', () => {
    const s = spec({});
    expect(s.runner).toMatchObject({
      names: ['cml-abc123'],
      labels: ['cml'],
      single: true,
      idleTimeoutSeconds: 300,
      maxLifetimeSeconds: 86400,
    });
    expect(s.forge.scope).toEqual({ kind: 'repo', owner: 'octo-org', repo: 'ml' });
    expect(s.forge.url).toBe('https://github.com/octo-org/ml');
  });

  test('an organisation URL registers organisation runners', () => {
    expect(spec({ repo: 'https://github.com/octo-org' }).forge).toMatchObject({
      scope: { kind: 'org', org: 'octo-org' },
      url: 'https://github.com/octo-org',
    });
  });

  test('durations accept seconds and units', () => {
    expect(spec({ 'idle-timeout': '10m', 'max-lifetime': '2d', 'startup-timeout': '90' }).runner).toMatchObject({
      idleTimeoutSeconds: 600,
      maxLifetimeSeconds: 172800,
      startupTimeoutSeconds: 90,
    });
  });

  test('all or nothing by default; reuse-idle is the stricter reuse', () => {
    expect(spec({}).runner).toMatchObject({ allowPartial: false });
    expect(spec({}).runner.reuse).toBeUndefined();
    expect(spec({ 'allow-partial': 'true' }).runner.allowPartial).toBe(true);
    expect(spec({ reuse: 'true' }).runner.reuse).toBe('online');
    expect(spec({ reuse: 'true', 'reuse-idle': 'true' }).runner.reuse).toBe('idle');
    expect(spec({ mode: 'sweep' }).mode).toBe('sweep');
  });

  test('count names runners after the name input', () => {
    expect(spec({ name: 'train', count: '3' }).runner.names).toEqual(['train-1', 'train-2', 'train-3']);
  });

  test('a base64 startup script is decoded; a plain one is kept', () => {
    expect(spec({ 'startup-script': Buffer.from('echo hello\n').toString('base64') }).machine.startupScript).toBe(
      'echo hello\n',
    );
    expect(spec({ 'startup-script': 'echo plain' }).machine.startupScript).toBe('echo plain');
  });

  test('labels and tags with shell metacharacters are kept verbatim as data', () => {
    const s = spec({ labels: `gpu,$(touch /tmp/x),"quoted",\`id\`,ünïcode`, tags: 'team=ml $(id),cost=`x`' });
    expect(s.runner.labels).toEqual(['gpu', '$(touch /tmp/x)', '"quoted"', '`id`', 'ünïcode']);
    expect(s.machine.tags).toEqual({ team: 'ml $(id)', cost: '`x`' });
  });
});

describe('every bad value fails with the input, the value and what is accepted', () => {
  test.each([
    [{ cloud: 'ibm' }, 'cloud', 'ibm', 'aws'],
    [{ region: 'mars' }, 'region', 'mars', 'us-east'],
    [{ type: 'huge' }, 'type', 'huge', 's, m, l, xl'],
    [{ gpu: 'rtx4090' }, 'gpu', 'rtx4090', 't4'],
    [{ gpu: 'k80' }, 'gpu', 'k80', 'retired'],
    [{ 'hdd-size': '2' }, 'hdd-size', '2', 'GB'],
    [{ 'hdd-size': '-5' }, 'hdd-size', '-5', 'GB'],
    [{ spot: 'yes' }, 'spot', 'yes', 'true or false'],
    [{ 'spot-price': '0' }, 'spot-price', '0', '-1'],
    [{ count: '0' }, 'count', '0', '1 to 100'],
    [{ 'idle-timeout': '5 minutes' }, 'idle-timeout', '5 minutes', 'seconds'],
    [{ 'max-lifetime': '40d' }, 'max-lifetime', '40d', '30d'],
    [{ name: 'bad name;rm -rf' }, 'name', 'bad name;rm -rf', 'letters'],
    [{ labels: 'a,,b' }, 'labels', 'a,,b', 'comma-separated'],
    [{ labels: 'a\nb' }, 'labels', 'a\nb', 'control or invisible format characters'],
    [{ labels: 'gpu,cml\u202Egpu' }, 'labels', 'gpu,cml<U+202E>gpu', 'invisible format characters'],
    [{ labels: 'cml\u200Bgpu' }, 'labels', 'cml<U+200B>gpu', 'invisible format characters'],
    [{ labels: 'cml-gpu,self-hosted' }, 'labels', 'cml-gpu,self-hosted', 'leave out self-hosted'],
    [{ labels: 'Linux' }, 'labels', 'Linux', 'leave out Linux'],
    [{ labels: 'gpu,X64' }, 'labels', 'gpu,X64', 'reserved: self-hosted, linux, x64, arm64, arm, windows, macos'],
    [{ labels: 'arm64' }, 'labels', 'arm64', 'the action gives every runner'],
    [{ labels: 'ARM' }, 'labels', 'ARM', 'leave out ARM'],
    [{ labels: 'Windows' }, 'labels', 'Windows', 'leave out Windows'],
    [{ labels: 'macOS' }, 'labels', 'macOS', 'leave out macOS'],
    [{ tags: 'team=m\u202El' }, 'tags', 'team=m<U+202E>l', 'invisible format characters'],
    [{ tags: 'te\u200Bam=ml' }, 'tags', 'te<U+200B>am=ml', 'invisible format characters'],
    [{ 'runner-group': 'gpu\u202E' }, 'runner-group', 'gpu<U+202E>', 'invisible format characters'],
    [{ 'runner-group': 'gp\u0007u' }, 'runner-group', 'gp\u0007u', 'control or invisible format characters'],
    [{ tags: 'novalue' }, 'tags', 'novalue', 'key=value'],
    [{ tags: 'aws:owner=me' }, 'tags', 'aws:owner=me', 'reserved'],
    [{ image: 'ubuntu' }, 'image', 'ubuntu', 'AMI id'],
    [{ repo: 'https://gitlab.com/a/b' }, 'repo', 'https://gitlab.com/a/b', 'https://github.com'],
    [{ driver: 'gitlab' }, 'driver', 'gitlab', 'github'],
    [{ token: '' }, 'token', '', 'GITHUB_TOKEN cannot'],
    [{ 'aws-subnet': 'default' }, 'aws-subnet', 'default', 'subnet-'],
    [{ 'runner-version': 'v2' }, 'runner-version', 'v2', 'latest'],
    [{ mode: 'destroy' }, 'mode', 'destroy', 'launch, cleanup, sweep'],
    [{ 'aws-subnet': 'subnet-0a1,subnet 2' }, 'aws-subnet', 'subnet 2', 'comma-separated'],
    [{ 'aws-subnet': 'subnet-0a1,subnet-0a1' }, 'aws-subnet', 'subnet-0a1,subnet-0a1', 'each subnet once'],
    [{ type: 'g5.xlarge,g5.xlarge' }, 'type', 'g5.xlarge,g5.xlarge', 'each type once'],
    [{ 'on-demand-fallback': 'maybe' }, 'on-demand-fallback', 'maybe', 'true or false'],
    [{ 'allow-partial': '1' }, 'allow-partial', '1', 'true or false'],
    [{ reuse: 'yes' }, 'reuse', 'yes', 'true or false'],
    [{ 'reuse-idle': 'idle' }, 'reuse-idle', 'idle', 'true or false'],
  ])('%j', (inputs, input, value, accepted) => {
    const err = rejection(inputs as Record<string, string>);
    expect(err.input).toBe(input);
    expect(err.value).toBe(value);
    expect(err.message).toContain(`'${input}'`);
    expect(err.message).toContain(JSON.stringify(value));
    expect(err.message).toContain(accepted);
  });
});

test('an explicitly empty labels input is refused; one not given takes the default cml', () => {
  const all: Record<string, string> = { cloud: 'aws', token: 'ghp_example', labels: '' };
  const read = Object.assign((name: string) => all[name] ?? '', { isSet: (name: string) => name in all });
  let err: unknown;
  try {
    parseSpec(read, ctx);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InputError);
  expect((err as InputError).input).toBe('labels');
  expect((err as InputError).message).toContain(`Input 'labels' has an invalid value ""`);
  expect((err as InputError).message).toContain('give at least one label');
  delete all.labels;
  expect(parseSpec(read, ctx).runner.labels).toEqual(['cml']);
});

test('a startup script too large for the user data fails before anything is created', () => {
  const script = `#!/bin/bash\n${'echo padding\n'.repeat(600)}`;
  const err = rejection({ 'startup-script': script });
  expect(err.input).toBe('startup-script');
  expect(err.value).toBe(`${script.slice(0, 40)}… (${Buffer.byteLength(script)} bytes)`);
  expect(err.message).toContain('at most 6144 bytes');
});

describe('Kubernetes inputs', () => {
  const kubeconfig = 'apiVersion: v1\nkind: Config\nclusters: []\n';
  const k8s = (inputs: Record<string, string>, env: RunContext['env'] = {}) => {
    const all: Record<string, string> = { cloud: 'kubernetes', token: 'ghp_example', kubeconfig, ...inputs };
    const parsed = parseSpec(
      (name) => all[name] ?? '',
      { ...ctx, env },
      () => 'abc123',
    );
    return { ...parsed, kubernetes: kubernetesOf(parsed) };
  };
  const k8sRejection = (inputs: Record<string, string>, env: RunContext['env'] = {}): InputError => {
    try {
      k8s(inputs, env);
    } catch (err) {
      if (err instanceof InputError) return err;
      throw err;
    }
    throw new Error(`accepted ${JSON.stringify(inputs)}`);
  };

  test('every generic GPU yields one nvidia.com/gpu with every generic size (CML once dropped it for m + t4)', () => {
    for (const gpu of ['t4', 'a10g', 'l4', 'l40s', 'a100', 'h100', 'v100', 'tesla']) {
      for (const type of ['s', 'm', 'l', 'xl']) {
        const { machine, kubernetes } = k8s({ gpu, type });
        expect(machine.types[0]).toMatch(/^[^/]+\/[^/]+\/1$/);
        expect(machine.wantsGpu).toBe(true);
        expect(kubernetes.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
      }
    }
    expect(k8s({ type: 'm' }).machine.types).toEqual(['2/8Gi']);
    expect(k8s({ type: 'm' }).kubernetes.tolerations).toEqual([]);
  });

  test('a native size is CPU/MEMORY[/GPUS] in quantities, and a GPU asked for cannot be sized away', () => {
    expect(k8s({ type: '500m/2Gi' }).machine.types).toEqual(['500m/2Gi']);
    expect(k8s({ type: '16/64Gi/2' }).machine).toMatchObject({ types: ['16/64Gi/2'], wantsGpu: true });
    expect(k8s({ type: '4/16Gi', gpu: 'l4' }).machine.types).toEqual(['4/16Gi/1']);
    expect(k8sRejection({ type: '4/16GB' }).input).toBe('type');
    expect(k8sRejection({ type: 'g5.xlarge' }).message).toContain('CPU/MEMORY');
    expect(k8sRejection({ type: '4/16Gi/0', gpu: 't4' }).input).toBe('type');
  });

  test('node selector, tolerations, namespace, runtime class and image are validated', () => {
    const m = k8s({
      'kubernetes-node-selector': 'nvidia.com/gpu.product=Tesla-T4, pool=gpu',
      'kubernetes-tolerations': 'nvidia.com/gpu:NoSchedule,spot=true:NoExecute,dedicated',
      'kubernetes-namespace': 'ci-runners',
      'kubernetes-runtime-class': 'nvidia',
      'kubernetes-image': 'nvcr.io/nvidia/cuda:12.8.1-runtime-ubuntu24.04',
    });
    expect(m.kubernetes).toMatchObject({
      namespace: 'ci-runners',
      runtimeClass: 'nvidia',
      image: 'nvcr.io/nvidia/cuda:12.8.1-runtime-ubuntu24.04',
      nodeSelector: { 'nvidia.com/gpu.product': 'Tesla-T4', pool: 'gpu' },
      tolerations: [
        { key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' },
        { key: 'spot', operator: 'Equal', value: 'true', effect: 'NoExecute' },
        { key: 'dedicated', operator: 'Exists' },
      ],
    });
    // Regions do not apply to a cluster: the namespace is where runners go.
    expect(m.machine.region).toBe('');
    expect(m.kubernetes.namespace).toBe('ci-runners');
    expect(k8s({ gpu: 't4', 'kubernetes-tolerations': 'none' }).kubernetes.tolerations).toEqual([]);
    const bad: Array<[string, string]> = [
      ['kubernetes-node-selector', 'gpu'],
      ['kubernetes-node-selector', 'a=$(id)'],
      ['kubernetes-tolerations', 'nvidia.com/gpu:Sometimes'],
      ['kubernetes-namespace', 'CI_Runners'],
      ['kubernetes-runtime-class', 'Nvidia Runtime'],
      ['kubernetes-image', 'ubuntu; rm -rf /'],
      ['kubernetes-image', 'ghcr.io/actions/actions-runner:$(id)'],
      ['kubernetes-image', 'Ubuntu:24.04\nx'],
    ];
    for (const [input, value] of bad) {
      const err = k8sRejection({ [input]: value });
      expect(err.input).toBe(input);
      expect(err.message).toContain(JSON.stringify(value));
    }
  });

  test('spot and image are refused on Kubernetes with what to use instead', () => {
    expect(k8sRejection({ spot: 'true' }).message).toContain('kubernetes-node-selector');
    expect(k8sRejection({ image: 'ami-0123456789abcdef0' }).message).toContain('kubernetes-image');
  });

  test('cluster access: the input, then KUBERNETES_CONFIGURATION (plain or base64), then KUBECONFIG, then in-cluster', () => {
    const env = {
      KUBERNETES_CONFIGURATION: 'apiVersion: v1\nkind: Config # from the variable\n',
      KUBECONFIG: '/home/runner/.kube/config',
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
    };
    expect(k8s({}, env).kubernetes.access).toEqual({ source: 'the kubeconfig input', text: kubeconfig.trim() });
    expect(k8s({ kubeconfig: '' }, env).kubernetes.access).toEqual({
      source: 'KUBERNETES_CONFIGURATION',
      text: env.KUBERNETES_CONFIGURATION.trim(),
    });
    const b64 = Buffer.from(env.KUBERNETES_CONFIGURATION).toString('base64');
    expect(k8s({ kubeconfig: '' }, { KUBERNETES_CONFIGURATION: b64 }).kubernetes.access).toEqual({
      source: 'KUBERNETES_CONFIGURATION',
      text: env.KUBERNETES_CONFIGURATION,
    });
    expect(k8s({ kubeconfig: '' }, { ...env, KUBERNETES_CONFIGURATION: '' }).kubernetes.access).toEqual({
      source: 'KUBECONFIG',
      path: env.KUBECONFIG,
    });
    expect(k8s({ kubeconfig: '' }, { KUBERNETES_SERVICE_HOST: '10.0.0.1' }).kubernetes.access).toEqual({
      source: 'in-cluster',
    });
    const none = k8sRejection({ kubeconfig: '' }, {});
    expect(none.input).toBe('kubeconfig');
    expect(none.message).toContain('KUBERNETES_CONFIGURATION');
  });

  test('secret kubeconfig values are found for masking', () => {
    const text =
      'users:\n- name: ci\n  user:\n    token: eyJhbGciOiJSUzI1NiJ9.secret\n    client-key-data: "LS0tLS1CRUdJTiBSU0E="\n';
    expect(kubeconfigSecrets(text)).toEqual(['eyJhbGciOiJSUzI1NiJ9.secret', 'LS0tLS1CRUdJTiBSU0E=']);
  });
});

describe('Google Cloud inputs', () => {
  const gcp = (inputs: Record<string, string>) => spec({ cloud: 'gcp', 'gcp-project': 'ml-training-1', ...inputs });

  test.each([
    ['us-east', 'us-east1'],
    ['us-west', 'us-west1'],
    ['eu-west', 'europe-west1'],
    ['eu-north', 'europe-north1'],
    ['us-central1', 'us-central1'],
  ])('region %s is %s', (region, native) => {
    expect(gcp({ region }).machine.region).toBe(native);
  });

  test('every generic GPU keeps its GPU with every size: N1 with attached T4, or g2, a2, a3 (V100: none)', () => {
    const expected: Record<string, RegExp> = {
      t4: /^n1-standard-\d+\+(\dx)?nvidia-tesla-t4$/,
      l4: /^g2-/,
      a100: /^a2-/,
      h100: /^a3-/,
    };
    // The default image may load NVIDIA's open kernel modules, which do not drive a V100.
    expect(() => gcp({ gpu: 'tesla', type: 's' })).toThrow(/^Input 'gpu' has an invalid value "v100": .*t4 or l4/);
    for (const [gpu, pattern] of Object.entries(expected)) {
      for (const type of ['s', 'm', 'l', 'xl']) {
        // A3 High below 8 GPUs is sold only as Spot (or Flex-start).
        const market: Record<string, string> = gpu === 'h100' ? { spot: 'true', 'on-demand-fallback': 'false' } : {};
        const machine = gcp({ gpu, type, ...market }).machine;
        expect(machine.types[0]).toMatch(pattern);
        expect(machine.wantsGpu).toBe(true);
      }
    }
    expect(gcp({ type: 'm' }).machine).toMatchObject({ types: ['n2-standard-8'], wantsGpu: false });
  });

  test('a native N1 type gets the GPU attached; a GPU type names its own', () => {
    const image = 'projects/my-project/global/images/my-runner';
    expect(gcp({ type: 'n1-standard-16', gpu: 'v100', image }).machine.types).toEqual([
      'n1-standard-16+nvidia-tesla-v100',
    ]);
    expect(gcp({ type: 'n1-standard-16+2xnvidia-tesla-v100', image }).machine).toMatchObject({ wantsGpu: true });
    expect(gcp({ type: 'g2-standard-8,a2-highgpu-1g' }).machine).toMatchObject({
      types: ['g2-standard-8', 'a2-highgpu-1g'],
      wantsGpu: true,
    });
  });

  test('the project comes from the input, else from what google-github-actions/auth sets', () => {
    expect(gcpOf(gcp({}))).toEqual({ project: 'ml-training-1' });
    const fromEnv = parseSpec((n) => ({ cloud: 'gcp', token: 't' })[n] ?? '', {
      ...ctx,
      env: { GOOGLE_CLOUD_PROJECT: 'from-auth-42' },
    });
    expect(gcpOf(fromEnv).project).toBe('from-auth-42');
    expect(rejection({ cloud: 'gcp' })).toMatchObject({ input: 'gcp-project', value: '' });
    expect(
      gcpOf(gcp({ 'gcp-service-account': 'runner-vm@ml-training-1.iam.gserviceaccount.com' })).serviceAccount,
    ).toBe('runner-vm@ml-training-1.iam.gserviceaccount.com');
  });

  test.each([
    [{ gpu: 'a10g' }, 'gpu'],
    [{ gpu: 'l40s' }, 'gpu'],
    [{ gpu: 'k80' }, 'gpu'],
    [{ type: 'n2-standard-8', gpu: 't4' }, 'type'],
    [{ type: 'a2-highgpu-1g', gpu: 'h100' }, 'type'],
    [{ type: 'n2-standard-8+nvidia-tesla-t4' }, 'type'],
    [{ type: 'n1-standard-8+9xnvidia-tesla-t4' }, 'type'],
    [{ 'spot-price': '1.5' }, 'spot-price'],
    [{ tags: 'team=ML' }, 'tags'],
    [{ tags: 'cost-center=a/b' }, 'tags'],
    [{ 'gcp-service-account': 'runner$(id)@x.iam.gserviceaccount.com' }, 'gcp-service-account'],
    [{ 'gcp-project': 'My_Project' }, 'gcp-project'],
    [{ image: 'ami-0123456789abcdef0' }, 'image'],
    [{ region: 'us-east-1' }, 'region'],
  ])('%j is refused naming %s', (inputs, input) => {
    expect(rejection({ cloud: 'gcp', 'gcp-project': 'ml-training-1', ...inputs }).input).toBe(input);
  });
});

describe('Azure inputs', () => {
  const subscription = '11111111-2222-3333-4444-555555555555';
  const azure = (inputs: Record<string, string>) =>
    spec({ cloud: 'azure', 'azure-subscription-id': subscription, ...inputs });

  test.each([
    ['us-east', 'eastus'],
    ['us-west', 'westus2'],
    ['eu-west', 'westeurope'],
    ['eu-north', 'northeurope'],
    ['swedencentral', 'swedencentral'],
  ])('region %s is %s', (region, native) => {
    expect(azure({ region }).machine.region).toBe(native);
  });

  test('every generic GPU keeps its GPU: NCasT4_v3, whole NVadsA10_v5 A10s, NC A100 v4, NCads H100 v5', () => {
    const expected: Record<string, RegExp> = {
      t4: /^Standard_NC\d+as_T4_v3$/,
      a10g: /^Standard_NV(36|72)ads_A10_v5$/,
      a100: /_A100_v4$/,
      h100: /_H100_v5$/,
    };
    // The V100 (NCv3) sizes are retired.
    expect(() => azure({ gpu: 'v100', type: 's' })).toThrow(/^Input 'gpu' has an invalid value "v100": .*retired/);
    for (const [gpu, pattern] of Object.entries(expected)) {
      for (const type of ['s', 'm', 'l', 'xl']) {
        const machine = azure({ gpu, type }).machine;
        expect(machine.types[0]).toMatch(pattern);
        expect(machine.wantsGpu).toBe(true);
      }
    }
    expect(azure({}).machine).toMatchObject({ types: ['Standard_D8s_v5'], wantsGpu: false });
    expect(azureOf(azure({}))).toEqual({ subscriptionId: subscription, resourceGroupPrefix: 'cml-runner' });
  });

  test('the subscription comes from the input, else AZURE_SUBSCRIPTION_ID', () => {
    const fromEnv = parseSpec((n) => ({ cloud: 'azure', token: 't' })[n] ?? '', {
      ...ctx,
      env: { AZURE_SUBSCRIPTION_ID: subscription },
    });
    expect(azureOf(fromEnv).subscriptionId).toBe(subscription);
    expect(rejection({ cloud: 'azure' })).toMatchObject({ input: 'azure-subscription-id', value: '' });
  });

  test.each([
    [{ gpu: 'k80' }, 'gpu'],
    [{ gpu: 'l4' }, 'gpu'],
    [{ gpu: 'l40s' }, 'gpu'],
    [{ type: 'g4dn.xlarge' }, 'type'],
    [{ region: 'us-east-1' }, 'region'],
    [{ 'azure-subscription-id': 'my-sub' }, 'azure-subscription-id'],
    [{ 'azure-resource-group-prefix': 'runners/$(id)' }, 'azure-resource-group-prefix'],
    [{ image: 'ubuntu' }, 'image'],
  ])('%j is refused naming %s', (inputs, input) => {
    expect(rejection({ cloud: 'azure', 'azure-subscription-id': subscription, ...inputs }).input).toBe(input);
  });
});
