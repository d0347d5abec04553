#!/bin/bash
# Stand-in for actions/runner's config.sh (sandbox only). Same contract: flags or
# ACTIONS_RUNNER_INPUT_<NAME> environment variables, `config.sh remove --token T`.

user_id=$(id -u)
if [ "$user_id" -eq 0 ] && [ -z "$RUNNER_ALLOW_RUNASROOT" ]; then
    echo "Must not run with sudo"
    exit 1
fi

SOURCE="${BASH_SOURCE[0]}"
while [ -h "$SOURCE" ]; do
    DIR="$(cd -P "$(dirname "$SOURCE")" && pwd)"
    SOURCE="$(readlink "$SOURCE")"
    [[ $SOURCE != /* ]] && SOURCE="$DIR/$SOURCE"
done
DIR="$(cd -P "$(dirname "$SOURCE")" && pwd)"
cd "$DIR" || exit 1

if [ "$1" = "remove" ]; then
    shift
    "$DIR"/bin/Runner.Listener remove "$@"
else
    "$DIR"/bin/Runner.Listener configure "$@"
fi
