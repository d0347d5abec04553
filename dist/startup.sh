#!/bin/bash
# cml-runner-action: the machine's startup script.
#
# It runs once as root at first boot (cloud-init user data on EC2). Everything it prints goes
# to the machine's console, which the action reads back when a launch fails.
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
state_dir="$runner_home/state"
hooks_dir="$runner_home/hooks"
idle_timeout="$(get IDLE_TIMEOUT)"
max_lifetime="$(get MAX_LIFETIME)"
runner_pid=""

# Ending the machine is the one way out. The cloud turns the shutdown into deletion
# (on EC2: InstanceInitiatedShutdownBehavior=terminate).
end_machine() {
  trap - ERR
  log "ending the machine: $1"
  if [[ -n "$runner_pid" ]] && kill -0 "$runner_pid" 2>/dev/null; then
    kill -TERM "$runner_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "$runner_pid" 2>/dev/null || break
      sleep 1
    done
  fi
  shutdown -h now
  exit 0
}
trap 'end_machine "the startup script failed at line $LINENO"' ERR

log "starting runner $(get RUNNER_NAME) (max-lifetime ${max_lifetime}s, idle-timeout ${idle_timeout}s)"
mkdir -p "$runner_dir" "$state_dir" "$hooks_dir"

# The hard cap holds whatever happens below.
(
  sleep "$max_lifetime"
  log "max-lifetime of ${max_lifetime}s reached"
  shutdown -h now
) &

if [[ -n "$(get USER_SCRIPT)" ]]; then
  log "running the startup-script input"
  get USER_SCRIPT >"$runner_home/user-startup.sh"
  if ! bash "$runner_home/user-startup.sh"; then
    end_machine "the startup-script input failed"
  fi
fi

if command -v nvidia-smi >/dev/null 2>&1; then
  log "GPUs: $(nvidia-smi -L 2>&1 | tr '\n' ';')"
fi

case "$(uname -m)" in
  x86_64 | amd64) arch=X64 ;;
  aarch64 | arm64) arch=ARM64 ;;
  *) end_machine "unsupported architecture $(uname -m)" ;;
esac
download_url="$(get "DOWNLOAD_${arch}_URL")"
download_sha="$(get "DOWNLOAD_${arch}_SHA256")"
if [[ -x "$runner_dir/run.sh" ]]; then
  log "runner already present in $runner_dir"
else
  log "downloading the runner for $arch"
  curl -fsSL --retry 5 --retry-delay 2 --retry-all-errors -o "$runner_home/runner.tar.gz" "$download_url"
  if ! printf '%s  %s\n' "$download_sha" "$runner_home/runner.tar.gz" | sha256sum -c --quiet -; then
    end_machine "the runner download does not match its sha256 checksum"
  fi
  tar -xzf "$runner_home/runner.tar.gz" -C "$runner_dir"
  rm -f "$runner_home/runner.tar.gz"
  log "installing runner dependencies"
  "$runner_dir/bin/installdependencies.sh"
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

cd "$runner_dir"
if [[ -n "$(get RUNNER_JITCONFIG)" ]]; then
  log "starting the ephemeral runner from its just-in-time configuration"
  ACTIONS_RUNNER_INPUT_JITCONFIG="$(get RUNNER_JITCONFIG)" ./run.sh &
  runner_pid=$!
else
  log "registering the runner"
  config_args=(--unattended --url "$(get RUNNER_URL)" --name "$(get RUNNER_NAME)" --labels "$(get RUNNER_LABELS)" --work _work --disableupdate --replace)
  if [[ -n "$(get RUNNER_GROUP)" ]]; then
    config_args+=(--runnergroup "$(get RUNNER_GROUP)")
  fi
  ACTIONS_RUNNER_INPUT_TOKEN="$(get RUNNER_TOKEN)" ./config.sh "${config_args[@]}"
  ./run.sh &
  runner_pid=$!
fi
unset 'setting[RUNNER_JITCONFIG]' 'setting[RUNNER_TOKEN]'

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
end_machine "the runner exited with status $status"
