#!/bin/bash
# Stand-in for actions/runner's run.sh (sandbox only). Like the real one it restarts the
# listener on exit code 2 and otherwise exits 0, unless RUNNER_MANUALLY_TRAP_SIG is set, in
# which case it forwards SIGINT/SIGTERM to the listener and exits with the helper's code.

SOURCE="${BASH_SOURCE[0]}"
while [ -h "$SOURCE" ]; do
    DIR="$(cd -P "$(dirname "$SOURCE")" && pwd)"
    SOURCE="$(readlink "$SOURCE")"
    [[ $SOURCE != /* ]] && SOURCE="$DIR/$SOURCE"
done
DIR="$(cd -P "$(dirname "$SOURCE")" && pwd)"

run() {
    while :; do
        cp -f "$DIR"/run-helper.sh.template "$DIR"/run-helper.sh
        "$DIR"/run-helper.sh "$@"
        returnCode=$?
        if [[ $returnCode -eq 2 ]]; then
            echo "Restarting runner..."
        else
            echo "Exiting runner..."
            exit 0
        fi
    done
}

runWithManualTrap() {
    set -m
    signaled=0
    _trap() {
        kill -INT -"$PID"
        signaled=1
    }
    trap '_trap' INT TERM
    while :; do
        cp -f "$DIR"/run-helper.sh.template "$DIR"/run-helper.sh
        "$DIR"/run-helper.sh "$@" &
        PID=$!
        wait "$PID"
        returnCode=$?
        if [ "$signaled" -eq 1 ]; then
            wait "$PID"
            returnCode=$?
        fi
        if [[ $returnCode -eq 2 ]]; then
            echo "Restarting runner..."
        else
            echo "Exiting runner..."
            trap - INT TERM
            exit "$returnCode"
        fi
    done
}

if [[ -z "$RUNNER_MANUALLY_TRAP_SIG" ]]; then
    run "$@"
else
    runWithManualTrap "$@"
fi
