#!/bin/bash
# cml-runner-action: the machine's startup script.
#
# On a VM it runs once as root at first boot (cloud-init user data on EC2). On Kubernetes it is
# the runner container's command (CONTAINER=1), possibly as a non-root user. Everything it
# prints goes to the machine's console or the pod log, which the action reads back when a
# launch fails.
#
# This file is a static template. The action never splices a value into it: every value
# arrives in the quoted heredoc below as KEY=base64 lines and is decoded as data.
set -euo pipefail
umask 077

log() { printf '%s cml-runner: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

declare -A setting=()
while read -r line; do
  [[ "$line" == *=* ]] || continue
  setting["${line%%=*}"]="$(printf '%s' "${line#*=}" | base64 -d)"
done <<'CML_RUNNER_SETTINGS'
@@SETTINGS@@
CML_RUNNER_SETTINGS

get() { printf '%s' "${setting[$1]:-}"; }

runner_home="${CML_RUNNER_HOME:-/opt/cml-runner}"
runner_dir="$runner_home/runner"
runner_version="$(get RUNNER_VERSION)"
container="$(get CONTAINER)"
state_dir="$runner_home/state"
hooks_dir="$runner_home/hooks"
idle_timeout="$(get IDLE_TIMEOUT)"
max_lifetime="$(get MAX_LIFETIME)"
runner_pid=""

# Ending the machine is the one way out. The cloud turns the shutdown into deletion
# (on EC2: InstanceInitiatedShutdownBehavior=terminate). A container has no shutdown: it exits,
# the Job completes (status 0) or fails, and ttlSecondsAfterFinished removes it.
end_machine() {
  local status="${2:-0}"
  trap - ERR TERM
  log "ending the machine: $1"
  if [[ -n "$runner_pid" ]] && kill -0 "$runner_pid" 2>/dev/null; then
    kill -TERM "$runner_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "$runner_pid" 2>/dev/null || break
      sleep 1
    done
  fi
  if [[ -n "$container" ]]; then
    exit "$status"
  fi
  shutdown -h now
  exit 0
}
trap 'end_machine "the startup script failed at line $LINENO" 1' ERR
# In a container this script is process 1, which gets no default SIGTERM handler: without the
# trap, a deleted pod or an exceeded deadline would wait out the whole grace period.
if [[ -n "$container" ]]; then
  trap 'end_machine "received SIGTERM" 143' TERM
fi

log "starting runner $(get RUNNER_NAME) (max-lifetime ${max_lifetime}s, idle-timeout ${idle_timeout}s)"
mkdir -p "$state_dir" "$hooks_dir"

# A runner already in the image (the runner-cache input, or /home/runner in the official runner
# image) is used when its version is the one GitHub accepts; GitHub refuses older runners.
for cache in "$(get RUNNER_CACHE)" "${CML_RUNNER_PREINSTALLED:-}"; do
  [[ -n "$cache" && -x "$cache/run.sh" ]] || continue
  cached_version="$("$cache/bin/Runner.Listener" --version 2>/dev/null || true)"
  if [[ -z "$runner_version" || "$cached_version" == "$runner_version" ]]; then
    log "using the runner in $cache (${cached_version:-version unknown})"
    runner_dir="$cache"
    break
  fi
  log "not using the runner in $cache: it is ${cached_version:-of unknown version}, GitHub accepts $runner_version"
done
mkdir -p "$runner_dir"

# The hard cap holds whatever happens below.
script_pid=$$
(
  sleep "$max_lifetime"
  log "max-lifetime of ${max_lifetime}s reached"
  if [[ -n "$container" ]]; then
    kill -TERM "$script_pid"
  else
    shutdown -h now
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
  url="$(get "DOWNLOAD_${arch}_URL")"
  sha="$(get "DOWNLOAD_${arch}_SHA256")"
  if ! command -v curl >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
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

if [[ -n "$(get USER_SCRIPT)" ]]; then
  log "running the startup-script input"
  get USER_SCRIPT >"$runner_home/user-startup.sh"
  if ! bash "$runner_home/user-startup.sh"; then
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
    if [[ "$(id -u)" == 0 ]]; then
      "$runner_dir/bin/installdependencies.sh"
    elif sudo -n true 2>/dev/null; then
      sudo -n "$runner_dir/bin/installdependencies.sh"
    else
      log "not root and no sudo: skipping bin/installdependencies.sh, so the image must already have the runner's libraries"
    fi
  fi
fi

# The runner's own job hooks mark activity for the idle watchdog.
cat >"$hooks_dir/job-started.sh" <<'HOOK'
#!/bin/bash
state_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../state" && pwd)"
touch "$state_dir/busy"
date +%s >"$state_dir/last-activity"
HOOK
cat >"$hooks_dir/job-completed.sh" <<'HOOK'
#!/bin/bash
state_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../state" && pwd)"
rm -f "$state_dir/busy"
date +%s >"$state_dir/last-activity"
HOOK
chmod 755 "$hooks_dir/job-started.sh" "$hooks_dir/job-completed.sh"
export ACTIONS_RUNNER_HOOK_JOB_STARTED="$hooks_dir/job-started.sh"
export ACTIONS_RUNNER_HOOK_JOB_COMPLETED="$hooks_dir/job-completed.sh"
export RUNNER_ALLOW_RUNASROOT=1
date +%s >"$state_dir/last-activity"

# On Kubernetes the credential arrives from the pod's Secret as ACTIONS_RUNNER_INPUT_JITCONFIG
# or ACTIONS_RUNNER_INPUT_TOKEN, the variables the runner itself reads; on a VM, from settings.
jit_config="$(get RUNNER_JITCONFIG)"
jit_config="${jit_config:-${ACTIONS_RUNNER_INPUT_JITCONFIG:-}}"
registration_token="$(get RUNNER_TOKEN)"
registration_token="${registration_token:-${ACTIONS_RUNNER_INPUT_TOKEN:-}}"
unset ACTIONS_RUNNER_INPUT_JITCONFIG ACTIONS_RUNNER_INPUT_TOKEN

cd "$runner_dir"
if [[ -n "$jit_config" ]]; then
  log "starting the ephemeral runner from its just-in-time configuration"
  ACTIONS_RUNNER_INPUT_JITCONFIG="$jit_config" ./run.sh &
  runner_pid=$!
elif [[ -z "$registration_token" ]]; then
  end_machine "no runner credential: neither a just-in-time configuration nor a registration token was given" 1
else
  log "registering the runner"
  config_args=(--unattended --url "$(get RUNNER_URL)" --name "$(get RUNNER_NAME)" --labels "$(get RUNNER_LABELS)" --work _work --disableupdate --replace)
  if [[ -n "$(get RUNNER_GROUP)" ]]; then
    config_args+=(--runnergroup "$(get RUNNER_GROUP)")
  fi
  ACTIONS_RUNNER_INPUT_TOKEN="$registration_token" ./config.sh "${config_args[@]}"
  ./run.sh &
  runner_pid=$!
fi
unset 'setting[RUNNER_JITCONFIG]' 'setting[RUNNER_TOKEN]' jit_config registration_token

# Idle watchdog: the machine ends after idle-timeout seconds with no job (0 means never).
while kill -0 "$runner_pid" 2>/dev/null; do
  sleep 1
  if [[ "$idle_timeout" -gt 0 && ! -e "$state_dir/busy" ]]; then
    idle=$(($(date +%s) - $(cat "$state_dir/last-activity")))
    if [[ "$idle" -ge "$idle_timeout" ]]; then
      end_machine "idle for ${idle}s (idle-timeout ${idle_timeout}s)"
    fi
  fi
done
status=0
wait "$runner_pid" || status=$?
end_machine "the runner exited with status $status" "$status"
