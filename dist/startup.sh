#!/bin/bash
# cml-runner-action: the machine's startup script.
#
# On a VM it runs once as root at first boot (cloud-init user data on EC2). On Kubernetes it is
# the runner container's command (CONTAINER=1), possibly as a non-root user. Everything it
# prints goes to the machine's console or the pod log, which the action reads back when a
# launch fails.
#
# This file is a static template. The action never splices a value into it: every value
# arrives in the quoted heredoc below, base64 of NUL-separated keys and values, and is decoded
# as data.
set -euo pipefail
# What the script itself writes stays private: its state, the user's startup-script, the runner's
# registration files. What others run gets a login's umask instead (open_umask).
umask 077

# Builtins where a command would fork: a machine may boot among many, and every process counts.
log() { TZ=UTC0 printf '%(%Y-%m-%dT%H:%M:%SZ)T cml-runner: %s\n' -1 "$*"; }
now() { printf '%(%s)T\n' -1; }
# Runs a command with umask 022, as a login has: the user's startup-script, package installs and
# the runner with every job step, so a workspace is readable by a container job's other user.
open_umask() { (umask 022 && exec "$@"); }
# Makes a directory with this mode unless it is there; missing parents get the script's umask.
make_dir() {
  local parent="${2%/*}"
  [[ -d "$2" ]] && return 0
  [[ -z "$parent" || "$parent" == "$2" || -d "$parent" ]] || mkdir -p -- "$parent"
  mkdir -m "$1" -- "$2"
}

# The settings: one base64 block of NUL-separated keys and values, decoded by one process.
declare -A setting=()
while IFS= read -r -d '' key && IFS= read -r -d '' value; do
  setting["$key"]="$value"
done < <(base64 -d <<'CML_RUNNER_SETTINGS'
@@SETTINGS@@
CML_RUNNER_SETTINGS
)

# On Kubernetes the credential arrives from the pod's Secret as ACTIONS_RUNNER_INPUT_JITCONFIG
# or ACTIONS_RUNNER_INPUT_TOKEN, the variables the runner itself reads; on a VM, from settings.
# `unset` would not do: /proc/<pid>/environ keeps the environment a process was started with,
# and a job running as the same user can read it. So the script starts itself again (same pid)
# without them, handing the credential over on fd 3, a pipe read once and closed. Nothing the
# script starts inherits it: config.sh gets the token, the runner its JIT config, nothing else.
if [[ -n "${ACTIONS_RUNNER_INPUT_JITCONFIG:-}${ACTIONS_RUNNER_INPUT_TOKEN:-}" ]]; then
  exec 3< <(printf '%s\0%s\0' "${ACTIONS_RUNNER_INPUT_JITCONFIG:-}" "${ACTIONS_RUNNER_INPUT_TOKEN:-}")
  exec env -u ACTIONS_RUNNER_INPUT_JITCONFIG -u ACTIONS_RUNNER_INPUT_TOKEN CML_RUNNER_CREDENTIAL_FD=3 "$BASH" "$0"
fi
jit_config="${setting[RUNNER_JITCONFIG]:-}"
registration_token="${setting[RUNNER_TOKEN]:-}"
if [[ "${CML_RUNNER_CREDENTIAL_FD:-}" == 3 ]]; then
  handed_jit="" handed_token=""
  IFS= read -r -d '' -u 3 handed_jit || true
  IFS= read -r -d '' -u 3 handed_token || true
  exec 3<&-
  jit_config="${jit_config:-$handed_jit}"
  registration_token="${registration_token:-$handed_token}"
  unset handed_jit handed_token
fi
unset CML_RUNNER_CREDENTIAL_FD

# CREDENTIAL_FROM=azure-user-data: the credential is in the VM's user data, not in these settings
# (custom data, which any root process can read back, cannot be changed after creation; user
# data can, and the launcher empties it once the runner is online). The instance metadata
# service answers it as base64 of one pair: RUNNER_JITCONFIG or RUNNER_TOKEN, NUL, the value,
# NUL. It is read into memory only, for up to about two minutes while the service comes up.
# https://learn.microsoft.com/azure/virtual-machines/user-data
# https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service#get-user-data
if [[ "${setting[CREDENTIAL_FROM]:-}" == azure-user-data ]]; then
  user_data_url="${AZURE_POD_IDENTITY_AUTHORITY_HOST:-http://169.254.169.254}/metadata/instance/compute/userData"
  user_data=""
  if command -v curl >/dev/null 2>&1; then
    for attempt in {1..20}; do
      user_data="$(curl -sf --max-time 5 -H 'Metadata: true' "$user_data_url?api-version=2021-01-01&format=text")" &&
        break
      user_data=""
      [[ $attempt -lt 20 ]] && sleep 2
    done
  else
    log "no curl: cannot read the runner credential from this VM's user data"
  fi
  while IFS= read -r -d '' key && IFS= read -r -d '' value; do
    case "$key" in
      RUNNER_JITCONFIG) jit_config="$value" ;;
      RUNNER_TOKEN) registration_token="$value" ;;
    esac
  done < <(printf '%s' "$user_data" | base64 -d 2>/dev/null)
  unset user_data key value
  [[ -n "$jit_config$registration_token" ]] ||
    log "no runner credential in this VM's user data: it was empty or unreadable (already cleared?)"
fi

runner_home="${CML_RUNNER_HOME:-/opt/cml-runner}"
runner_dir="$runner_home/runner"
runner_version="${setting[RUNNER_VERSION]:-}"
container="${setting[CONTAINER]:-}"
state_dir="$runner_home/state"
hooks_dir="$runner_home/hooks"
idle_timeout="${setting[IDLE_TIMEOUT]:-0}"
max_lifetime="${setting[MAX_LIFETIME]:-86400}"
spot_notice="${setting[SPOT_NOTICE]:-}"
self_delete="${setting[SELF_DELETE]:-}"
compute_api="${setting[COMPUTE_API_URL]:-}"
runner_pid=""

# SELF_DELETE=gcp: a Compute Engine instance that shuts down is only stopped, and its disk still
# bills. So the machine deletes its own instance, with its service account's token from the
# metadata server (never written to disk or argv), and powers off only if that is refused.
# https://cloud.google.com/compute/docs/access/authenticate-workloads#applications
delete_own_instance() {
  local md="http://${GCE_METADATA_HOST:-metadata.google.internal}/computeMetadata/v1"
  local token_json token project zone name status
  command -v curl >/dev/null 2>&1 || { log "no curl: cannot delete this instance"; return 1; }
  token_json="$(curl -sf --max-time 5 -H 'Metadata-Flavor: Google' "$md/instance/service-accounts/default/token")" || {
    log "no service account token from the metadata server (the instance has no service account):" \
      "cannot delete this instance"
    return 1
  }
  [[ "$token_json" =~ \"access_token\":\ *\"([^\"]+)\" ]] ||
    { log "the metadata server gave no access token"; return 1; }
  token="${BASH_REMATCH[1]}"
  project="$(curl -sf --max-time 5 -H 'Metadata-Flavor: Google' "$md/project/project-id")" || return 1
  zone="$(curl -sf --max-time 5 -H 'Metadata-Flavor: Google' "$md/instance/zone")" || return 1
  name="$(curl -sf --max-time 5 -H 'Metadata-Flavor: Google' "$md/instance/name")" || return 1
  # The deletion may power the machine off before its answer arrives: say it first.
  log "asking Compute Engine to delete this instance ($name in ${zone##*/})"
  status="$(curl -s --max-time 30 -o "$runner_home/delete-instance.json" -w '%{http_code}' -X DELETE \
    -H @<(printf 'Authorization: Bearer %s\n' "$token") \
    "$compute_api/projects/$project/zones/${zone##*/}/instances/$name")" || status=000
  if [[ "$status" == 200 ]]; then
    log "Compute Engine accepted the deletion"
    return 0
  fi
  log "Compute Engine refused to delete this instance (HTTP $status):" \
    "$(head -c 400 "$runner_home/delete-instance.json" 2>/dev/null | tr '\n' ' ')"
  log "grant the instance's service account compute.instances.delete (see the README)," \
    "or let the cleanup job or sweep delete it"
  return 1
}

# SELF_DELETE=azure: a stopped Azure VM still bills, so the machine deletes its own resource
# group (everything of it is in there), with its managed identity's token from the instance
# metadata service. The identity has the VM role (docs/permissions/azure/vm-role.json) on that
# group only: it may delete the group or deallocate the VM, and write nothing.
# https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service
azure_imds="${AZURE_POD_IDENTITY_AUTHORITY_HOST:-http://169.254.169.254}"
az_token="" az_sub="" az_group="" az_vm_id=""

# The managed identity's token for Resource Manager, and the VM's subscription, resource group
# and resource id, from the instance metadata service (read once, kept in memory only).
azure_identity() {
  local token_json compute
  [[ -z "$az_token" ]] || return 0
  command -v curl >/dev/null 2>&1 || { log "no curl: cannot reach Azure Resource Manager"; return 1; }
  token_json="$(curl -sf --max-time 5 -H 'Metadata: true' --get --data-urlencode 'api-version=2018-02-01' \
    --data-urlencode "resource=$compute_api/" "$azure_imds/metadata/identity/oauth2/token")" || {
    log "no managed identity token from the instance metadata service: cannot reach Azure Resource Manager"
    return 1
  }
  [[ "$token_json" =~ \"access_token\":\ *\"([^\"]+)\" ]] ||
    { log "the instance metadata service gave no access token"; return 1; }
  local token="${BASH_REMATCH[1]}"
  compute="$(curl -sf --max-time 5 -H 'Metadata: true' \
    "$azure_imds/metadata/instance/compute?api-version=2021-02-01")" || return 1
  [[ "$compute" =~ \"subscriptionId\":\ *\"([^\"]+)\" ]] && az_sub="${BASH_REMATCH[1]}" || return 1
  [[ "$compute" =~ \"resourceGroupName\":\ *\"([^\"]+)\" ]] && az_group="${BASH_REMATCH[1]}" || return 1
  [[ "$compute" =~ \"resourceId\":\ *\"([^\"]+)\" ]] && az_vm_id="${BASH_REMATCH[1]}" || return 1
  az_token="$token"
}

# One Resource Manager call with the identity's token (never in argv): prints the HTTP status,
# 000 when nothing answered; the answer's body goes to $runner_home/arm.json.
arm_call() {
  local code
  code="$(curl -s --max-time 30 -o "$runner_home/arm.json" -w '%{http_code}' -X "$1" \
    -H @<(printf 'Authorization: Bearer %s\n' "$az_token") "$compute_api$2")" || code=000
  printf '%s' "$code"
}
arm_answer() { head -c 400 "$runner_home/arm.json" 2>/dev/null | tr '\n' ' '; }

delete_own_group() {
  local status group_url
  azure_identity || { log "cannot delete this machine's resource group"; return 1; }
  group_url="/subscriptions/$az_sub/resourcegroups/$az_group?api-version=2025-04-01"
  log "asking Azure to delete this machine's resource group $az_group"
  # A role assignment takes minutes to reach every ARM node: a refusal is retried for 5 minutes,
  # unless the identity can already read its group, which shows its role has arrived without
  # the right to delete.
  for attempt in 1 2 3 4 5 6 7 8 9 10 11; do
    status="$(arm_call DELETE "$group_url")"
    if [[ "$status" == 200 || "$status" == 202 ]]; then
      log "Azure accepted the deletion"
      return 0
    fi
    log "Azure refused to delete this machine's resource group (HTTP $status, try $attempt): $(arm_answer)"
    [[ "$status" == 401 || "$status" == 403 || "$status" == 429 || "$status" == 000 || "$status" == 5* ]] || break
    if [[ "$status" == 403 && "$(arm_call GET "$group_url")" == 200 ]]; then
      log "this machine's identity may read its resource group but not delete it"
      break
    fi
    [[ $attempt -lt 11 ]] && sleep 30
  done
  log "the cleanup job or a sweep must delete it; see the README for the role assignment the launch needs"
  return 1
}

# When its group cannot go, the VM at least deallocates itself: a VM that shuts down from inside
# is only stopped and its compute still bills; a deallocated one bills for its disk and address.
# https://learn.microsoft.com/azure/virtual-machines/states-billing
# https://learn.microsoft.com/rest/api/compute/virtual-machines/deallocate
deallocate_own_vm() {
  local status
  azure_identity || return 1
  log "asking Azure to deallocate this VM (${az_vm_id##*/} in $az_group)"
  for attempt in 1 2 3; do
    status="$(arm_call POST "$az_vm_id/deallocate?api-version=2026-04-01")"
    if [[ "$status" == 200 || "$status" == 202 ]]; then
      log "Azure accepted the deallocation"
      return 0
    fi
    log "Azure refused to deallocate this VM (HTTP $status, try $attempt): $(arm_answer)"
    [[ "$status" == 429 || "$status" == 000 || "$status" == 5* ]] || break
    [[ $attempt -lt 3 ]] && sleep 10
  done
  log "powering off into the stopped state, which still bills until the cleanup job or a sweep deletes the group"
  return 1
}

# Powers the machine off for good: the cloud deletes it (EC2 terminates on shutdown), or it
# deletes itself first (SELF_DELETE), then waits for the deletion to reach it.
power_off() {
  local deleting=""
  case "$self_delete" in
    gcp) delete_own_instance && deleting=1 ;;
    azure) { delete_own_group || deallocate_own_vm; } && deleting=1 ;;
  esac
  if [[ -n "$deleting" ]]; then
    sleep 120
    log "the machine is still here two minutes after Azure or Compute Engine accepted its end; powering off"
  fi
  shutdown -h now
}

# Ending the machine is the one way out. The cloud turns the shutdown into deletion
# (on EC2: InstanceInitiatedShutdownBehavior=terminate). A container has no shutdown: it exits,
# the Job completes (status 0) or fails, and ttlSecondsAfterFinished removes it.
end_machine() {
  local status="${2:-0}"
  trap - ERR TERM
  log "ending the machine: $1"
  # The listener gets SIGTERM itself: a running job fails with the runner's shutdown message,
  # reported before the machine goes.
  if [[ -n "$runner_pid" ]] && kill -0 -- "-$runner_pid" 2>/dev/null; then
    kill -TERM -- "-$runner_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 -- "-$runner_pid" 2>/dev/null || break
      sleep 1
    done
  fi
  if [[ -n "$container" ]]; then
    exit "$status"
  fi
  power_off
  exit 0
}
trap 'end_machine "the startup script failed at line $LINENO" 1' ERR
# In a container this script is process 1, which gets no default SIGTERM handler: without the
# trap, a deleted pod or an exceeded deadline would wait out the whole grace period.
if [[ -n "$container" ]]; then
  trap 'end_machine "received SIGTERM" 143' TERM
fi

log "starting runner ${setting[RUNNER_NAME]:-} (max-lifetime ${max_lifetime}s, idle-timeout ${idle_timeout}s)"

# On a VM this script runs as a boot service, cloud-init's scripts_user (EC2, Azure) or the guest
# agent (Compute Engine), as root with only PATH: no HOME, USER or LANG. The runner and every job
# step inherit that, and `git config --global` fails with "fatal: $HOME not set". So the login
# environment is set from the password database, keeping what is already set. A container keeps
# its image's environment.
if [[ -z "$container" ]]; then
  login_name="" login_home=""
  login_entry="$(getent passwd "$EUID" 2>/dev/null)" || login_entry=""
  IFS=: read -r login_name _ _ _ _ login_home _ <<<"$login_entry" || true
  if [[ -z "$login_name" ]]; then
    login_name="$(id -un 2>/dev/null)" || login_name=""
  fi
  if [[ -z "${HOME:-}" ]]; then
    if [[ -n "$login_home" ]]; then
      HOME="$login_home"
    elif [[ $EUID -eq 0 ]]; then
      HOME=/root
    else
      HOME="$runner_home"
    fi
  fi
  make_dir 700 "$HOME" || log "cannot create the home directory $HOME"
  export HOME USER="${USER:-$login_name}" LOGNAME="${LOGNAME:-$login_name}" LANG="${LANG:-C.UTF-8}"
  unset login_entry login_name login_home
fi

# The runner home is readable, as the runner's files in it are; the script's state is not.
make_dir 755 "$runner_home"
make_dir 700 "$state_dir"
make_dir 755 "$hooks_dir"

# A runner already in the image (the runner-cache input, or /home/runner in the official runner
# image) is used when its version is the one GitHub accepts; GitHub refuses older runners.
for cache in "${setting[RUNNER_CACHE]:-}" "${CML_RUNNER_PREINSTALLED:-}"; do
  [[ -n "$cache" && -x "$cache/run.sh" ]] || continue
  cached_version="$("$cache/bin/Runner.Listener" --version 2>/dev/null || true)"
  if [[ -z "$runner_version" || "$cached_version" == "$runner_version" ]]; then
    log "using the runner in $cache (${cached_version:-version unknown})"
    runner_dir="$cache"
    break
  fi
  log "not using the runner in $cache: it is ${cached_version:-of unknown version}, GitHub accepts $runner_version"
done
make_dir 755 "$runner_dir"

# The hard cap holds whatever happens below.
script_pid=$$
(
  sleep "$max_lifetime"
  log "max-lifetime of ${max_lifetime}s reached"
  if [[ -n "$container" ]]; then
    kill -TERM "$script_pid"
  else
    power_off
  fi
) &

case "$(uname -m)" in
  x86_64 | amd64) arch=X64 ;;
  aarch64 | arm64) arch=ARM64 ;;
  *) end_machine "unsupported architecture $(uname -m)" 1 ;;
esac

# Downloads, checks and unpacks the runner. It runs in the background, alongside the user's
# startup-script; its exit status says what went wrong (2: the checksum does not match).
fetch_runner() {
  local url sha
  # Run in the background, in a subshell of its own: curl and the runner's files get a login's umask.
  umask 022
  url="${setting[DOWNLOAD_${arch}_URL]:-}"
  sha="${setting[DOWNLOAD_${arch}_SHA256]:-}"
  if ! command -v curl >/dev/null 2>&1 && [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing curl"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends curl ca-certificates || return 1
  fi
  log "downloading the runner ${runner_version} for $arch"
  curl -fsSL --retry 5 --retry-delay 2 --retry-all-errors -o "$runner_home/runner.tar.gz" "$url" || return 1
  printf '%s  %s\n' "$sha" "$runner_home/runner.tar.gz" | sha256sum -c --quiet - || return 2
  tar -xzf "$runner_home/runner.tar.gz" -C "$runner_dir" || return 1
  rm -f "$runner_home/runner.tar.gz"
}
fetch_pid=""
if [[ ! -x "$runner_dir/run.sh" ]]; then
  fetch_runner >"$runner_home/fetch.log" 2>&1 &
  fetch_pid=$!
fi

if [[ -n "${setting[USER_SCRIPT]:-}" ]]; then
  log "running the startup-script input"
  printf '%s' "${setting[USER_SCRIPT]}" >"$runner_home/user-startup.sh"
  if ! open_umask bash "$runner_home/user-startup.sh"; then
    end_machine "the startup-script input failed" 1
  fi
fi

if command -v nvidia-smi >/dev/null 2>&1; then
  log "GPUs: $(nvidia-smi -L 2>&1 | tr '\n' ';')"
fi

if [[ -n "$fetch_pid" ]]; then
  fetch_status=0
  wait "$fetch_pid" || fetch_status=$?
  cat "$runner_home/fetch.log"
  case "$fetch_status" in
    0) ;;
    2) end_machine "the runner download does not match its sha256 checksum" 1 ;;
    *) end_machine "the runner download failed" 1 ;;
  esac
  # The runner's native libraries (ICU, OpenSSL, Kerberos) are installed only if it cannot start
  # without them; images that carry them (the Deep Learning AMIs) skip the package manager.
  if "$runner_dir/bin/Runner.Listener" --version >/dev/null 2>&1; then
    log "the runner's libraries are present"
  else
    log "installing runner dependencies"
    if [[ $EUID -eq 0 ]]; then
      open_umask "$runner_dir/bin/installdependencies.sh"
    elif sudo -n true 2>/dev/null; then
      open_umask sudo -n "$runner_dir/bin/installdependencies.sh"
    else
      log "not root and no sudo: skipping bin/installdependencies.sh," \
        "so the image must already have the runner's libraries"
    fi
  fi
fi

# On a VM the runner and every job run as an unprivileged user of their own, never as root: the
# timers that end the machine (max-lifetime, idle-timeout, the spot watch) are this script's
# processes, which that user cannot signal, and the script's state stays root's. The sudo input
# gives the user passwordless sudo, as GitHub-hosted runners have; job code can then become root.
# A container keeps the user its image and securityContext give it.
runner_user=""
if [[ -z "$container" && $EUID -eq 0 ]]; then
  runner_user=cml-runner
  if ! id -u "$runner_user" >/dev/null 2>&1; then
    useradd --create-home --user-group --shell /bin/bash "$runner_user"
  fi
  sudoers="${CML_RUNNER_SUDOERS:-/etc/sudoers.d}/cml-runner"
  if [[ "${setting[RUNNER_SUDO]:-}" == true ]]; then
    log "the runner user $runner_user may use sudo without a password (the sudo input)"
    printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$runner_user" >"$sudoers"
    chmod 440 "$sudoers"
  else
    rm -f "$sudoers"
  fi
  chown -R "$runner_user:$runner_user" "$runner_dir"
fi

# METADATA_ROOT_ONLY=1 (EC2 spot, no instance profile): the metadata service stays on for the spot
# watch, which is root's, and a local firewall rule refuses the runner's user, so no job reads the
# user data: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-limiting-access.html
# Without iptables (Amazon Linux 2023 images may lack it) nothing is installed, to keep boot short.
if [[ "${setting[METADATA_ROOT_ONLY]:-}" == 1 && -n "$runner_user" ]]; then
  metadata_url="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}"
  metadata_open="job code can read the metadata service, hence the user data"
  metadata_host="" metadata_port=80
  [[ "$metadata_url" != https://* ]] || metadata_port=443
  if [[ "$metadata_url" =~ ^https?://([0-9.]+)(:([0-9]+))?(/|$) ]]; then
    metadata_host="${BASH_REMATCH[1]}" metadata_port="${BASH_REMATCH[3]:-$metadata_port}"
  fi
  if [[ -z "$metadata_host" ]]; then
    log "$metadata_open: no firewall rule for an endpoint that is not IPv4 ($metadata_url)"
  elif ! command -v iptables >/dev/null; then
    log "$metadata_open: iptables is not installed"
  elif iptables --append OUTPUT --proto tcp --destination "$metadata_host" --dport "$metadata_port" \
    --match owner --uid-owner "$runner_user" --jump REJECT; then
    log "the metadata service answers root only: a firewall rule refuses the runner user $runner_user"
  else
    log "$metadata_open: iptables refused the firewall rule"
  fi
fi

# The runner's own job hooks mark activity for the idle watchdog, in a folder the runner's user
# may write: a job can keep its machine busy, never past max-lifetime.
activity_dir="$runner_home/activity"
make_dir 755 "$activity_dir"
[[ -z "$runner_user" ]] || chown "$runner_user:$runner_user" "$activity_dir"
cat >"$hooks_dir/job-started.sh" <<'HOOK'
#!/bin/bash
activity_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../activity" && pwd)"
touch "$activity_dir/busy"
printf '%(%s)T\n' -1 >"$activity_dir/last-activity"
HOOK
cat >"$hooks_dir/job-completed.sh" <<'HOOK'
#!/bin/bash
activity_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../activity" && pwd)"
rm -f "$activity_dir/busy"
printf '%(%s)T\n' -1 >"$activity_dir/last-activity"
HOOK
chmod 755 "$hooks_dir/job-started.sh" "$hooks_dir/job-completed.sh"
export ACTIONS_RUNNER_HOOK_JOB_STARTED="$hooks_dir/job-started.sh"
export ACTIONS_RUNNER_HOOK_JOB_COMPLETED="$hooks_dir/job-completed.sh"
# The runner refuses root unless told: only a container whose image runs as root needs it.
if [[ $EUID -eq 0 && -z "$runner_user" ]]; then
  export RUNNER_ALLOW_RUNASROOT=1
fi
now >"$activity_dir/last-activity"
[[ -z "$runner_user" ]] || chown "$runner_user:$runner_user" "$activity_dir/last-activity"

# Runs a command with this umask as the runner's user (on a VM; runuser sets HOME, USER, LOGNAME and
# SHELL for that user and keeps the rest), or as this script's user.
as_runner() {
  local mask="$1"
  shift
  if [[ -n "$runner_user" ]]; then
    (umask "$mask" && exec runuser -u "$runner_user" -- "$@")
  else
    (umask "$mask" && exec "$@")
  fi
}

# The runner runs in its own process group (runner_pid), which end_machine signals, with a login's
# umask; config.sh before it writes the registration files under the script's own.
start_runner() {
  set -m
  as_runner 022 ./run.sh &
  runner_pid=$!
  set +m
}
cd "$runner_dir"
if [[ -n "$jit_config" ]]; then
  log "starting the ephemeral runner from its just-in-time configuration"
  ACTIONS_RUNNER_INPUT_JITCONFIG="$jit_config" start_runner
elif [[ -z "$registration_token" ]]; then
  end_machine "no runner credential: neither a just-in-time configuration nor a registration token was given" 1
else
  log "registering the runner"
  config_args=(--unattended --url "${setting[RUNNER_URL]:-}" --name "${setting[RUNNER_NAME]:-}"
    --labels "${setting[RUNNER_LABELS]:-}" --work _work --disableupdate --replace)
  if [[ -n "${setting[RUNNER_GROUP]:-}" ]]; then
    config_args+=(--runnergroup "${setting[RUNNER_GROUP]}")
  fi
  ACTIONS_RUNNER_INPUT_TOKEN="$registration_token" as_runner 077 ./config.sh "${config_args[@]}"
  start_runner
fi
unset 'setting[RUNNER_JITCONFIG]' 'setting[RUNNER_TOKEN]' jit_config registration_token

# SPOT_NOTICE=aws: EC2 publishes meta-data/spot/instance-action two minutes before a spot
# interruption (404 until then); the runner stops at once, so its job fails visibly.
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html
imds="${AWS_EC2_METADATA_SERVICE_ENDPOINT:-http://169.254.169.254}"
imds_token="" imds_token_until=0 spot_check_at=0
check_spot_notice() {
  local notice action=interrupt
  spot_check_at=$((now_s + 5))
  if [[ "$now_s" -ge "$imds_token_until" ]]; then
    imds_token="$(curl -sf --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' \
      "$imds/latest/api/token")" || return 0
    imds_token_until=$((now_s + 21000))
  fi
  notice="$(curl -sf --max-time 2 -H "X-aws-ec2-metadata-token: $imds_token" \
    "$imds/latest/meta-data/spot/instance-action")" || return 0
  [[ "$notice" =~ \"time\":\ *\"([^\"]+)\" ]] || return 0
  local at="${BASH_REMATCH[1]}"
  [[ "$notice" =~ \"action\":\ *\"([a-z]+)\" ]] && action="${BASH_REMATCH[1]}"
  log "spot interruption notice: AWS will $action this machine at $at; stopping the runner so its job fails visibly"
  end_machine "spot interruption at $at" 1
}

# SPOT_NOTICE=azure: Azure posts a Preempt scheduled event for this Spot VM at least 30 s before
# it evicts it. The eviction deletes the VM and its disk but not its group, whose address still
# bills, so on the notice the runner stops (its job fails visibly) and the machine deletes its
# group. The first request enables the service and may take two minutes: it is made in the
# background when the watch begins.
# https://learn.microsoft.com/azure/virtual-machines/linux/scheduled-events
scheduled_events="$azure_imds/metadata/scheduledevents?api-version=2020-07-01"
az_vm_name=""
check_preempt_event() {
  local doc event at="" re_event='\{[^{}]*"EventType" *: *"Preempt"[^{}]*\}'
  local re_resources='"Resources" *: *\[([^]]*)\]' re_not_before='"NotBefore" *: *"([^"]*)"'
  spot_check_at=$((now_s + 5))
  if [[ -z "$az_vm_name" ]]; then
    az_vm_name="$(curl -sf --max-time 2 -H 'Metadata: true' \
      "$azure_imds/metadata/instance/compute/name?api-version=2021-02-01&format=text")" || return 0
  fi
  doc="$(curl -sf --max-time 2 -H 'Metadata: true' "$scheduled_events")" || return 0
  while [[ "$doc" =~ $re_event ]]; do
    event="${BASH_REMATCH[0]}"
    doc="${doc#*"$event"}"
    [[ "$event" =~ $re_resources && "${BASH_REMATCH[1]}" == *"\"$az_vm_name\""* ]] || continue
    [[ "$event" =~ $re_not_before ]] && at="${BASH_REMATCH[1]}"
    log "spot eviction notice: Azure will evict this VM at ${at:-once}; stopping the runner so its job fails visibly"
    end_machine "spot eviction at ${at:-once}" 1
  done
}
[[ -z "$spot_notice" ]] || command -v curl >/dev/null 2>&1 ||
  { log "no curl: not watching for spot interruption notices"; spot_notice=""; }
if [[ "$spot_notice" == azure ]]; then
  curl -sf --max-time 150 -H 'Metadata: true' "$scheduled_events" >/dev/null 2>&1 &
fi

# Idle watchdog: the machine ends after idle-timeout seconds with no job (0 means never). It
# waits on a pipe that never delivers, so a second passes without starting a process.
exec {tick}<> <(:)
while kill -0 "$runner_pid" 2>/dev/null; do
  read -r -t 1 -u "$tick" _ || true
  printf -v now_s '%(%s)T' -1
  if [[ -n "$spot_notice" && "$now_s" -ge "$spot_check_at" ]]; then
    if [[ "$spot_notice" == azure ]]; then check_preempt_event; else check_spot_notice; fi
  fi
  if [[ "$idle_timeout" -gt 0 && ! -e "$activity_dir/busy" ]]; then
    read -r last_activity <"$activity_dir/last-activity" || last_activity=$now_s
    idle=$((now_s - last_activity))
    if [[ "$idle" -ge "$idle_timeout" ]]; then
      end_machine "idle for ${idle}s (idle-timeout ${idle_timeout}s)"
    fi
  fi
done
status=0
wait "$runner_pid" || status=$?
end_machine "the runner exited with status $status" "$status"
