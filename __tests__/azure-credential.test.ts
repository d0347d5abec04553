import { beforeAll, describe, expect, test } from '@jest/globals';
import { ComputeManagementClient } from '@azure/arm-compute';
import { ClientSecretCredential } from '@azure/identity';
import type { Sandbox } from '../sandbox/index.js';
import { AZURE_APPS } from '../sandbox/azure.js';
import { useSandbox } from './support/sandbox.js';
import { MemoryLog, attemptLaunch, cleanupRunOf, settle, until } from './helpers.js';

/**
 * Where an Azure runner's credential travels, and when it is gone. Not in the VM's custom data
 * (the startup script), which cannot be changed after creation and which root on the VM reads
 * back: in its user data, which the startup script reads from the instance metadata service and
 * the launcher empties once the runner is online. A job on the runner then finds no credential
 * in either, and cannot register a runner of its own.
 */

const sandbox = useSandbox();
let sb: Sandbox;

beforeAll(() => {
  sb = sandbox();
});

const base = { cloud: 'azure', region: 'eastus', type: 's' };

/** The launcher's compute client, through the real SDK. */
function compute(): ComputeManagementClient {
  const { clientId, secret } = AZURE_APPS.launcher;
  const credential = new ClientSecretCredential(sb.azure.tenantId, clientId, secret, {
    authorityHost: sb.azure.url,
    disableInstanceDiscovery: true,
  });
  return new ComputeManagementClient(credential, sb.azure.subscriptionId, {
    endpoint: sb.azure.url,
    credentials: { scopes: [`${sb.azure.url}/.default`] },
  });
}

/**
 * A job's script on the runner: it reads the VM's custom data (the startup script, found as
 * its ancestor process), then the VM's user data from the instance metadata service, both as
 * the leaf and in the whole compute document, looks for a credential in each, and registers a
 * runner of its own with a registration token if it found one.
 */
function thiefJob(): string {
  return `set -u
imds="\${AZURE_POD_IDENTITY_AUTHORITY_HOST:-http://169.254.169.254}"
# Pairs of NUL-separated keys and values on stdin: prints each credential's key and value.
creds() { while IFS= read -r -d '' k && IFS= read -r -d '' v; do
  case "$k" in RUNNER_TOKEN | RUNNER_JITCONFIG) printf '%s %s\\n' "$k" "$v" ;; esac
done; }
p=$$
while [[ "$p" -gt 1 ]] && ! grep -q user-data.sh "/proc/$p/cmdline" 2>/dev/null; do p="$(awk '{print $4}' "/proc/$p/stat")"; done
script="$(tr '\\0' '\\n' <"/proc/$p/cmdline" | grep user-data.sh)"
found=""
if [[ -r "$script" ]]; then
  found="$(sed -n '/^base64 -d <<.CML_RUNNER_SETTINGS.$/,/^CML_RUNNER_SETTINGS$/p' "$script" | sed '1d;$d' | base64 -d | creds)"
  echo "custom data: $(grep -c '^RUNNER_' <<<"$found") credentials"
else
  echo "custom data: not readable by $(id -un)"
fi
leaf="$(curl -sf -H 'Metadata: true' "$imds/metadata/instance/compute/userData?api-version=2021-01-01&format=text")"
doc="$(curl -sf -H 'Metadata: true' "$imds/metadata/instance/compute?api-version=2021-02-01")"
[[ "$doc" =~ \\"userData\\":\\ *\\"([^\\"]*)\\" ]] && whole="\${BASH_REMATCH[1]}" || whole="(none)"
echo "user data: leaf '\${leaf:0:12}', in the document '\${whole:0:12}'"
found+=$'\\n'"$(printf '%s' "$leaf" | base64 -d 2>/dev/null | creds)"
found+=$'\\n'"$(printf '%s' "$whole" | base64 -d 2>/dev/null | creds)"
token="$(sed -n 's/^RUNNER_TOKEN //p' <<<"$found" | head -1)"
jit="$(sed -n 's/^RUNNER_JITCONFIG //p' <<<"$found" | head -1)"
echo "found: token \${token:+yes}\${token:-no}, jit config \${jit:+yes}\${jit:-no}"
if [[ -n "$token" ]]; then
  rogue="$RUNNER_TEMP/rogue"; mkdir -p "$rogue"
  root="$RUNNER_WORKSPACE/../.."; cp -r "$root/bin" "$root/externals" "$root/config.sh" "$rogue/"
  "$rogue/config.sh" --unattended --url "$GITHUB_SERVER_URL/$GITHUB_REPOSITORY" --name rogue-runner --labels anything --token "$token" && echo "rogue registered"
fi
`;
}

/** Launches one runner, runs the thief on it, and returns what it said. */
async function launchAndSteal(inputs: Record<string, string>, label: string) {
  const log = new MemoryLog();
  const { result, error } = await attemptLaunch(sb, { ...base, ...inputs, labels: label }, undefined, '4242', log);
  expect(error).toBeUndefined();
  const group = result!.runners[0]!.machine.id;
  const job = sb.github.queueJob({
    owner: 'octo-org',
    repo: 'ml',
    labels: ['self-hosted', label, result!.launchLabel],
    script: thiefJob(),
  });
  const done = await sb.github.waitJob(job.id, 30_000);
  return { group, log, jobLog: done.log, name: result!.runners[0]!.name };
}

const vmOf = (group: string) => sb.azure.vms().findLast((v) => v.group === group)!;

describe("an Azure runner's credential", () => {
  test('a reusable runner: a job finds no token in custom data or user data, and registers no runner', async () => {
    const { group, log, jobLog, name } = await launchAndSteal(
      { single: 'false', 'idle-timeout': '0' },
      'cml-cred-reuse',
    );
    expect(log.lines.filter((l) => l.startsWith('warning:'))).toEqual([]);
    // The runner's user may not read the custom data; root could, and would find no credential.
    expect(jobLog).toMatch(/custom data: (0 credentials|not readable by \w+)/);
    expect(jobLog).toContain("user data: leaf '', in the document ''");
    expect(jobLog).toContain('found: token no, jit config no');
    expect(jobLog).not.toContain('rogue registered');
    expect(sb.github.runners().map((r) => r.name)).toEqual([name]);
    // The launcher emptied the user data once, and ARM says so (it shows it only when asked).
    expect(vmOf(group).userDataUpdates).toBe(1);
    const vm = await compute().virtualMachines.get(group, 'runner', { expand: 'userData' });
    expect(vm.userData).toBe('');
    expect((await compute().virtualMachines.get(group, 'runner')).userData).toBeUndefined();
    await cleanupRunOf(sb, 'azure');
    expect(await settle(sb)).toEqual([]);
  });

  test('a single runner: its just-in-time configuration is gone from user data too', async () => {
    const { group, jobLog } = await launchAndSteal({}, 'cml-cred-jit');
    expect(jobLog).toMatch(/custom data: (0 credentials|not readable by \w+)/);
    expect(jobLog).toContain('found: token no, jit config no');
    expect(sb.github.runners().map((r) => r.name)).not.toContain('rogue-runner');
    expect(jobLog).toContain("user data: leaf '', in the document ''");
    // The ephemeral runner's VM deletes itself after its job: the fake's record says what ARM held.
    expect(vmOf(group)).toMatchObject({ userData: '', userDataUpdates: 1 });
    await cleanupRunOf(sb, 'azure');
    expect(await settle(sb)).toEqual([]);
  });

  test('the VM got its credential from user data: the launch sent it there and not in custom data', async () => {
    const { result, error } = await attemptLaunch(sb, { ...base, single: 'false', labels: 'cml-cred-sent' });
    expect(error).toBeUndefined();
    const vm = vmOf(result!.runners[0]!.machine.id);
    const settings = Buffer.from(
      /<<'CML_RUNNER_SETTINGS'\n([\s\S]*?)\nCML_RUNNER_SETTINGS/.exec(vm.customData!)![1]!.replace(/\n/g, ''),
      'base64',
    ).toString('utf8');
    expect(settings.split('\0')).toEqual(expect.arrayContaining(['CREDENTIAL_FROM', 'azure-user-data']));
    expect(settings).not.toMatch(/RUNNER_TOKEN|RUNNER_JITCONFIG/);
    expect(vm.console()).not.toContain('no runner credential');
    await cleanupRunOf(sb, 'azure');
    expect(await settle(sb)).toEqual([]);
  });

  test('a VM that finds no credential in its user data ends, and says why', async () => {
    const launching = attemptLaunch(sb, { ...base, single: 'false', labels: 'cml-cred-none' });
    // Emptied between the VM's create and its boot (100 ms later here), as if already cleared.
    const vm = await until(
      'the VM is created',
      () => sb.azure.vms().find((v) => v.tags['cml-runner:runner'] && v.provisioningState === 'Creating'),
      20_000,
      2,
    );
    vm.userData = '';
    const { error } = await launching;
    expect(error?.message).toContain('ended before its runner came online');
    const serial = vm.console();
    expect(serial).toContain("no runner credential in this VM's user data");
    expect(serial).toContain('ending the machine: no runner credential');
    expect(sb.github.runners()).toEqual([]);
    expect(await settle(sb)).toEqual([]);
  });

  test('a clear that fails is a warning, and the runner stays', async () => {
    sb.faults.add({ service: 'azure', action: 'virtualMachines.update eastus', code: 'AuthorizationFailed', times: 1 });
    const log = new MemoryLog();
    const { result, error } = await attemptLaunch(
      sb,
      { ...base, single: 'false', labels: 'cml-cred-keep' },
      undefined,
      '4242',
      log,
    );
    expect(error).toBeUndefined();
    const name = result!.runners[0]!.name;
    const warnings = log.lines.filter((l) => l.startsWith('warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`${name}: after it came online`);
    expect(warnings[0]).toContain('AuthorizationFailed');
    expect(sb.github.runners().find((r) => r.name === name)?.status).toBe('online');
    // Left as it was: the user data still holds the token until the VM goes.
    const vm = await compute().virtualMachines.get(result!.runners[0]!.machine.id, 'runner', { expand: 'userData' });
    expect(Buffer.from(vm.userData!, 'base64').toString('utf8')).toMatch(/^RUNNER_TOKEN\0.+\0$/);
    await cleanupRunOf(sb, 'azure');
    expect(await settle(sb)).toEqual([]);
  });
});
