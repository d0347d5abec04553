import { readFileSync } from 'node:fs';

/**
 * Renders the startup script. The template is static; values reach it only as base64 data
 * inside a quoted heredoc, so no input can become shell code. A value cannot hold a NUL byte
 * (inputs and environment variables cannot), which is what separates them.
 */

export interface RunnerDownload {
  url: string;
  sha256: string;
}

export type RunnerCredential = { jitConfig: string } | { registrationToken: string };

export interface StartupSettings {
  runnerName: string;
  labels: string[];
  /** `config.sh --url`: the repository or organisation URL. */
  url: string;
  /**
   * A just-in-time config (single runners) or a registration token (reusable runners). Absent
   * when the machine gets it apart from the script: a pod reads it from its Secret through
   * ACTIONS_RUNNER_INPUT_JITCONFIG or ACTIONS_RUNNER_INPUT_TOKEN.
   */
  credential?: RunnerCredential;
  /** The script is a container's command: it exits when done instead of shutting a VM down. */
  container?: boolean;
  group?: string;
  idleTimeoutSeconds: number;
  maxLifetimeSeconds: number;
  downloads: { X64?: RunnerDownload; ARM64?: RunnerDownload; version?: string };
  userScript?: string;
  /** A directory in the image holding an unpacked runner, used when its version matches. */
  runnerCache?: string;
  /** On a VM, the runner's unprivileged user may use sudo without a password. */
  sudo?: boolean;
  /**
   * Watch the cloud's spot interruption notice and stop the runner when it comes, so that its
   * job fails with the runner's shutdown message. `aws`: the EC2 instance metadata service.
   * `azure`: a Preempt scheduled event from the instance metadata service; the machine then
   * also deletes its own resource group, which an eviction leaves behind.
   */
  spotNotice?: 'aws' | 'azure';
  /**
   * On a VM, a local firewall rule keeps the runner's user (and so every job) from the EC2 instance
   * metadata service, which stays on for root's spot watch but holds the user data.
   */
  metadataRootOnly?: boolean;
  /**
   * How the machine ends itself besides a shutdown. `gcp`: it deletes its own instance through
   * the Compute Engine API at `apiUrl`, with its service account's token from the metadata
   * server, since a stopped instance keeps its disk; it powers off only if that is refused.
   */
  selfDelete?: { cloud: 'gcp' | 'azure'; apiUrl: string };
  /**
   * Where the machine reads its credential instead of the script. `azure-user-data`: the VM's
   * user data (`credentialUserData`), which the launcher empties once the runner is online.
   */
  credentialFrom?: 'azure-user-data';
}

/** What a cloud adds to every startup script it launches. */
export type CloudScriptSettings = Pick<
  StartupSettings,
  'spotNotice' | 'metadataRootOnly' | 'selfDelete' | 'credentialFrom'
>;

const TEMPLATE = readFileSync(new URL('./startup.sh', import.meta.url), 'utf8');

export function renderStartupScript(s: StartupSettings): string {
  const credential = s.credentialFrom ? undefined : s.credential;
  const settings: Record<string, string | undefined> = {
    RUNNER_NAME: s.runnerName,
    RUNNER_LABELS: s.labels.join(','),
    RUNNER_URL: s.url,
    RUNNER_GROUP: s.group,
    RUNNER_JITCONFIG: credential && 'jitConfig' in credential ? credential.jitConfig : undefined,
    RUNNER_TOKEN: credential && 'registrationToken' in credential ? credential.registrationToken : undefined,
    CREDENTIAL_FROM: s.credentialFrom,
    CONTAINER: s.container ? '1' : undefined,
    IDLE_TIMEOUT: String(s.idleTimeoutSeconds),
    MAX_LIFETIME: String(s.maxLifetimeSeconds),
    DOWNLOAD_X64_URL: s.downloads.X64?.url,
    DOWNLOAD_X64_SHA256: s.downloads.X64?.sha256,
    DOWNLOAD_ARM64_URL: s.downloads.ARM64?.url,
    DOWNLOAD_ARM64_SHA256: s.downloads.ARM64?.sha256,
    USER_SCRIPT: s.userScript,
    RUNNER_VERSION: s.downloads.version,
    RUNNER_CACHE: s.runnerCache,
    RUNNER_SUDO: s.sudo ? 'true' : undefined,
    SPOT_NOTICE: s.spotNotice,
    METADATA_ROOT_ONLY: s.metadataRootOnly ? '1' : undefined,
    SELF_DELETE: s.selfDelete?.cloud,
    COMPUTE_API_URL: s.selfDelete?.apiUrl,
  };
  // One base64 block of NUL-separated keys and values: the script decodes it with one process.
  const pairs = Object.entries(settings).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '');
  const block = Buffer.from(pairs.map(([k, v]) => `${k}\0${v}\0`).join(''), 'utf8').toString('base64');
  const lines = block.match(/.{1,76}/g) ?? [];
  return TEMPLATE.replace('@@SETTINGS@@', () => lines.join('\n'));
}

/** The credential as the script reads it from elsewhere: base64 of one pair, key NUL value NUL. */
export function credentialUserData(c: RunnerCredential): string {
  const [key, value] = 'jitConfig' in c ? ['RUNNER_JITCONFIG', c.jitConfig] : ['RUNNER_TOKEN', c.registrationToken];
  return Buffer.from(`${key}\0${value}\0`, 'utf8').toString('base64');
}
