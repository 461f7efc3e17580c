# bench/table.jq — the one table of `make bench`, as Markdown, from the JSON
# lines of bench/ programs (an array: jq -s). Arguments: $per_open (X25519
# operations in one keeper open of 50 secrets), $apps, $small, $large (the
# scale row's store). A measurement that is missing shows the note that
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
def pct: num(. * 100; 0) + " %";
def met($ok): if $ok then "met" else "**missed**" end;
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
| ($all | find("api.noop")) as $noop
| ($all | find("boot.coffer.s50")) as $c50
| ($all | find("peer.dotenvx")) as $dx
| ($all | find("peer.age")) as $age
| ($all | find("peer.systemd_creds")) as $sdc
| def over_floor($m):
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
  def open_row($k; $subject; $x):
    ($all | find($k)) as $m
    | if $m == null then missing(2; $subject; ($k | sub("\\.t[0-9]+$"; "")))
      else
        (if $x == null then "–"
         else ($x.rate / $per_open) as $f
         | "floor \($f | rate("open/s")); share \(($m.rate / $f) | pct) (goal ≥ 50 %: \(met($m.rate / $f >= 0.5)))" end) as $fl
        | row(2; $subject + " (\($m.secrets) secrets; \($m.errors) errors; verified \($m.verified)/\($m.threads))";
              $m; ($m.rate | rate("open/s")); $fl; "") end;
  def set_row($be):
    ($all | find("api.set." + $be)) as $m
    | "secrets set, \($be), \(16) keep-alive clients" as $subject
    | if $m == null then missing(3; $subject; "api.set." + $be)
      else
        (if $noop == null then "–"
         else "\(($m.rate / $noop.rate) | pct) of the no-op route (goal ≥ 50 %: \(met($m.rate / $noop.rate >= 0.5)))" end) as $fl
        | (if $be == "sqlite" and $sq != null then "\(($m.rate / $sq.rate) | pct) of SQLite's raw commits/s" else "" end) as $p
        | row(3; $subject + " (\($m.errors) errors)"; $m; ($m.rate | rate("req/s")); $fl; $p) end;
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

  "| row | subject | median | p99 | rate | vs floor | vs peers / goal |",
  "|---|---|---|---|---|---|---|",
  boot_row("boot.coffer.s50"; "coffer boot, 50 secrets (agent: assignment → exec)";
    (if $c50 == null then ""
     else [ (if $dx then "vs dotenvx: \(cmp_coffer($dx))" else empty end),
            (if $age then "vs age: \(cmp_coffer($age))" else empty end),
            (if $sdc then "vs systemd-creds: \(cmp_coffer($sdc))" else empty end),
            (if $dx then "goal ≥ 20× dotenvx: \(met($dx.median_us >= 20 * $c50.median_us))" else empty end),
            (if $fe then "goal ≤ +5 ms: \(met($c50.median_us - $fe.median_us <= 5000))" else empty end) ]
          | join("; ") end)),
  boot_row("boot.coffer.s10"; "coffer boot, 10 secrets"; ""),
  boot_row("boot.coffer.s0"; "coffer boot, 0 secrets"; ""),
  boot_row("peer.dotenvx"; "dotenvx run -f .env -- /bin/true, 50 encrypted"; vs_coffer($dx)),
  boot_row("peer.age"; "age -d of the 50 lines, then exec"; vs_coffer($age)),
  boot_row("peer.systemd_creds"; "systemd-creds decrypt (--with-key=host), then exec"; vs_coffer($sdc)),
  boot_row("floor.fork_exec"; "floor: fork/exec of /bin/true"; ""),
  open_row("keeper.open.sqlite.t1"; "keeper opens, SQLite, 1 client"; $x1),
  open_row("keeper.open.sqlite.t2"; "keeper opens, SQLite, 2 clients"; $x2),
  open_row("keeper.open.pg.t1"; "keeper opens, PostgreSQL, 1 client"; $x1),
  open_row("keeper.open.pg.t2"; "keeper opens, PostgreSQL, 2 clients"; $x2),
  (if $x1 then "| 2 | floor: X25519, 1 thread | – | – | \($x1.rate | rate("mult/s")) | ÷ \($per_open) per open = \(($x1.rate / $per_open) | rate("open/s")) | |"
   else missing(2; "floor: X25519, 1 thread"; "floor.x25519") end),
  (if $x2 then "| 2 | floor: X25519, 2 threads | – | – | \($x2.rate | rate("mult/s")) | ÷ \($per_open) per open = \(($x2.rate / $per_open) | rate("open/s")) | |"
   else missing(2; "floor: X25519, 2 threads"; "floor.x25519") end),
  set_row("sqlite"),
  set_row("pg"),
  (if $noop then row(3; "floor: the same HTTP server, no-op route, 16 clients"; $noop; ($noop.rate | rate("req/s")); ""; "")
   else missing(3; "floor: no-op route"; "api.noop") end),
  (if $sq then row(3; "floor: SQLite raw durable commits (WAL, synchronous=FULL)"; $sq; ($sq.rate | rate("commit/s")); ""; "")
   else missing(3; "floor: SQLite raw commits"; "floor.sqlite_commit") end),
  scale_rows("sqlite"),
  scale_rows("pg"),
  cli_rows,
  (($all | find("cli.floor.new")) as $f
   | if $f then row(5; "floor: coffer secrets list, the CLI's one request to the same api (n=\($f.n))"; $f; "–"; ""; "")
     else missing(5; "floor: coffer secrets list"; "cli.floor.new") end),
  (($all | find("cli.floor.old")) as $f
   | if $f then row(5; "floor before issue 12: the same, by that coffer (n=\($f.n))"; $f; "–"; ""; "") else empty end)
