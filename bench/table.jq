# bench/table.jq — the tables of `make bench`, as Markdown, from the JSON
# lines of bench/ programs (an array: jq -s). Arguments: $part (goals: the
# issue's table, each goal row beside its floor and its goal; rows: every
# measurement; missed: the keys of the goal rows that missed their goal, one
# a line, which scripts/bench.sh profiles), $per_open (X25519 operations in
# one keeper open of 50 secrets), $apps, $small, $large (the scale row's
# store). A measurement that is missing shows the note that
# scripts/bench.sh recorded for it, or "not run".

def find($k): [.[] | select(.bench == $k)] | first;
def why($k): ([.[] | select(.bench == ("note." + $k)) | .text] | first) // "not run";
def num($x; $d): ($x * pow(10; $d) | round) / pow(10; $d) | tostring;
def us:
  if . == null then "–"
  elif . < 1000 then num(.; 0) + " µs"
  elif . < 1000000 then num(. / 1000; 2) + " ms"
  else num(. / 1000000; 2) + " s" end;
def rate($unit):
  if . == null then "–" elif . >= 100 then (round | tostring) + " " + $unit else num(.; 1) + " " + $unit end;
def times: if . == null then "–" elif . >= 10 then num(.; 0) + "×" else num(.; 1) + "×" end;
def pct: if . < 0.01 then num(. * 100; 1) + " %" else num(. * 100; 0) + " %" end;
def met($ok): if $ok then "met" else "**missed**" end;
def mib: if . == null then "–" else num(. / 1024; 1) + " MiB" end;
def row($r; $subject; $m; $rate; $floor; $peers):
  "| \($r) | \($subject) | \($m.median_us | us) | \($m.p99_us | us) | \($rate) | \($floor) | \($peers) |";
def missing($r; $subject; $k): "| \($r) | \($subject) | – | – | – | \(why($k)) | |";

. as $all
# the large store's size as the run made it (BENCH_APPS, BENCH_QUICK), else the argument
| (([$all[] | select(.bench | startswith("populate.")) | .apps + 1] | first) // $apps) as $apps
| ($all | find("floor.fork_exec")) as $fe
| ($all | [.[] | select(.bench == "floor.x25519" and .threads == 1)] | first) as $x1
| ($all | [.[] | select(.bench == "floor.x25519" and .threads == 2)] | first) as $x2
| ($all | find("floor.sqlite_commit")) as $sq
| ($all | find("store.sqlite")) as $store_sqlite
| ($all | find("store.pg")) as $store_pg
| ($all | find("boot.coffer.s50")) as $c50
| ($all | find("peer.dotenvx")) as $dx
| ($all | find("peer.age")) as $age
| ($all | find("peer.systemd_creds")) as $sdc
| def store($be): if $be == "pg" then $store_pg else $store_sqlite end;
  # the backend's name, and what makes it durable in this run
  def backend($be):
    store($be) as $s
    | if $be == "pg" then "PostgreSQL" + (if $s then " (fsync=\($s.fsync), synchronous_commit=\($s.synchronous_commit))" else "" end)
      else "SQLite" + (if $s then " (WAL, synchronous=\($s.synchronous))" else "" end) end;
  # the no-op floor of row 3: the set program's own for the backend, else the api section's
  def noop($be):
    ([$all[] | select(.bench == "floor.noop" and .backend == $be)] + [$all[] | select(.bench == "floor.noop" and .backend == null)]) | first;
  def open_floor($t): ([$all[] | select(.bench == "floor.x25519" and .threads == $t)] | first) as $x
    | if $x == null then null else $x.rate / $per_open end;
  def over_floor($m):
    if $fe == null or $m == null then "–"
    else "+" + ((($m.median_us - $fe.median_us) | us)) + " (" + (($m.median_us / $fe.median_us) | times) + ")" end;
  # how coffer's 50-secret boot compares with a peer's, in words
  def cmp_coffer($m):
    ($m.median_us / $c50.median_us) as $r
    | if $r >= 1 then "coffer \($r | times) faster" else "coffer \((1 / $r) | times) slower" end;
  def vs_coffer($m): if $c50 == null or $m == null then "–" else cmp_coffer($m) end;
  def boot_row($k; $subject; $peers):
    ($all | find($k)) as $m
    | if $m == null then missing(1; $subject; $k) else row(1; $subject + " (n=\($m.n))"; $m; "–"; (if $k == "floor.fork_exec" then "" else over_floor($m) end); $peers) end;
  # the same open before issue 12 (no signatures checked), for the SQLite 1-client row
  def old_open($k; $m):
    if $k != "keeper.open.sqlite.t1" then ""
    else ($all | find("keeper.open.old.sqlite.t1")) as $o
      | if $o == null then "before issue 12: \(why("keeper.open.old.sqlite.t1"))"
        else (($m.median_us - $o.median_us) / $o.median_us) as $x
        | "before issue 12: \($o.median_us | us), \($o.rate | rate("open/s")); issue 12's checks at open add \($x | pct) (goal < 10 %: \(met($x < 0.1)))" end end;
  def open_row($k; $subject; $x):
    ($all | find($k)) as $m
    | if $m == null then missing(2; $subject; ($k | sub("\\.t[0-9]+$"; "")))
      else
        (if $x == null then "–"
         else ($x.rate / $per_open) as $f
         | "floor \($f | rate("open/s")); share \(($m.rate / $f) | pct) (goal ≥ 65 %: \(met($m.rate / $f >= 0.65)))" end) as $fl
        | row(2; $subject + " (\($m.secrets) secrets; \($m.errors) errors; verified \($m.verified)/\($m.threads))";
              $m; ($m.rate | rate("open/s")); $fl; old_open($k; $m)) end;
  def set_durable($be; $m): if $m | has("durable") then $m.durable else (store($be).durable // false) end;
  def set_goal($be; $m; $noop):
    $noop != null and $m.rate >= 0.25 * $noop.rate and $m.p99_us <= 20000 and set_durable($be; $m) and ($m.errors // 0) == 0;
  def open_share($be; $t): ($all | find("keeper.open.\($be).t\($t)")) as $m | open_floor($t) as $f
    | if $m == null or $f == null then null else $m.rate / $f end;
  def hosts_goal($m): ($m.hosts // 0) >= 2000 and ($m.pickup_p99_us // 1e99) <= 1000000 and ($m.errors // 0) == 0;

  # the issue's table: one line per goal, its figure, its floor of the same run, the goal
  def goal_lines:
    ($all | find("hosts")) as $h
    | ($all | find("hosts.floor")) as $hf
    | [
      (if $c50 == null or $fe == null then {key: "1-boot", row: 1, subject: "boot with 50 secrets, added over a bare fork/exec (median)", now: why("boot.coffer.s50")}
       else {key: "1-boot", row: 1, subject: "boot with 50 secrets, added over a bare fork/exec (median)",
             now: "+\(($c50.median_us - $fe.median_us) | us) (\($c50.median_us | us), p99 \($c50.p99_us | us))",
             floor: "fork/exec of /bin/true: \($fe.median_us | us)",
             met: ($c50.median_us - $fe.median_us <= 3000)} end),
      (("sqlite", "pg") as $be
       | [open_share($be; 1), open_share($be; 2)] as $s
       | {key: "2-keeper-\($be)", row: 2, subject: "keeper opens of 50 secrets, \(backend($be)), share of the X25519 floor"}
         + (if $s[0] == null and $s[1] == null then {now: why("keeper.open.\($be)")}
            else {now: ([(if $s[0] then "\($s[0] | pct) with 1 client (\(($all | find("keeper.open.\($be).t1")).rate | rate("open/s")))" else empty end),
                         (if $s[1] then "\($s[1] | pct) with 2 (\(($all | find("keeper.open.\($be).t2")).rate | rate("open/s")))" else empty end)] | join(", ")),
                  floor: "X25519 ÷ \($per_open): \(open_floor(1) | rate("open/s")) on 1 thread, \(open_floor(2) | rate("open/s")) on 2",
                  met: ([$s[] | select(. != null) | . >= 0.65] | all)} end)),
      (("sqlite", "pg") as $be
       | ($all | find("set." + $be)) as $m
       | noop($be) as $noop
       | {key: "3-set-\($be)", row: 3, subject: "api secrets set, \(backend($be)), 16 keep-alive clients, share of the no-op route"}
         + (if $m == null then {now: why("set." + $be)}
            else {now: "\(if $noop then ($m.rate / $noop.rate) | pct else "–" end) (\($m.rate | rate("req/s")), p99 \($m.p99_us | us), \($m.errors) errors, \(if set_durable($be; $m) then "durable" else "**not durable**" end))",
                  floor: (if $noop then "no-op route: \($noop.rate | rate("req/s")), p99 \($noop.p99_us | us)" else why("floor.noop") end),
                  met: set_goal($be; $m; $noop)} end)),
      ({key: "6-hosts", row: 6, subject: "agents one api serves (simulated hosts, signed long polls)"}
       + (if $h == null then {now: why("hosts")}
          else {now: "\($h.hosts) hosts: pickup p99 \($h.pickup_p99_us | us), median \($h.pickup_median_us | us); api RSS \($h.api_rss_kib | mib), \($h.api_threads) threads; \($h.errors) errors",
                floor: (if $hf == null then why("hosts.floor")
                        else "\($hf.hosts // 1) host\(if ($hf.hosts // 1) == 1 then "" else "s" end): pickup p99 \(($hf.pickup_p99_us // $hf.p99_us) | us), median \(($hf.pickup_median_us // $hf.median_us) | us)" end),
                met: hosts_goal($h)} end))
    ]
    | map(. + {goal: ({"1": "≤ +3 ms", "2": "≥ 65 % on both backends (1 and 2 clients)", "3": "≥ 25 %, p99 ≤ 20 ms, every set durable before its answer",
                      "6": "2,000 hosts, pickup p99 ≤ 1 s after a release step; api RSS and threads reported"}[.row | tostring])});
  def goals:
    "| row | goal row | this run | floor (same run) | goal | |",
    "|---|---|---|---|---|---|",
    (goal_lines[] | "| \(.row) | \(.subject) | \(.now) | \(.floor // "–") | \(.goal) | \(if .met == null then "not run" elif .met then "met" else "**missed** (profile below)" end) |");

  # row 6: the hosts program's lines
  def hosts_rows:
    ($all | find("hosts")) as $h
    | ($all | find("hosts.floor")) as $hf
    | (if $h == null then missing(6; "many hosts on one api"; "hosts")
       else row(6; "\($h.hosts) simulated hosts on one api, SQLite: pickup after a release step (\($h.errors) errors; api RSS \($h.api_rss_kib | mib), \($h.api_threads) threads)";
                {median_us: ($h.pickup_median_us // $h.median_us), p99_us: ($h.pickup_p99_us // $h.p99_us)}; "–";
                (if $hf == null then "–" else "floor p99 \(($hf.pickup_p99_us // $hf.p99_us) | us)" end);
                "goal 2,000 hosts, p99 ≤ 1 s: \(met(hosts_goal($h)))") end),
      (if $hf == null then empty
       else row(6; "floor: the same long polls against the same api, \($hf.hosts // 1) host"; {median_us: ($hf.pickup_median_us // $hf.median_us), p99_us: ($hf.pickup_p99_us // $hf.p99_us)}; "–"; ""; "") end);
  def set_row($be):
    ($all | find("set." + $be)) as $m
    | noop($be) as $noop
    | "secrets set, \(backend($be)), 16 keep-alive clients, sealed and signed" as $subject
    | if $m == null then missing(3; $subject; "set." + $be)
      else
        (if $noop == null then "–"
         else "\(($m.rate / $noop.rate) | pct) of the no-op route" end) as $fl
        | (if $be == "sqlite" and $sq != null then "\(($m.rate / $sq.rate) | pct) of SQLite's raw commits/s; " else "" end) as $p
        | row(3; $subject + " (\($m.errors) errors; \(if set_durable($be; $m) then "durable" else "not durable" end))";
              $m; ($m.rate | rate("req/s")); $fl;
              $p + "goal ≥ 25 %, p99 ≤ 20 ms, durable: \(met(set_goal($be; $m; $noop)))") end;
  def scale_rows($be):
    ($all | find("scale.list.small." + $be)) as $ls
    | ($all | find("scale.list.large." + $be)) as $ll
    | ($all | find("scale.open.small." + $be + ".t1")) as $os
    | ($all | find("scale.open.large." + $be + ".t1")) as $ol
    | ($all | find("populate." + $be)) as $pop
    | def cmp($s; $l):
        if $s == null or $l == null then "–"
        else "p99 \(($l.p99_us / $s.p99_us) | times) of 1 app (goal ≤ 2×: \(met($l.p99_us <= 2 * $s.p99_us)))" end;
      (if $ls == null then missing(4; "secrets list, \($be), 1 app × \($small)"; "scale.list.small." + $be)
       else row(4; "secrets list, \($be), 1 app × \($small) secrets"; $ls; ($ls.rate | rate("req/s")); ""; "") end),
      (if $ll == null then missing(4; "secrets list, \($be), \($apps) apps × \($large)"; "scale.list.large." + $be)
       else row(4; "secrets list, \($be), \($apps) apps × \($large) secrets"; $ll; ($ll.rate | rate("req/s"));
                cmp($ls; $ll);
                (if $pop == null then "" else "store filled in \($pop.seconds) s" end)) end),
      (if $os == null then missing(4; "keeper open, \($be), 1 app × \($small)"; "scale.open.small." + $be)
       else row(4; "keeper open, \($be), 1 app × \($small) secrets"; $os; ($os.rate | rate("open/s")); ""; "") end),
      (if $ol == null then missing(4; "keeper open, \($be), \($apps) apps × \($large)"; "scale.open.large." + $be)
       else row(4; "keeper open, \($be), \($apps) apps × \($large) secrets"; $ol; ($ol.rate | rate("open/s"));
                cmp($os; $ol); "") end);

  # row 5: the CLI's secrets set, sealed in the CLI (new) and before issue 12 (old, sealed in the api)
  def cli_rows:
    ($all | find("cli.floor.new")) as $fn
    | ($all | find("cli.floor.old")) as $fo
    | def plus($m; $f): if $f == null then "–" else "+" + (($m.median_us - $f.median_us) | us) + " over its floor" end;
      (1, 10, 50) as $k
      | ($all | find("cli.set.new.s\($k)")) as $m
      | ($all | find("cli.set.old.s\($k)")) as $o
      | "secrets set, \($k) value\(if $k == 1 then "" else "s" end) sealed in the CLI (wall time of the command)" as $subject
      | if $m == null then missing(5; $subject; "cli.set.new.s\($k)")
        else row(5; $subject + " (n=\($m.n))"; $m; "–"; plus($m; $fn);
                 (if $o == null then "before issue 12: \(why("cli.set.old.s\($k)"))"
                  else "before issue 12 (sealed in the api): \($o.median_us | us), \(plus($o; $fo)); new ÷ old \(($m.median_us / $o.median_us) | times)" end)) end;

  def rows:
  "| row | subject | median | p99 | rate | vs floor | vs peers / goal |",
  "|---|---|---|---|---|---|---|",
  boot_row("boot.coffer.s50"; "coffer boot, 50 secrets (agent: assignment → exec)";
    (if $c50 == null then ""
     else [ (if $dx then "vs dotenvx: \(cmp_coffer($dx))" else empty end),
            (if $age then "vs age: \(cmp_coffer($age))" else empty end),
            (if $sdc then "vs systemd-creds: \(cmp_coffer($sdc))" else empty end),
            (if $dx then "goal ≥ 20× dotenvx: \(met($dx.median_us >= 20 * $c50.median_us))" else empty end),
            (if $fe then "goal ≤ +3 ms: \(met($c50.median_us - $fe.median_us <= 3000))" else empty end) ]
          | join("; ") end)),
  boot_row("boot.coffer.s10"; "coffer boot, 10 secrets"; ""),
  boot_row("boot.coffer.s0"; "coffer boot, 0 secrets"; ""),
  boot_row("peer.dotenvx"; "dotenvx run -f .env -- /bin/true, 50 encrypted"; vs_coffer($dx)),
  boot_row("peer.age"; "age -d of the 50 lines, then exec"; vs_coffer($age)),
  boot_row("peer.systemd_creds"; "systemd-creds decrypt (--with-key=host), then exec"; vs_coffer($sdc)),
  boot_row("floor.fork_exec"; "floor: fork/exec of /bin/true"; ""),
  open_row("keeper.open.sqlite.t1"; "keeper opens, SQLite, 1 client"; $x1),
  open_row("keeper.open.sqlite.t2"; "keeper opens, SQLite, 2 clients"; $x2),
  open_row("keeper.open.pg.t1"; "keeper opens, PostgreSQL (durable), 1 client"; $x1),
  open_row("keeper.open.pg.t2"; "keeper opens, PostgreSQL (durable), 2 clients"; $x2),
  (if $x1 then "| 2 | floor: X25519, 1 thread | – | – | \($x1.rate | rate("mult/s")) | ÷ \($per_open) per open = \(($x1.rate / $per_open) | rate("open/s")) | |"
   else missing(2; "floor: X25519, 1 thread"; "floor.x25519") end),
  (if $x2 then "| 2 | floor: X25519, 2 threads | – | – | \($x2.rate | rate("mult/s")) | ÷ \($per_open) per open = \(($x2.rate / $per_open) | rate("open/s")) | |"
   else missing(2; "floor: X25519, 2 threads"; "floor.x25519") end),
  set_row("sqlite"),
  set_row("pg"),
  (noop("sqlite") as $noop
   | if $noop then row(3; "floor: the same HTTP server, no-op route, 16 clients"; $noop; ($noop.rate | rate("req/s")); ""; "")
     else missing(3; "floor: no-op route"; "floor.noop") end),
  (if $sq then row(3; "floor: SQLite raw durable commits (WAL, synchronous=FULL)"; $sq; ($sq.rate | rate("commit/s")); ""; "")
   else missing(3; "floor: SQLite raw commits"; "floor.sqlite_commit") end),
  scale_rows("sqlite"),
  scale_rows("pg"),
  cli_rows,
  (($all | find("cli.floor.new")) as $f
   | if $f then row(5; "floor: coffer secrets list, the CLI's one request to the same api (n=\($f.n))"; $f; "–"; ""; "")
     else missing(5; "floor: coffer secrets list"; "cli.floor.new") end),
  (($all | find("cli.floor.old")) as $f
   | if $f then row(5; "floor before issue 12: the same, by that coffer (n=\($f.n))"; $f; "–"; ""; "") else empty end),
  hosts_rows,
  # the masking row (issue 15): a machine's output through its masker vs straight to its log
  (($all | find("mask.masked")) as $mm | ($all | find("mask.unmasked")) as $mu
   | if $mm == null or $mu == null then missing(7; "machine output, 100 MB with 50 secrets, masked vs unmasked"; "mask")
     else "| 7 | machine output, \($mm.mb) MB with \($mm.secrets) secrets, masked vs unmasked | – | – | \($mm.rate | rate("MB/s")) masked | \($mu.rate | rate("MB/s")) unmasked (\(($mm.rate / $mu.rate) | pct) of it) | |" end);

  if $part == "goals" then goals
  elif $part == "missed" then goal_lines[] | select(.met == false) | .key
  else rows end
