/**
 * Pod Security Admission, as the API server's PodSecurity plugin enforces it on a namespace
 * labelled `pod-security.kubernetes.io/enforce: baseline | restricted` (optionally with
 * `enforce-version`): a pod that breaks a control of that level is refused, with every broken
 * control named in one message. Workload objects such as Jobs are admitted; their pods are not.
 * The controls checked here are those a runner pod can break; their wording is the plugin's.
 * https://kubernetes.io/docs/concepts/security/pod-security-standards/ (2025-09, v1.34)
 * https://kubernetes.io/docs/concepts/security/pod-security-admission/ (2025-09, v1.34)
 */
import type { Json } from './status.js';

const LEVELS = ['privileged', 'baseline', 'restricted'] as const;
type Level = (typeof LEVELS)[number];

/** Capabilities the baseline level lets a container add. */
const BASELINE_CAPABILITIES = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);
const RESTRICTED_VOLUMES = [
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
];

interface Check {
  level: Exclude<Level, 'privileged'>;
  /** What the message calls the control. */
  title: string;
  /** Why the pod breaks it, or undefined. */
  run(pod: Json, containers: Json[]): string | undefined;
}

/** `container "a"` or `containers "a", "b"`, as the plugin names the offenders. */
function named(prefix: string, names: string[]): string {
  const quoted = names.map((n) => `"${n}"`).join(', ');
  return `${prefix}${names.length === 1 ? '' : 's'} ${quoted}`;
}

function offenders(containers: Json[], bad: (c: Json) => boolean): string[] {
  return containers.filter(bad).map((c) => c.name as string);
}

const CHECKS: Check[] = [
  // Baseline, then restricted; each in the plugin's order.
  {
    level: 'baseline',
    title: 'non-default capabilities',
    run: (_pod, cs) => {
      const added = [...new Set(cs.flatMap((c) => (c.securityContext?.capabilities?.add ?? []) as string[]))];
      const extra = added.filter((a) => !BASELINE_CAPABILITIES.has(a));
      if (extra.length === 0) return undefined;
      const who = offenders(cs, (c) =>
        ((c.securityContext?.capabilities?.add ?? []) as string[]).some((a) => !BASELINE_CAPABILITIES.has(a)),
      );
      return `${named('container', who)} must not include ${extra.map((e) => `"${e}"`).join(', ')} in securityContext.capabilities.add`;
    },
  },
  {
    level: 'baseline',
    title: 'host namespaces',
    run: (pod) => {
      const set = (['hostNetwork', 'hostPID', 'hostIPC'] as const).filter((f) => pod.spec?.[f] === true);
      return set.length > 0 ? set.map((f) => `${f}=true`).join(', ') : undefined;
    },
  },
  {
    level: 'baseline',
    title: 'hostPath volumes',
    run: (pod) => {
      const vols = ((pod.spec?.volumes ?? []) as Json[]).filter((v) => v.hostPath).map((v) => `"${v.name}"`);
      return vols.length > 0 ? `volume${vols.length === 1 ? '' : 's'} ${vols.join(', ')}` : undefined;
    },
  },
  {
    level: 'baseline',
    title: 'privileged',
    run: (_pod, cs) => {
      const who = offenders(cs, (c) => c.securityContext?.privileged === true);
      return who.length > 0 ? `${named('container', who)} must not set securityContext.privileged=true` : undefined;
    },
  },
  {
    level: 'restricted',
    title: 'allowPrivilegeEscalation != false',
    run: (_pod, cs) => {
      const who = offenders(cs, (c) => c.securityContext?.allowPrivilegeEscalation !== false);
      return who.length > 0
        ? `${named('container', who)} must set securityContext.allowPrivilegeEscalation=false`
        : undefined;
    },
  },
  {
    level: 'restricted',
    title: 'unrestricted capabilities',
    run: (_pod, cs) => {
      const noDrop = offenders(cs, (c) => !((c.securityContext?.capabilities?.drop ?? []) as string[]).includes('ALL'));
      const adds = offenders(cs, (c) =>
        ((c.securityContext?.capabilities?.add ?? []) as string[]).some((a) => a !== 'NET_BIND_SERVICE'),
      );
      const parts: string[] = [];
      if (noDrop.length > 0)
        parts.push(`${named('container', noDrop)} must set securityContext.capabilities.drop=["ALL"]`);
      if (adds.length > 0)
        parts.push(
          `${named('container', adds)} must not include capabilities other than NET_BIND_SERVICE in securityContext.capabilities.add`,
        );
      return parts.length > 0 ? parts.join('; ') : undefined;
    },
  },
  {
    level: 'restricted',
    title: 'restricted volume types',
    run: (pod) => {
      const bad = ((pod.spec?.volumes ?? []) as Json[]).filter(
        (v) => !Object.keys(v).some((k) => RESTRICTED_VOLUMES.includes(k)),
      );
      if (bad.length === 0) return undefined;
      return `volume${bad.length === 1 ? '' : 's'} ${bad.map((v) => `"${v.name}"`).join(', ')} use${bad.length === 1 ? 's' : ''} restricted volume type${bad.length === 1 ? '' : 's'}`;
    },
  },
  {
    level: 'restricted',
    title: 'runAsNonRoot != true',
    run: (pod, cs) => {
      const podValue = pod.spec?.securityContext?.runAsNonRoot;
      if (podValue === false) return 'pod must not set securityContext.runAsNonRoot=false';
      const who = offenders(cs, (c) =>
        c.securityContext?.runAsNonRoot === undefined ? podValue !== true : c.securityContext.runAsNonRoot !== true,
      );
      return who.length > 0
        ? `pod or ${named('container', who)} must set securityContext.runAsNonRoot=true`
        : undefined;
    },
  },
  {
    level: 'restricted',
    title: 'runAsUser=0',
    run: (pod, cs) => {
      if (pod.spec?.securityContext?.runAsUser === 0) return 'pod must not set runAsUser=0';
      const who = offenders(cs, (c) => c.securityContext?.runAsUser === 0);
      return who.length > 0 ? `${named('container', who)} must not set runAsUser=0` : undefined;
    },
  },
  {
    level: 'restricted',
    title: 'seccompProfile',
    run: (pod, cs) => {
      const ok = (t: unknown): boolean => t === 'RuntimeDefault' || t === 'Localhost';
      const podType = pod.spec?.securityContext?.seccompProfile?.type;
      const who = offenders(cs, (c) => {
        const t = c.securityContext?.seccompProfile?.type;
        return t === undefined ? !ok(podType) : !ok(t);
      });
      return who.length > 0
        ? `pod or ${named('container', who)} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"`
        : undefined;
    },
  },
];

/**
 * Why the namespace's enforced level refuses the pod (`violates PodSecurity "restricted:latest":
 * ...`), or undefined when it admits it.
 */
export function podSecurityViolation(namespaceLabels: Record<string, string>, pod: Json): string | undefined {
  const level = namespaceLabels['pod-security.kubernetes.io/enforce'] as Level | undefined;
  if (!level || !LEVELS.includes(level) || level === 'privileged') return undefined;
  const version = namespaceLabels['pod-security.kubernetes.io/enforce-version'] || 'latest';
  const containers = [...((pod.spec?.initContainers ?? []) as Json[]), ...((pod.spec?.containers ?? []) as Json[])];
  const applies = level === 'restricted' ? ['baseline', 'restricted'] : ['baseline'];
  const broken = CHECKS.filter((c) => applies.includes(c.level))
    .map((c) => [c.title, c.run(pod, containers)] as const)
    .filter(([, why]) => why !== undefined)
    .map(([title, why]) => `${title} (${why})`);
  return broken.length > 0 ? `violates PodSecurity "${level}:${version}": ${broken.join(', ')}` : undefined;
}
