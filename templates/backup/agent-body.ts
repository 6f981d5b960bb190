// The body of the backup agent (POSIX sh, clean under shellcheck). renderAgent() puts the typed
// settings in front of it. Written with String.raw and without any "$" + "{" sequence, so the
// shell text is exactly what is installed (a unit test checks both).
//
// Exit codes (README "Backup", AGENT_FLOW in agent-flow.ts; a unit test keeps them in step):
//   0 backup created, uploaded, verified in the remote list (retention done)
//   2 usage: unknown type or argument
//   3 disabled on this node (not the active replica of its shard)
//   4 node lock busy after the bounded wait (another backup, or a chops run stopping the server)
//   5 create failed (e.g. no space left on device); leftovers removed
//   6 upload failed or the upload is not a good backup in the remote list; never a base
//   7 retention failed (the new backup is good)
//   8 clickhouse-backup unusable: missing, unknown version, unreadable config
//   9 a step hit its deadline (timeout)
//  10 the remote list could not be read or parsed (no DIFF base can be chosen safely)
//  11 killed by a signal (TERM/INT/HUP)
// Over 300 lines on purpose: it is the agent's whole POSIX sh script, one file a shellcheck run
// and an operator read top to bottom.
export const AGENT_BODY = String.raw`
EX_OK=0
EX_USAGE=2
EX_DISABLED=3
EX_LOCKED=4
EX_CREATE=5
EX_UPLOAD=6
EX_RETENTION=7
EX_TOOL=8
EX_TIMEOUT=9
EX_LIST=10
EX_SIGNAL=11

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
umask 077
LOG="$LOG_DIR/agent.log"
OWNER_FILE="$LOCK_FILE.owner"
STATUS="$STATE_DIR/status.json"
PHASE=none
TYPE=
NAME=
BASE=
CHAIN=0
STARTED_EPOCH=$(date +%s)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
HAVE_LOCK=0
RECORDING=0
TOOL_PID=
LIST_ERR=

log() {
  # level message; to the log file and stderr (cron's mail, chops backup run's output)
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) $HOST_NAME agent[$$] $1 $2"
  printf '%s\n' "$line" >>"$LOG" 2>/dev/null
  printf '%s\n' "$line" >&2
}

phase() {
  PHASE=$1
  log info "phase $1"
  # once the run has started, the status file records each phase as it starts (a killed run shows where)
  [ "$RECORDING" = 1 ] && write_attempt running 0 ""
}

json_str() {
  # a JSON string literal: backslash and quote escaped, control characters dropped
  printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed 's/\\/\\\\/g; s/"/\\"/g')"
}

json_or_null() {
  if [ -n "$1" ]; then json_str "$1"; else printf 'null'; fi
}

write_status() {
  # status.json = the three fragments (attempt, last full, last diff), written atomically
  tmp="$STATUS.tmp.$$"
  {
    printf '{"format":1,"host":%s,"cluster":%s,"shard":%s,"enabled":%s,' \
      "$(json_str "$HOST_NAME")" "$(json_str "$CLUSTER")" "$(json_str "$SHARD")" "$ENABLED_JSON"
    printf '"updated":%s,' "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")"
    printf '"last_attempt":'; cat "$STATE_DIR/attempt.json" 2>/dev/null || printf 'null'
    printf ',"last_full":'; cat "$STATE_DIR/full.json" 2>/dev/null || printf 'null'
    printf ',"last_diff":'; cat "$STATE_DIR/diff.json" 2>/dev/null || printf 'null'
    printf '}\n'
  } >"$tmp" && chmod 0644 "$tmp" && mv -f "$tmp" "$STATUS"
}

write_attempt() {
  # result exit_code error
  now=$(date +%s)
  tmp="$STATE_DIR/attempt.json.tmp"
  {
    printf '{"type":%s,"requested":%s,"name":%s,"base":%s,"chain":%s,' \
      "$(json_or_null "$TYPE")" "$(json_or_null "$REQUESTED")" "$(json_or_null "$NAME")" "$(json_or_null "$BASE")" "$CHAIN"
    printf '"started":%s,"pid":%s,"result":%s,"exit_code":%s,"phase":%s,"duration_s":%s,"error":%s}' \
      "$(json_str "$STARTED")" "$$" "$(json_str "$1")" "$2" "$(json_str "$PHASE")" "$((now - STARTED_EPOCH))" "$(json_or_null "$3")"
  } >"$tmp" && mv -f "$tmp" "$STATE_DIR/attempt.json"
  write_status
}

write_success() {
  # size_bytes; the fragment of this type (full.json or diff.json)
  now=$(date +%s)
  tmp="$STATE_DIR/$TYPE.json.tmp"
  prev=$(sed -n 's/.*"size_bytes":\([0-9]*\).*/\1/p' "$STATE_DIR/$TYPE.json" 2>/dev/null)
  [ -n "$prev" ] || prev=null
  {
    printf '{"name":%s,"base":%s,"chain":%s,"finished":%s,"size_bytes":%s,"previous_size_bytes":%s,"duration_s":%s}' \
      "$(json_str "$NAME")" "$(json_or_null "$BASE")" "$CHAIN" "$(json_str "$(date -u +%Y-%m-%dT%H:%M:%SZ)")" "$1" "$prev" "$((now - STARTED_EPOCH))"
  } >"$tmp" && mv -f "$tmp" "$STATE_DIR/$TYPE.json"
}

finish() {
  # exit_code error: the one way out once the run has started
  code=$1
  RECORDING=0
  if [ "$code" -eq 0 ]; then
    write_attempt ok 0 ""
    log info "done: $TYPE backup $NAME (base: $BASE, chain $CHAIN)"
  else
    failed_in=$PHASE
    phase write-error
    write_attempt failed "$code" "$2 (phase $failed_in)"
    log error "failed (exit $code) in phase $failed_in: $2"
  fi
  release
  phase end
  exit "$code"
}

release() {
  if [ "$HAVE_LOCK" = 1 ]; then
    PHASE=release
    rm -f "$OWNER_FILE"
    flock -u 9 2>/dev/null
    HAVE_LOCK=0
  fi
}

# shellcheck disable=SC2317 # called by the traps below
on_signal() {
  trap - TERM INT HUP
  [ -n "$TOOL_PID" ] && kill -TERM "$TOOL_PID" 2>/dev/null
  finish "$EX_SIGNAL" "killed by signal $1 in phase $PHASE"
}

# run_tool DEADLINE_S ARGS...: clickhouse-backup under a deadline, its logs (stderr) kept in
# tool.err for the error line and appended to the agent log. In the background + wait, so a
# TERM reaches the trap at once (and the trap stops the tool).
run_tool() {
  deadline=$1
  shift
  log info "clickhouse-backup $*"
  timeout -k 30 "$deadline" "$CHB_BIN" -c "$CHB_CONFIG" "$@" >>"$LOG" 2>"$STATE_DIR/tool.err" &
  TOOL_PID=$!
  wait "$TOOL_PID"
  trc=$?
  TOOL_PID=
  cat "$STATE_DIR/tool.err" >>"$LOG" 2>/dev/null
  return "$trc"
}

# the last line clickhouse-backup wrote on stderr (its error message)
tool_error() {
  grep -v '^[[:space:]]*$' "$STATE_DIR/tool.err" 2>/dev/null | tail -n 1 | cut -c1-300
}

# --- versions and list layouts --------------------------------------------------------------

# The version triple from "clickhouse-backup --version" ("Version:\t 2.4.31"); empty if unknown.
tool_version() {
  timeout 60 "$CHB_BIN" --version 2>/dev/null | awk '
    $1 == "Version:" && $2 ~ /^v?[0-9]+\.[0-9]+\.[0-9]+/ { v = $2; sub(/^v/, "", v); sub(/[^0-9.].*$/, "", v); print v; exit }'
}

# list layout of a version: text-v1 (<= 2.6.5), text-v2 (2.6.6-2.6.28), text-v3 (2.6.29-2.6.31), json (>= 2.6.32)
list_layout() {
  printf '%s\n' "$1" | awk -F. '{
    n = $1 * 1000000 + $2 * 1000 + $3
    if (n >= 2006032) print "json"; else if (n >= 2006029) print "text-v3"; else if (n >= 2006006) print "text-v2"; else print "text-v1"
  }'
}

# parse_list LAYOUT < output: one line per backup, tab-separated:
#   name  date(YYYY-MM-DD HH:MM:SS)  size_bytes  required(or -)  ok|broken
# A line or document it does not understand is an error (exit 1), never skipped.
parse_list() {
  awk -v layout="$1" '
    function bytes(s,   n, u) {
      if (s == "???" || s == "") return 0
      if (match(s, /^[0-9.]+/) == 0) { bad = 1; return 0 }
      n = substr(s, 1, RLENGTH) + 0; u = substr(s, RLENGTH + 1)
      if (u == "" || u == "B") return int(n)
      if (u == "KiB") return int(n * 1024)
      if (u == "MiB") return int(n * 1048576)
      if (u == "GiB") return int(n * 1073741824)
      if (u == "TiB") return int(n * 1099511627776)
      if (u == "PiB") return int(n * 1125899906842624)
      bad = 1; return 0
    }
    function allsize(s,   k, parts, i) {
      # all:12.00KiB,data:...; "???" for a broken backup
      if (s == "???") return 0
      k = split(s, parts, ",")
      for (i = 1; i <= k; i++) if (parts[i] ~ /^all:/) return bytes(substr(parts[i], 5))
      bad = 1; return 0
    }
    function dmy(d, t,   a) {
      if (split(d, a, "/") != 3 || t !~ /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]$/) { bad = 1; return "" }
      return a[3] "-" a[2] "-" a[1] " " t
    }
    function ymd(d, t) {
      if (d !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]$/ || t !~ /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]$/) { bad = 1; return "" }
      return d " " t
    }
    function emit(name, date, size, req, desc,   st) {
      st = (desc ~ /^broken/ || size == "???") ? "broken" : "ok"
      if (req == "") req = "-"
      print name "\t" date "\t" (st == "broken" ? 0 : (layout == "text-v1" ? bytes(size) : allsize(size))) "\t" req "\t" st
    }
    function text_line(   name, date, i, req, size, desc) {
      # text-v1: name size DD/MM/YYYY HH:MM:SS location [+required] description...
      # text-v2: name DD/MM/YYYY HH:MM:SS location [+required] all:... description...
      # text-v3: name YYYY-MM-DD HH:MM:SS location [+required] all:... description...
      name = $1
      if (layout == "text-v1") { size = $2; date = dmy($3, $4); i = 5 }
      else { date = (layout == "text-v2") ? dmy($2, $3) : ymd($2, $3); i = 4 }
      if ($i != "local" && $i != "remote") { bad = 1; return }
      i++
      req = ""
      if (substr($i, 1, 1) == "+") { req = substr($i, 2); i++ }
      if (layout != "text-v1") { size = $i; if (size !~ /^all:/ && size != "???") { bad = 1; return } i++ }
      desc = ""
      for (; i <= NF; i++) desc = desc (desc == "" ? "" : " ") $i
      if (bad) return
      emit(name, date, size, req, desc)
    }
    # --- a flat JSON array of flat objects with string/number/null values ---
    function jstr(   c, out) {
      out = ""
      pos++
      while (pos <= len) {
        c = substr(doc, pos, 1)
        if (c == "\\") { pos++; c = substr(doc, pos, 1); if (c == "n") c = " "; else if (c == "t") c = " "; else if (c == "u") { c = "?"; pos += 4 } out = out c; pos++; continue }
        if (c == "\"") { pos++; return out }
        out = out c; pos++
      }
      bad = 1; return out
    }
    function skipws() { while (pos <= len && substr(doc, pos, 1) ~ /[ \t\r\n]/) pos++ }
    function jvalue(   c, start) {
      skipws(); c = substr(doc, pos, 1)
      if (c == "\"") return jstr()
      start = pos
      while (pos <= len && substr(doc, pos, 1) ~ /[-+0-9.eEa-z]/) pos++
      if (pos == start) { bad = 1; return "" }
      c = substr(doc, start, pos - start)
      return c == "null" ? "" : c
    }
    function json_doc(   c, key, val, name, date, size, req, desc) {
      len = length(doc); pos = 1; skipws()
      if (substr(doc, pos, 1) == "n") return   # "null": no backups
      if (substr(doc, pos, 1) != "[") { bad = 1; return }
      pos++
      for (;;) {
        skipws(); c = substr(doc, pos, 1)
        if (c == "]") { pos++; break }
        if (c == ",") { pos++; continue }
        if (c != "{") { bad = 1; return }
        pos++; name = ""; date = ""; size = ""; req = ""; desc = ""
        for (;;) {
          skipws(); c = substr(doc, pos, 1)
          if (c == "}") { pos++; break }
          if (c == ",") { pos++; continue }
          if (c != "\"") { bad = 1; return }
          key = jstr(); skipws()
          if (substr(doc, pos, 1) != ":") { bad = 1; return }
          pos++
          skipws(); if (substr(doc, pos, 1) ~ /[[{]/) { bad = 1; return }
          val = jvalue()
          if (bad) return
          if (key == "BackupName") name = val
          else if (key == "CreationDate") { date = substr(val, 1, 19); sub(/T/, " ", date) }
          else if (key == "Size") size = val
          else if (key == "RequiredBackup") { req = val; sub(/^\+/, "", req) }
          else if (key == "Description") desc = val
        }
        if (name == "" || date !~ /^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]$/) { bad = 1; return }
        emit(name, date, size, req, desc)
      }
      skipws(); if (pos <= len) bad = 1
    }
    layout == "json" { doc = doc $0 "\n"; next }
    /^[ \t]*$/ { next }
    { text_line(); if (bad) { print "unparsable list line " NR ": " $0 > "/dev/stderr"; exit 1 } }
    END {
      if (layout == "json") { json_doc(); if (bad) { print "unparsable JSON list near offset " pos > "/dev/stderr"; exit 1 } }
      if (layout != "json" && layout != "text-v1" && layout != "text-v2" && layout != "text-v3") exit 1
      if (bad) exit 1
    }'
}

# chain_table < parsed list: adds columns chain (links to its FULL) and good (1: not broken and
# every backup it requires is present and good)
chain_table() {
  awk -F '\t' '
    { n++; nm[n] = $1; line[n] = $0; req[$1] = $4; st[$1] = $5; have[$1] = 1 }
    function chain(x, depth) {
      if (depth > 10000) return -1
      if (req[x] == "-") return 0
      if (!(req[x] in have)) return -1
      c = chain(req[x], depth + 1)
      return c < 0 ? -1 : c + 1
    }
    function good(x, depth) {
      if (depth > 10000 || !(x in have) || st[x] != "ok") return 0
      if (req[x] == "-") return 1
      return good(req[x], depth + 1)
    }
    END { for (i = 1; i <= n; i++) print line[i] "\t" chain(nm[i], 0) "\t" good(nm[i], 0) }'
}

# list_parsed local|remote: the parsed list of this node's backups with chains, in
# $STATE_DIR/list.WHERE.tsv (fails on any doubt, LIST_ERR says why)
list_parsed() {
  out="$STATE_DIR/list.$1.out"
  if [ "$LAYOUT" = json ]; then
    timeout -k 10 "$LIST_TIMEOUT" "$CHB_BIN" -c "$CHB_CONFIG" list "$1" -f json >"$out" 2>>"$LOG"
  else
    timeout -k 10 "$LIST_TIMEOUT" "$CHB_BIN" -c "$CHB_CONFIG" list "$1" >"$out" 2>>"$LOG"
  fi
  rc=$?
  if [ "$rc" -ne 0 ]; then
    LIST_ERR="list $1 exited $rc"
    [ "$rc" -eq 124 ] && LIST_ERR="list $1 timed out after $LIST_TIMEOUT s"
    return 1
  fi
  if ! parse_list "$LAYOUT" <"$out" >"$out.tsv" 2>>"$LOG"; then
    LIST_ERR="list $1 output not in the $LAYOUT layout of clickhouse-backup $VERSION (see $LOG)"
    return 1
  fi
  chain_table <"$out.tsv" >"$STATE_DIR/list.$1.tsv"
}

# --- retention: keep the newest K backups and every backup a kept one requires --------------

retention() {
  where=$1
  keep=$2
  [ "$keep" -gt 0 ] || return 0
  list_parsed "$where" || { RET_ERR=$LIST_ERR; return 1; }
  awk -F '\t' -v keep="$keep" -v current="$NAME" '
    NF >= 5 { n++; nm[n] = $1; dt[n] = $2; req[$1] = $4; st[$1] = $5 }
    END {
      # newest first: sort by date, then name (insertion sort; lists are short)
      for (i = 2; i <= n; i++) { a = nm[i]; d = dt[i]; j = i - 1
        while (j >= 1 && (dt[j] < d || (dt[j] == d && nm[j] < a))) { nm[j + 1] = nm[j]; dt[j + 1] = dt[j]; j-- }
        nm[j + 1] = a; dt[j + 1] = d }
      kept = 0
      for (i = 1; i <= n; i++) {
        x = nm[i]
        if (st[x] != "ok") continue   # broken (killed or failed upload): never kept, never a base
        if (kept < keep) { kept++; k = x; while (k != "-" && !(k in keepit)) { keepit[k] = 1; k = req[k] } }
      }
      for (i = n; i >= 1; i--) { x = nm[i]; if (!(x in keepit) && x != current) print x }
    }' "$STATE_DIR/list.$where.tsv" >"$STATE_DIR/delete.$where"
  rc=0
  while IFS= read -r victim; do
    [ -n "$victim" ] || continue
    if run_tool "$LIST_TIMEOUT" delete "$where" "$victim"; then
      log info "retention: deleted $where backup $victim"
    else
      RET_ERR="delete $where $victim failed"
      rc=1
    fi
  done <"$STATE_DIR/delete.$where"
  return "$rc"
}

# --- the previous run, if it died without finishing ----------------------------------------

clean_leftovers() {
  [ -f "$STATE_DIR/attempt.json" ] || return 0
  grep -q '"result":"running"' "$STATE_DIR/attempt.json" || return 0
  old=$(sed -n 's/.*"name":"\([^"]*\)".*/\1/p' "$STATE_DIR/attempt.json")
  log warn "the previous run did not finish (killed?): cleaning its leftovers $old"
  run_tool "$LIST_TIMEOUT" clean || log warn "clickhouse-backup clean failed"
  if [ -n "$old" ]; then
    run_tool "$LIST_TIMEOUT" delete local "$old" || true
    # a killed upload leaves a remote folder without metadata.json: remove it if the list says broken
    if list_parsed remote; then
      if awk -F '\t' -v n="$old" '$1 == n && $5 == "broken" { f = 1 } END { exit !f }' "$STATE_DIR/list.remote.tsv"; then
        run_tool "$LIST_TIMEOUT" delete remote "$old" || log warn "could not delete the broken remote backup $old"
      fi
    fi
  fi
}

# --- main ------------------------------------------------------------------------------------

case "$1" in
  full|diff) REQUESTED=$1 ;;
  parse-list)
    # parse-list LAYOUT < output: the list parser alone (tests, chops backup list)
    t=$(mktemp) || exit "$EX_TOOL"
    if parse_list "$2" >"$t"; then chain_table <"$t"; rc=$?; else rc=$EX_LIST; fi
    rm -f "$t"
    exit "$rc" ;;
  list)
    # list local|remote: this node's backups, parsed in the layout of the installed version
    VERSION=$(tool_version)
    [ -n "$VERSION" ] || { echo "clickhouse-backup --version gave no version" >&2; exit "$EX_TOOL"; }
    LAYOUT=$(list_layout "$VERSION")
    mkdir -p "$STATE_DIR"
    list_parsed "$2" || { echo "$LIST_ERR" >&2; exit "$EX_LIST"; }
    cat "$STATE_DIR/list.$2.tsv"
    exit 0 ;;
  *)
    echo "usage: $0 full|diff" >&2
    exit "$EX_USAGE" ;;
esac
TYPE=$REQUESTED
ENABLED_JSON=false
[ "$ENABLED" = 1 ] && ENABLED_JSON=true
mkdir -p "$STATE_DIR" "$LOG_DIR" || exit "$EX_TOOL"
phase start
if [ "$ENABLED" != 1 ]; then
  PHASE=refuse-disabled
  log error "disabled on this node: $ACTIVE_HOST is the active replica of shard $SHARD (chops backup install chooses it)"
  exit "$EX_DISABLED"
fi

phase lock
# fd 9 on the node lock shared with chops (tasks/backup/node-lock.ts). The kernel drops a
# flock when its holder dies, so a lock left by a dead run never blocks.
exec 9>>"$LOCK_FILE"
if ! flock -n 9; then
  phase lock-busy
  log warn "node lock busy ($(cat "$OWNER_FILE" 2>/dev/null || echo 'holder unknown')): waiting up to $LOCK_WAIT s"
  if ! flock -w "$LOCK_WAIT" 9; then
    PHASE=refuse-locked
    log error "node lock still busy after $LOCK_WAIT s ($(cat "$OWNER_FILE" 2>/dev/null || echo 'holder unknown')): not starting"
    exit "$EX_LOCKED"
  fi
fi
HAVE_LOCK=1
printf 'backup %s pid %s since %s\n' "$REQUESTED" "$$" "$STARTED" >"$OWNER_FILE"
chmod 0644 "$OWNER_FILE"
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
trap 'on_signal HUP' HUP
clean_leftovers
write_attempt running 0 ""
RECORDING=1

phase check
VERSION=$(tool_version)
[ -n "$VERSION" ] || finish "$EX_TOOL" "$CHB_BIN --version gave no version (missing or broken binary)"
[ -r "$CHB_CONFIG" ] || finish "$EX_TOOL" "config $CHB_CONFIG is not readable"
LAYOUT=$(list_layout "$VERSION")
log info "clickhouse-backup $VERSION (list layout $LAYOUT)"

phase type
if [ "$TYPE" = diff ]; then
  phase choose-base
  list_parsed remote || finish "$EX_LIST" "$LIST_ERR: no DIFF base can be chosen"
  oldest_full=$(date -u -d "@$(( $(date +%s) - FULL_INTERVAL ))" +'%Y-%m-%d %H:%M:%S')
  # newest good backup (date, then name), its chain, and whether the newest good FULL is too old
  pick=$(awk -F '\t' -v oldest="$oldest_full" 'NF >= 7 && $7 == 1 { if ($2 > bd || ($2 == bd && $1 > bn)) { bd = $2; bn = $1; bc = $6 } }
    NF >= 7 && $7 == 1 && $6 == 0 { if ($2 > fd) fd = $2 }
    END { if (bn != "") print bn "\t" bc "\t" (fd < oldest ? "old" : "fresh") "\t" fd }' "$STATE_DIR/list.remote.tsv")
  if [ -z "$pick" ]; then
    phase no-base-full
    log warn "DIFF requested but the remote list has no good backup to base it on: taking a FULL"
    TYPE=full
  else
    BASE=$(printf '%s' "$pick" | cut -f1)
    base_chain=$(printf '%s' "$pick" | cut -f2)
    full_age=$(printf '%s' "$pick" | cut -f3)
    last_full=$(printf '%s' "$pick" | cut -f4)
    if [ "$base_chain" -ge "$MAX_CHAIN" ]; then
      phase chain-full
      log warn "the chain behind $BASE has $base_chain DIFFs (max $MAX_CHAIN): taking a FULL"
      TYPE=full; BASE=
    elif [ "$full_age" = old ]; then
      phase chain-full
      log warn "the newest FULL ($last_full) is older than $FULL_INTERVAL s: taking a FULL"
      TYPE=full; BASE=
    else
      CHAIN=$((base_chain + 1))
    fi
  fi
fi
NAME="$NAME_PREFIX$TYPE-$(date -u +%Y%m%dT%H%M%S)"
write_attempt running 0 ""

if [ "$TYPE" = full ]; then phase create-full; else phase create-diff; fi
run_tool "$CMD_TIMEOUT" create "$NAME"
rc=$?
if [ "$rc" -ne 0 ]; then
  err=$(tool_error)
  run_tool "$LIST_TIMEOUT" delete local "$NAME" >/dev/null 2>&1
  run_tool "$LIST_TIMEOUT" clean >/dev/null 2>&1
  [ "$rc" -eq 124 ] && finish "$EX_TIMEOUT" "create $NAME timed out after $CMD_TIMEOUT s"
  finish "$EX_CREATE" "create $NAME exited $rc: $err"
fi

phase upload
if [ -n "$BASE" ]; then
  run_tool "$CMD_TIMEOUT" upload --diff-from-remote "$BASE" "$NAME"
else
  run_tool "$CMD_TIMEOUT" upload "$NAME"
fi
rc=$?
if [ "$rc" -ne 0 ]; then
  err=$(tool_error)
  # the partial remote folder shows as broken and is never a base; retention removes it later
  [ "$rc" -eq 124 ] && finish "$EX_TIMEOUT" "upload $NAME timed out after $CMD_TIMEOUT s"
  finish "$EX_UPLOAD" "upload $NAME exited $rc: $err"
fi

phase verify
list_parsed remote || finish "$EX_UPLOAD" "$LIST_ERR: cannot confirm upload of $NAME"
row=$(awk -F '\t' -v n="$NAME" '$1 == n' "$STATE_DIR/list.remote.tsv")
[ -n "$row" ] || finish "$EX_UPLOAD" "upload of $NAME exited 0 but the remote list does not show it"
[ "$(printf '%s' "$row" | cut -f7)" = 1 ] || finish "$EX_UPLOAD" "the remote list shows $NAME as $(printf '%s' "$row" | cut -f5): not a good backup"
size=$(printf '%s' "$row" | cut -f3)

phase record-base
write_success "$size"
write_attempt running 0 ""

phase retention
RET_ERR=
retention remote "$KEEP_REMOTE" || finish "$EX_RETENTION" "remote retention: $RET_ERR"
retention local "$KEEP_LOCAL" || finish "$EX_RETENTION" "local retention: $RET_ERR"
finish "$EX_OK" ""
`;
