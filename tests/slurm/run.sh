#!/usr/bin/env bash
# Test profiles/slurm against a real single-node SLURM (issue #7).
#
#   bash tests/slurm/run.sh [CONFIGFILE]      # from the repository root, as root; default tests/smoke/config.yaml
#
# 1. installs munge + SLURM 22.05 (Debian packages) if missing, and snakemake-executor-plugin-slurm into the
#    Python environment given by $PYTHON (else the active venv, else python3) if missing;
# 2. starts a private munged (as user munge, own socket), slurmctld -D and slurmd -D (own config, state dir and
#    free ports; /etc/slurm is not touched) and waits until sinfo shows the node idle;
# 3. runs the top-level Snakefile with --configfile CONFIGFILE locally (profiles/local) and through SLURM
#    (--profile profiles/slurm, partition on the command line), each into its own results dir, and compares
#    the results (tests/slurm/compare_results.py); prints the SLURM jobs (scontrol/squeue) and counts the
#    sbatch submissions against the Snakemake jobs;
# 4. checks that a failing job (tests/slurm/failing/Snakefile) makes Snakemake exit non-zero within a timeout;
# 5. always stops the daemons it started, by their PIDs (trap EXIT), and checks that none is left.
#
# Environment:
#   PYTHON                    interpreter with xasnmf + snakemake (default: $VIRTUAL_ENV/bin/python, python3)
#   SLURM_TEST_LOCAL_RESULTS  results dir of an existing local run of the same CONFIGFILE: compared against
#                             instead of running the config locally again (saves the local run's time)
#   SLURM_TEST_TIMEOUT        limit in s for each run of CONFIGFILE (default 480)
#   SLURM_TEST_FAIL_TIMEOUT   limit in s for the failing-job run (default 180)
#   SLURM_TEST_TOY=1          also run the self-test workflow tests/slurm/toy (run alone when CONFIGFILE is missing)
#   SLURM_TEST_SKIP_WORKFLOW=1  only the failing-job check
#   SLURM_TEST_CORES          --cores of the SLURM run = the CPU width of a group job (default: the node's CPUs)
#   SLURM_TEST_KEEP=1         keep the work dir under /tmp (logs, results, slurm.conf)
set -euo pipefail

T0=$SECONDS
log() { printf '[slurm-test %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() { log "FAIL: $*"; exit 1; }

CONFIGFILE=${1:-tests/smoke/config.yaml}
REPO=$(pwd)
[[ -f "$REPO/profiles/slurm/config.yaml" && -f "$REPO/tests/slurm/slurm.conf.in" ]] \
    || die "run from the repository root (profiles/slurm/config.yaml not found in $REPO)"
[[ $(id -u) -eq 0 ]] || die "needs root (apt-get, munge user, slurmd)"

# ---------------------------------------------------------------- Python environment
if [[ -n "${PYTHON:-}" ]]; then PY=$PYTHON
elif [[ -n "${VIRTUAL_ENV:-}" ]]; then PY=$VIRTUAL_ENV/bin/python
else PY=$(command -v python3); fi
PY=$(command -v "$PY") || die "python interpreter not found"
export PATH="$(dirname "$PY"):$PATH"          # the workflow's shell commands (xasnmf CLI) and the SLURM jobs
SNAKEMAKE=("$PY" -m snakemake)
log "python: $PY ($("$PY" -c 'import snakemake; print("snakemake", snakemake.__version__)'))"
if ! "$PY" -c "import snakemake_executor_plugin_slurm" 2>/dev/null; then
    log "installing snakemake-executor-plugin-slurm"
    timeout 180 "$PY" -m pip install -q "snakemake-executor-plugin-slurm>=2.8,<3" || die "pip install failed"
fi
PLUGIN_VERSION=$("$PY" -c 'import importlib.metadata as m; print(m.version("snakemake-executor-plugin-slurm"))')
log "snakemake-executor-plugin-slurm $PLUGIN_VERSION"

# ---------------------------------------------------------------- packages (idempotent)
need=()
for c in munged slurmctld slurmd sbatch; do command -v "$c" >/dev/null || need+=("$c"); done
if ((${#need[@]})); then
    log "installing munge slurmctld slurmd slurm-client (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    timeout 120 apt-get update -qq >/dev/null || die "apt-get update failed"
    timeout 180 apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null \
        || die "apt-get install failed"
fi
log "slurm $(dpkg-query -W -f '${Version}' slurm-client 2>/dev/null || echo ?)"

# ---------------------------------------------------------------- work dir, daemons, cleanup
WORK=$(mktemp -d /tmp/xasnmf-slurm-test.XXXXXX)
chmod 755 "$WORK"
PIDS=()          # "name:pid" of every daemon this script started
cleanup() {
    local rc=$? entry name pid i left=0
    trap - EXIT INT TERM
    set +e
    if [[ -n "${FAIL_PID:-}" ]] && kill -0 "$FAIL_PID" 2>/dev/null; then   # our background failing-job run
        pkill -TERM -P "$FAIL_PID" 2>/dev/null; kill -TERM "$FAIL_PID" 2>/dev/null; wait "$FAIL_PID" 2>/dev/null
    fi
    if [[ -n "${SLURM_CONF:-}" && -f "${SLURM_CONF}" ]] && ((${#PIDS[@]})); then
        timeout 10 scancel --quiet --user=root 2>/dev/null        # only this private cluster's jobs
        for i in $(seq 20); do
            [[ -z $(timeout 5 squeue -h -t running,completing,pending -o %i 2>/dev/null) ]] && break
            sleep 0.5
        done
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do                # reverse start order: slurmd, slurmctld, munged
        entry=${PIDS[i]}; name=${entry%%:*}; pid=${entry##*:}
        kill -TERM "$pid" 2>/dev/null
    done
    for entry in "${PIDS[@]}"; do
        name=${entry%%:*}; pid=${entry##*:}
        for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) ignored SIGTERM, sending SIGKILL"; kill -KILL "$pid" 2>/dev/null; sleep 0.5
        fi
        if kill -0 "$pid" 2>/dev/null; then log "LEFT BEHIND: $name pid $pid"; left=1
        else log "stopped $name (pid $pid)"; fi
    done
    # slurmstepd processes of this cluster are found through its spool dir (never by process name alone)
    if [[ -d "$WORK/state/d" ]] && pgrep -f "$WORK/" >/dev/null 2>&1; then
        log "LEFT BEHIND: processes mentioning $WORK:"; pgrep -af "$WORK/"; left=1
    fi
    if [[ "${SLURM_TEST_KEEP:-0}" != 1 ]]; then rm -rf "$WORK"; else log "kept $WORK"; fi
    ((left)) && rc=1
    log "done, exit $rc, total ${SECONDS}s"
    exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# munge: a private daemon with its own socket, so that an existing munged (or another test) is left alone
mkdir -p "$WORK/munge"
chown munge:munge "$WORK/munge"; chmod 755 "$WORK/munge"   # munged wants x for all on the socket dir
MUNGE_KEY=/etc/munge/munge.key
if [[ ! -s $MUNGE_KEY ]]; then
    log "creating $MUNGE_KEY"
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then mungekey --create --keyfile="$MUNGE_KEY"
    else dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none; fi
    chown munge:munge "$MUNGE_KEY"; chmod 400 "$MUNGE_KEY"
fi
MUNGE_SOCKET=$WORK/munge/munge.socket
setpriv --reuid=munge --regid=munge --init-groups \
    munged --foreground --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" --pid-file="$WORK/munge/munged.pid" \
    --seed-file="$WORK/munge/munged.seed" --log-file="$WORK/munge/munged.log" --num-threads=2 \
    >"$WORK/munge/stdout" 2>&1 &
PIDS+=("munged:$!")
for i in $(seq 50); do [[ -S $MUNGE_SOCKET ]] && break; sleep 0.1; done
munge --socket="$MUNGE_SOCKET" -n | unmunge --socket="$MUNGE_SOCKET" >/dev/null \
    || { cat "$WORK/munge/stdout" "$WORK/munge/munged.log" 2>/dev/null; die "munged does not work"; }
log "munged up (pid ${PIDS[0]##*:}, socket $MUNGE_SOCKET)"

# slurm.conf from the template: node line from `slurmd -C`, free ports, state under $WORK
NODE_LINE=$(slurmd -C | head -1)
NODE=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' <<<"$NODE_LINE")
NODE_CPUS=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")
mkdir -p "$WORK/state/ctld" "$WORK/state/d"
export SLURM_CONF=$WORK/slurm.conf
sed -e "s|@CLUSTER@|xasnmftest|" -e "s|@HOST@|$NODE|" -e "s|@CTLD_PORT@|$(free_port)|" \
    -e "s|@SLURMD_PORT@|$(free_port)|" -e "s|@STATE@|$WORK/state|g" -e "s|@NODE_LINE@|$NODE_LINE|" \
    -e "s|@NODE@|$NODE|" "$REPO/tests/slurm/slurm.conf.in" >"$SLURM_CONF"
printf 'AuthInfo=socket=%s\n' "$MUNGE_SOCKET" >>"$SLURM_CONF"
log "slurm.conf: $SLURM_CONF ($NODE_LINE)"
# Inside a job the plugin's jobstep executor (snakemake-executor-plugin-slurm-jobstep 0.6) starts each job
# with `srun` under an environment stripped of all SLURM_* variables except the job's identity, SLURM_CONF
# included (cf. snakemake-executor-plugin-slurm#164), so the nested srun would not find this private config.
# Real clusters keep slurm.conf where srun looks by default; here a wrapper on PATH puts SLURM_CONF back.
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nSLURM_CONF=%s exec %s "$@"\n' "$SLURM_CONF" "$(command -v srun)" >"$WORK/bin/srun"
chmod 755 "$WORK/bin/srun"
export PATH="$WORK/bin:$PATH"

slurmctld -D -f "$SLURM_CONF" >"$WORK/state/slurmctld.out" 2>&1 &
PIDS+=("slurmctld:$!")
slurmd -D -f "$SLURM_CONF" >"$WORK/state/slurmd.out" 2>&1 &
PIDS+=("slurmd:$!")
up=0
for i in $(seq 60); do
    state=$(timeout 5 sinfo -h -n "$NODE" -o %t 2>/dev/null || true)
    [[ $state == idle ]] && { up=1; break; }
    for entry in "${PIDS[@]}"; do kill -0 "${entry##*:}" 2>/dev/null || { up=-1; break 2; }; done
    sleep 1
done
if ((up != 1)); then
    tail -n 20 "$WORK/state/slurmctld.out" "$WORK/state/slurmd.out" "$WORK/state/"*.log 2>/dev/null
    die "SLURM node not idle after 60 s (state '${state:-?}')"
fi
log "SLURM up: slurmctld pid ${PIDS[1]##*:}, slurmd pid ${PIDS[2]##*:}"
sinfo
scontrol show config | grep -E '^(MinJobAge|SelectType|DefMemPerCPU|AccountingStorageType) '

# ---------------------------------------------------------------- helpers
CORES=${SLURM_TEST_CORES:-$NODE_CPUS}
# Settings on top of profiles/slurm that only this test cluster needs (documented in profiles/slurm/README.md):
SLURM_ARGS=(
    --profile "$REPO/profiles/slurm"
    --default-resources slurm_partition=debug  # the partition, on the command line
    --cores "$CORES"                           # a group must fit this 2-CPU node (profile: 8)
    --slurm-status-command squeue              # no slurmdbd here: sacct fails
    --slurm-init-seconds-before-status-checks 3  # poll soon (profile: 40 s); MinJobAge=600 >= 3 x 3
    --slurm-keep-successful-logs               # keep every job's log, to count the submissions
    --nolock                                   # other runs may use this checkout; results dirs are separate
)

# jobs of one snakemake run, from its "Job stats" table
job_total() { awk '/^Job stats:/{f=1} f && $1=="total"{print $2; exit}' "$1"; }

show_jobs() {   # $1 = label; the SLURM jobs this run submitted (MinJobAge keeps finished ones listed)
    local name=$2
    log "$1: SLURM jobs (squeue --states=all)"
    squeue -h --states=all --name="$name" -o '%.6i %.10T %.4C %.8m %.10l %.9P %k' | sort -n
    log "$1: per job, from scontrol show job"
    scontrol -o show job 2>/dev/null | grep -F "JobName=$name " | sed -E \
        's/.*JobId=([0-9]+).* JobState=([A-Z]+).* ExitCode=([0-9:]+).* NumCPUs=([0-9]+).* MinMemoryNode=([0-9A-Za-z]+).* Comment=([^ ]*).*/  job \1 \2 exit=\3 cpus=\4 mem=\5 \6/' \
        | sort -t' ' -k4n
}

run_uuid_of() { sed -n 's/.*SLURM run ID: \([A-Za-z0-9_-]*\).*/\1/p' "$1" | head -1; }

# ---------------------------------------------------------------- a failing job must fail the run
# Run after the workflow runs: while they hold the 2-CPU node (a group job asks for both CPUs) the failing
# job only queues, and in CI that pushed the run past its limit. One attempt (--retries 0) is enough to show
# that a failed job ends the run with a non-zero exit instead of a hang; the profile's retries are left to
# the workflow runs.
FAIL_LIMIT=${SLURM_TEST_FAIL_TIMEOUT:-180}
start_failing() {
    mkdir -p "$WORK/failing"
    log "failing job: expecting a non-zero exit within $FAIL_LIMIT s (--retries 0)"
    (
        t=$SECONDS; rc=0
        timeout -k 10 "$FAIL_LIMIT" "${SNAKEMAKE[@]}" -s "$REPO/tests/slurm/failing/Snakefile" \
            --directory "$WORK/failing" "${SLURM_ARGS[@]}" --retries 0 --slurm-logdir "$WORK/failing/slurm_logs" \
            >"$WORK/failing/snakemake.log" 2>&1 || rc=$?
        echo "$rc $((SECONDS - t))" >"$WORK/failing/rc"
    ) &
    FAIL_PID=$!
}
check_failing() {
    local rc dt name n_sbatch
    wait "$FAIL_PID" || true; FAIL_PID=
    read -r rc dt <"$WORK/failing/rc"
    name=$(run_uuid_of "$WORK/failing/snakemake.log")
    [[ -n $name ]] && show_jobs failing "$name"
    n_sbatch=$( [[ -n $name ]] && squeue -h --states=all --name="$name" -o %i | wc -l || echo 0)
    grep -E 'failed, SLURM status|Trying to restart|Exiting because' "$WORK/failing/snakemake.log" | head -n 8 || true
    if ((rc == 124 || rc == 137)); then
        tail -n 30 "$WORK/failing/snakemake.log"; die "failing job: Snakemake still running after $FAIL_LIMIT s"
    fi
    ((rc != 0)) || die "failing job: Snakemake exited 0"
    log "failing job: Snakemake exited $rc after $dt s, $n_sbatch sbatch submission(s)"
    SUMMARY+=("failing job: exit $rc after ${dt}s, sbatch $n_sbatch")
}

# ---------------------------------------------------------------- a workflow: local vs SLURM
# $1 label, $2 snakefile, $3 configfile (or ""), $4 timeout per run (s), $5 existing local results dir (or "")
compare_run() {
    local label=$1 snakefile=$2 cfg=$3 limit=$4 loc=${5:-} cfgargs=() rc t
    [[ -n $cfg ]] && cfgargs=(--configfile "$cfg")
    local slu=$WORK/$label/slurm
    mkdir -p "$WORK/$label"
    if [[ -n $loc ]]; then
        log "$label: comparing with the existing local results $loc (SLURM_TEST_LOCAL_RESULTS)"
    else
        loc=$WORK/$label/local
        log "$label: local run (profiles/local) -> $loc"
        t=$SECONDS
        rc=0; timeout -k 10 "$limit" "${SNAKEMAKE[@]}" -s "$snakefile" "${cfgargs[@]}" --profile "$REPO/profiles/local" \
            --cores "$CORES" --nolock --config results="$loc" >"$WORK/$label/local.log" 2>&1 || rc=$?
        ((rc == 0)) || { tail -n 40 "$WORK/$label/local.log"; die "$label: local run failed (exit $rc)"; }
        log "$label: local run ok in $((SECONDS - t)) s, $(job_total "$WORK/$label/local.log") Snakemake jobs"
    fi
    log "$label: SLURM run (--profile profiles/slurm) -> $slu"
    t=$SECONDS
    rc=0; timeout -k 10 "$limit" "${SNAKEMAKE[@]}" -s "$snakefile" "${cfgargs[@]}" "${SLURM_ARGS[@]}" \
        --slurm-logdir "$WORK/$label/slurm_logs" --config results="$slu" >"$WORK/$label/slurm.log" 2>&1 || rc=$?
    local dt=$((SECONDS - t)) name; name=$(run_uuid_of "$WORK/$label/slurm.log")
    if ((rc != 0)); then
        tail -n 60 "$WORK/$label/slurm.log"; [[ -n $name ]] && show_jobs "$label" "$name"
        find "$WORK/$label/slurm_logs" -name '*.log' -exec tail -n 20 {} + 2>/dev/null | tail -n 80
        ((rc == 124 || rc == 137)) && die "$label: SLURM run timed out after $limit s"
        die "$label: SLURM run failed (exit $rc)"
    fi
    local sm_jobs local_jobs n_sbatch n_group n_members
    sm_jobs=$(job_total "$WORK/$label/slurm.log")
    local_jobs=$(grep -c '^localrule ' "$WORK/$label/slurm.log" || true)
    n_sbatch=$(squeue -h --states=all --name="$name" -o %i | wc -l)
    # group jobs: their logs lie under slurm_logs/group_<group>_<rules>/ (kept: --slurm-keep-successful-logs)
    n_group=$(find "$WORK/$label/slurm_logs" -path '*/group_*' -name '*.log' | wc -l)
    n_members=$(awk '/^Job stats:/{f=1} f && $1=="fit_bcv_fold"{print $2; exit}' "$WORK/$label/slurm.log")
    show_jobs "$label" "$name"
    # a group job must ask for at most --cores CPUs, not the sum of its members' threads
    local gline gcpus
    while read -r gline; do
        gcpus=$(sed -n 's/.* NumCPUs=\([0-9]*\) .*/\1/p' <<<"$gline")
        log "$label: group job $(sed -n 's/^JobId=\([0-9]*\) .*/\1/p' <<<"$gline"): NumCPUs=$gcpus" \
            "$(grep -oE '(MinMemoryNode|TimeLimit)=[^ ]+' <<<"$gline" | tr '\n' ' ')(--cores $CORES)"
        ((gcpus <= CORES)) || die "$label: a group job asks for $gcpus CPUs, more than --cores $CORES"
    done < <(scontrol -o show job 2>/dev/null | grep -F "JobName=$name " | grep -F '/group_' || true)
    log "$label: SLURM run ok in $dt s: $sm_jobs Snakemake jobs ($local_jobs run locally as localrules)," \
        "$n_sbatch sbatch submissions, of which $n_group group jobs holding the $n_members fit_bcv_fold jobs"
    SUMMARY+=("$label: SLURM run ${dt}s; Snakemake jobs $sm_jobs (localrules $local_jobs); sbatch $n_sbatch (group jobs $n_group for $n_members fit_bcv_fold)")
    "$PY" "$REPO/tests/slurm/compare_results.py" "$loc" "$slu" || die "$label: SLURM results differ from the local run"
}

SUMMARY=()
FAIL_PID=
if [[ "${SLURM_TEST_TOY:-0}" == 1 || ( ! -f "$CONFIGFILE" && "${SLURM_TEST_SKIP_WORKFLOW:-0}" != 1 ) ]]; then
    [[ -f "$CONFIGFILE" ]] || log "config $CONFIGFILE not found: running the toy workflow only"
    compare_run toy "$REPO/tests/slurm/toy/Snakefile" "" 150
fi
if [[ -f "$CONFIGFILE" && "${SLURM_TEST_SKIP_WORKFLOW:-0}" != 1 ]]; then
    compare_run smoke "$REPO/Snakefile" "$CONFIGFILE" "${SLURM_TEST_TIMEOUT:-480}" "${SLURM_TEST_LOCAL_RESULTS:-}"
fi
start_failing
check_failing

for s in "${SUMMARY[@]}"; do log "SUMMARY $s"; done
log "PASS (plugin $PLUGIN_VERSION, $(dpkg-query -W -f '${Version}' slurm-client 2>/dev/null))"
