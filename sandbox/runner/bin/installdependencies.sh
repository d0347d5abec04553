#!/bin/bash
# Stand-in for actions/runner's bin/installdependencies.sh: needs root, then installs the
# .NET runtime's native dependencies with the distribution's package manager.

user_id=$(id -u)
if [ "$user_id" -ne 0 ]; then
    echo "Need to run with sudo privilege"
    exit 1
fi

echo "--------OS Information--------"
if [ -e /etc/os-release ]; then
    grep -E '^(ID|VERSION_ID)=' /etc/os-release
fi
echo "------------------------------"

if command -v apt-get >/dev/null 2>&1; then
    apt-get update && apt-get install -y libkrb5-3 zlib1g libssl3 libicu-dev liblttng-ust1
    status=$?
elif command -v dnf >/dev/null 2>&1; then
    dnf install -y lttng-ust openssl-libs krb5-libs zlib libicu
    status=$?
elif command -v yum >/dev/null 2>&1; then
    yum install -y lttng-ust openssl-libs krb5-libs zlib libicu
    status=$?
else
    echo "Can't detect current OS type based on /etc/os-release."
    echo "Can't install dotnet core dependencies."
    exit 1
fi

if [ "$status" -ne 0 ]; then
    echo "'apt-get|dnf|yum install' failed with exit code '$status'"
    echo "Can't install dotnet core dependencies."
    exit 1
fi

echo "-----------------------------"
echo " Finish Install Dependencies"
echo "-----------------------------"
